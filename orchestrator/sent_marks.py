"""Marking published outbox rows as sent, a few times a second instead of once per batch.

Publishing happens after a batch commits; recording that it happened is one more
transaction. Marks are collected and written together every `interval` seconds by a timer
thread. Nothing depends on a mark being written quickly: the reconcile tick re-sends a row
only when it has stayed unmarked for its grace period (seconds), and a row sent twice is
harmless (the workers' call memory and the inbox's message ids deduplicate). A crash loses
only the marks not yet written, so those rows are sent once more.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from persistence.records import utcnow
from persistence.store import Store

log = logging.getLogger("ledgerflow.orchestrator")


class SentMarks:
    """Outbox row ids published and waiting to be marked sent, by lease length; one daemon
    thread (started with the first mark) writes them, the leases counted from the write.

    A row's `sent_at` is when it was published (the earliest of the rows written together),
    not when the mark is written: the broker-loss recovery re-sends the rows sent before the
    loss was found, and a mark written late (a busy machine) must not hide a row published
    before it."""

    def __init__(self, store: Store, interval: float = 0.05, clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self.interval = interval
        self.clock = clock
        self._lock = threading.Lock()
        self._pending: dict[timedelta | None, tuple[datetime, list[int]]] = {}
        self._marked = threading.Event()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, ids: list[int], lease: timedelta | None, published: datetime) -> None:
        """Mark these rows sent at `published` (taken before they were published), leased for
        `lease` (None: no lease), now (`interval` 0) or with the next flush."""
        if not ids:
            return
        if self.interval <= 0:
            self._write(ids, lease, published)
            return
        with self._lock:
            earliest, pending = self._pending.get(lease, (published, []))
            self._pending[lease] = (min(earliest, published), pending + ids)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ledgerflow-sent-marks", daemon=True)
                self._thread.start()
        self._marked.set()

    def flush(self) -> None:
        """Write every pending mark (one transaction per lease length)."""
        with self._lock:
            pending, self._pending = self._pending, {}
        for lease, (published, ids) in pending.items():
            try:
                self._write(ids, lease, published)
            except Exception as exc:  # the rows stay unmarked: reconcile sends them once more
                log.warning("could not mark %d published outbox row(s) sent: %r", len(ids), exc)

    def _write(self, ids: list[int], lease: timedelta | None, published: datetime) -> None:
        now = self.clock()
        self.store.mark_outbox_sent(ids, published, lease_until=None if lease is None else now + lease)

    def close(self) -> None:
        """Write what is pending and stop the thread."""
        self._closed.set()
        self._marked.set()
        if self._thread is not None:
            self._thread.join(5)
        self.flush()

    def _run(self) -> None:
        while not self._closed.is_set():
            self._marked.wait()
            self._marked.clear()
            self._closed.wait(self.interval)  # let marks gather
            self.flush()
