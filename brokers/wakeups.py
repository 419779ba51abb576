"""Wake-ups sent from a thread of their own, many instances to a message.

A start (or an event, a signal) is durable once its transaction commits; the wake-up that
follows is only the fast path (the reconcile tick wakes any inbox left waiting). So the caller
does not wait for the broker: it hands the instance over and returns, and a sender thread
publishes what gathered within `linger` seconds, one `orchestrate` message per app and
`chunk` instances, over one producer. Under load many starts share a message; alone, a
wake-up leaves within `linger`. `close()` (and interpreter exit) sends what is pending.
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref

from celery import Celery

from brokers import messages

log = logging.getLogger("ledgerflow.broker")


class WakeupSender:
    def __init__(self, app: Celery, *, linger: float = 0.002, chunk: int = 64) -> None:
        self.app = app
        self.linger = linger
        self.chunk = chunk
        self._lock = threading.Lock()
        self._pending: dict[str, dict[str, None]] = {}
        self._woken = threading.Event()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        atexit.register(_close_quietly, weakref.ref(self))

    def wake(self, app_id: str, instance_id: str) -> None:
        """Wake `instance_id` of `app_id` soon (within `linger`)."""
        with self._lock:
            self._pending.setdefault(app_id, {})[instance_id] = None
            if self._thread is None and not self._closed.is_set():
                self._thread = threading.Thread(target=self._run, name="ledgerflow-wakeups", daemon=True)
                self._thread.start()
        self._woken.set()
        if self._closed.is_set():
            self.flush()

    def flush(self) -> None:
        """Send every pending wake-up now; a failure is logged (reconcile wakes those)."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return
        try:
            with self.app.producer_or_acquire() as producer:
                for app_id, ids in pending.items():
                    unique = list(ids)
                    for start in range(0, len(unique), self.chunk):
                        messages.publish_orchestrate(self.app, app_id, unique[start:start + self.chunk],
                                                     producer=producer)
        except Exception as exc:  # the broker is only the fast path
            log.warning("wake-ups of %d instance(s) not sent (%r); the reconcile tick wakes them",
                        sum(len(ids) for ids in pending.values()), exc)

    def close(self) -> None:
        self._closed.set()
        self._woken.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)
        self.flush()

    def _run(self) -> None:
        while not self._closed.is_set():
            self._woken.wait()
            self._woken.clear()
            self._closed.wait(self.linger)  # let wake-ups gather
            self.flush()


def _close_quietly(ref: weakref.ReferenceType[WakeupSender]) -> None:
    sender = ref()
    if sender is not None:
        sender.close()
