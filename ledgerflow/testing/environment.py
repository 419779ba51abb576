"""`WorkflowTestEnvironment`: the app's workflows on the real engine and the real step, over a
throwaway SQLite database and Celery's in-memory broker, with a clock that skips ahead.

    with WorkflowTestEnvironment(wfr) as env:
        iid = env.client.schedule_new_workflow(order, input=42)
        state = env.client.wait_for_workflow_completion(iid, timeout_in_seconds=10)

While a test waits for a workflow to complete (`env.client` / `env.aio_client`), whenever no
step is pending and no activity is running, the clock jumps to the next due timer: a 30-day
timer fires at once, and `ctx.current_utc_datetime` reads 30 days later. `env.sleep(delta)`
moves the clock explicitly. Time never skips while the test is not waiting, so an event it
raises right after starting a workflow arrives before any timeout does.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from brokers.embedded import EmbeddedWorker
from ledgerflow import aio
from ledgerflow.client import DaprWorkflowClient
from ledgerflow.runtime import WorkflowRuntime
from ledgerflow.state import WorkflowState
from ledgerflow.testing.clock import SkippingClock
from ledgerflow.testing.fakes import FakeableRegistry
from ledgerflow.testing.skipping import TimeSkipper
from orchestrator.engine.registry import registered_name
from orchestrator.service import OrchestratorService

MEMORY_BROKER = "memory://localhost/"


class WorkflowTestEnvironment:
    """A context manager over the app's `WorkflowRuntime`; see the module docstring."""

    def __init__(self, runtime: WorkflowRuntime, *, settle_timeout: float = 30.0) -> None:
        self.runtime = runtime
        #: seconds `sleep` waits for steps and activities in flight before it moves the clock
        self.settle_timeout = settle_timeout
        self.clock = SkippingClock()
        self.registry = FakeableRegistry(runtime.registry)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        #: the throwaway database, while the environment runs (e.g. for `ledgerflow replay --from-db`)
        self.database_url: str | None = None
        self._worker: EmbeddedWorker | None = None
        self._skipper: TimeSkipper | None = None
        self._service: OrchestratorService | None = None
        self.client: DaprWorkflowClient
        self.aio_client: aio.DaprWorkflowClient

    def __enter__(self) -> WorkflowTestEnvironment:
        self._tmp = tempfile.TemporaryDirectory(prefix="ledgerflow-test-")
        database = self.database_url = f"sqlite:///{Path(self._tmp.name) / 'ledgerflow.db'}"
        try:
            settings = dataclasses.replace(self.runtime.settings, database_url=database, broker_url=MEMORY_BROKER)
            celery, self._service = self.runtime.build(settings, registry=self.registry, clock=self.clock)
            queues = self.runtime.app_queues(settings)
            _purge(celery, queues)  # left over by an environment before this one
            self._skipper = TimeSkipper(self._service, self.clock, self.settle_timeout)
            self._service.on_commit = _both(self._service.on_commit, self._skipper.changed)
            self._worker = EmbeddedWorker(celery, queues, concurrency=self.runtime.concurrency,
                                          name=f"ledgerflow-test-{settings.app_id}")
            self._worker.start()
            self._skipper.start()
            client_settings = {"app_id": settings.app_id, "database_url": database, "broker_url": MEMORY_BROKER}
            self.client = _SkippingClient(self._skipper, **client_settings)
            self.aio_client = _SkippingAioClient(self._skipper, **client_settings)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._skipper is not None:
            self._skipper.stop()
            self._skipper = None
        for client in (getattr(self, "client", None), getattr(self, "aio_client", None)):
            if client is not None:
                _close(client)
        if self._worker is not None:
            self._worker.stop()
            _purge(self._worker.app, self._worker.queues)
            self._worker = None
        if self._service is not None:
            self._service.store.close()
            self._service = None
            self.runtime.restore_security()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
            self.database_url = None

    # -- what tests use ----------------------------------------------------------------

    def now(self) -> datetime:
        """The environment's current time (aware UTC), as steps see it."""
        return self.clock()

    def sleep(self, duration: timedelta) -> None:
        """Let `duration` pass on the environment's clock, firing each timer due within it at
        its own time once the work before it has settled."""
        self._running().advance(duration)

    def mock_activity(self, activity: Callable[..., Any] | str, fn: Callable[..., Any]) -> None:
        """Run `fn` (same arguments: the activity context and the input) instead of the
        activity named `activity` (a name, or the registered function), in this environment only."""
        self.registry.fake(registered_name(activity), fn)

    def _running(self) -> TimeSkipper:
        if self._skipper is None:
            raise RuntimeError("the test environment is not running; use it as `with WorkflowTestEnvironment(wfr) as env:`")
        return self._skipper


class _SkippingClient(DaprWorkflowClient):
    """The environment's client: waiting for completion lets the clock skip ahead."""

    def __init__(self, skipper: TimeSkipper, **settings: Any) -> None:
        super().__init__(**settings)
        self._skipper = skipper

    def wait_for_workflow_completion(self, instance_id: str, *, fetch_payloads: bool = True,
                                     timeout_in_seconds: int = 0) -> WorkflowState | None:
        with self._skipper.skipping():
            return super().wait_for_workflow_completion(instance_id, fetch_payloads=fetch_payloads,
                                                        timeout_in_seconds=timeout_in_seconds)


class _SkippingAioClient(aio.DaprWorkflowClient):
    """The environment's async client: awaiting completion lets the clock skip ahead."""

    def __init__(self, skipper: TimeSkipper, **settings: Any) -> None:
        super().__init__(**settings)
        self._skipper = skipper

    async def wait_for_workflow_completion(self, instance_id: str, *, fetch_payloads: bool = True,
                                           timeout_in_seconds: int = 0) -> WorkflowState | None:
        with self._skipper.skipping():
            return await super().wait_for_workflow_completion(instance_id, fetch_payloads=fetch_payloads,
                                                              timeout_in_seconds=timeout_in_seconds)


def _both(first: Callable[[str, str], None] | None, then: Callable[[str, str], None]) -> Callable[[str, str], None]:
    def on_commit(instance_id: str, status: str) -> None:
        if first is not None:
            first(instance_id, status)
        then(instance_id, status)

    return on_commit


def _purge(celery: Any, queues: list[str]) -> None:
    with celery.connection_for_write() as connection:
        channel = connection.default_channel
        for queue in queues:
            channel.queue_purge(queue)


def _close(client: DaprWorkflowClient | aio.DaprWorkflowClient) -> None:
    if isinstance(client, aio.DaprWorkflowClient):
        client._sync.close()  # the async close only runs this off the event loop
    else:
        client.close()
