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
from datetime import datetime

from persistence.records import utcnow
from persistence.store import Store

log = logging.getLogger("ledgerflow.orchestrator")


class SentMarks:
    """Outbox row ids published and waiting to be marked sent, by lease end; one daemon
    thread (started with the first mark) writes them."""

    def __init__(self, store: Store, interval: float = 0.05) -> None:
        self.store = store
        self.interval = interval
        self._lock = threading.Lock()
        self._pending: dict[datetime | None, list[int]] = {}
        self._marked = threading.Event()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, ids: list[int], lease_until: datetime | None, now: datetime) -> None:
        """Mark these rows sent now (`interval` 0) or with the next flush."""
        if not ids:
            return
        if self.interval <= 0:
            self.store.mark_outbox_sent(ids, now, lease_until=lease_until)
            return
        with self._lock:
            self._pending.setdefault(lease_until, []).extend(ids)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ledgerflow-sent-marks", daemon=True)
                self._thread.start()
        self._marked.set()

    def flush(self) -> None:
        """Write every pending mark (one transaction per lease end)."""
        with self._lock:
            pending, self._pending = self._pending, {}
        for lease_until, ids in pending.items():
            try:
                self.store.mark_outbox_sent(ids, utcnow(), lease_until=lease_until)
            except Exception as exc:  # the rows stay unmarked: reconcile sends them once more
                log.warning("could not mark %d published outbox row(s) sent: %r", len(ids), exc)

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
