"""A real Celery worker hosted in a thread of the current process.

This is how `WorkflowRuntime().start()` runs orchestrator and activities inside the
application's own process, as Dapr apps do (the same mechanism as
`celery.contrib.testing.worker`, without the test-only ping task).
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Sequence
from typing import Any

from celery import Celery
from celery.worker import WorkController


class _HostedWorkController(WorkController):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.ready = threading.Event()
        super().__init__(*args, **kwargs)

    def on_consumer_ready(self, consumer: Any) -> None:
        self.ready.set()


class EmbeddedWorker:
    def __init__(self, app: Celery, queues: Sequence[str], *, concurrency: int = 8, name: str = "ledgerflow",
                 task_events: bool = False) -> None:
        self.task_events = task_events
        self.app = app
        self.queues = list(queues)
        self.concurrency = concurrency
        self.hostname = f"{name}-{os.getpid()}-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
        self._controller: _HostedWorkController | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 30.0) -> None:
        """Start consuming; returns once the consumer is ready."""
        # Celery's thread pool looks tasks up through `current_app` (thread-local, falling back
        # to the default app): the hosting app must be both.
        self.app.set_current()
        self.app.set_default()
        self.app.loader.import_default_modules()
        self._controller = _HostedWorkController(
            app=self.app,
            hostname=self.hostname,
            pool="threads",
            concurrency=self.concurrency,
            queues=self.queues,
            loglevel="WARNING",
            without_heartbeat=True,
            task_events=self.task_events,
            without_mingle=True,
            without_gossip=True,
            ready_callback=None,
        )
        self._thread = threading.Thread(target=self._controller.start, name=self.hostname, daemon=True)
        self._thread.start()
        if not self._controller.ready.wait(timeout):
            raise RuntimeError(f"The embedded Celery worker did not start within {timeout:.0f}s.")

    def stop(self, timeout: float = 30.0) -> None:
        if self._controller is None or self._thread is None:
            return
        self._controller.stop(in_sighandler=False)
        self._thread.join(timeout)
        self._controller = None
        self._thread = None
