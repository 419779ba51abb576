"""The test environment's clock: real time plus an offset that only grows."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from persistence.records import utcnow


class SkippingClock:
    """`clock()` is the current time, aware UTC, as far ahead as `skip_to` has moved it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offset = timedelta(0)

    def __call__(self) -> datetime:
        return utcnow() + self._offset

    def skip_to(self, when: datetime) -> None:
        """Make the clock read at least `when` from now on (it never goes back)."""
        with self._lock:
            self._offset = max(self._offset, when - utcnow())
