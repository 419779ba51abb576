"""WorkflowRuntime: registration (Dapr's decorators) and the in-process runtime.

`start()` runs an orchestrator and the app's activity workers as a real Celery worker in
threads of this process, plus a timer/reconcile loop, and returns when they are ready;
`shutdown()` stops them. The same registrations drive the separate processes of
`ledgerflow orchestrator` / `ledgerflow worker` in production.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from brokers import app as broker_app
from brokers import liveness, queues
from brokers.embedded import EmbeddedWorker
from brokers.deliveries import CallMemory
from brokers.limits import NameLimiter
from ledgerflow.config import Settings
from ledgerflow.changes import commit_hook
from ledgerflow.commit_watch import CommitWatcher
from ledgerflow.registration import Registrar
from orchestrator import ticker
from orchestrator.engine.registry import Registry
from orchestrator.rules import AppRules
from orchestrator.service import OrchestratorService
from orchestrator.tasks import CeleryPublisher, register_orchestrator_tasks
from persistence.records import utcnow
from telemetry import metrics
from persistence.store import Store
from workers.limits import ActivityGate, DeliveryCap
from workers.tasks import ActivityRunner, register_activity_tasks

log = logging.getLogger("ledgerflow.runtime")

#: Seconds between writes of "published" marks on outbox rows (see orchestrator/sent_marks.py).
SENT_MARK_INTERVAL = 0.05


class WorkflowRuntime(Registrar):
    """Register workflows and activities; `start()` runs them in this process."""

    #: builds each instance's replayer (None: the engine's `Replay`; `ledgerflow sidecar`: the app's SDK)
    _replays: Callable[[Registry, str], Any] | None = None
    #: runs activity calls in place of registered functions (None: the registry's; see workers.tasks)
    _activity_runner: ActivityRunner | None = None

    def __init__(
        self,
        host: str | None = None,
        port: str | None = None,
        logger_options: Any = None,
        interceptors: Any = None,
        maximum_concurrent_activity_work_items: int | None = None,
        maximum_concurrent_orchestration_work_items: int | None = None,
        maximum_thread_pool_workers: int | None = None,
        worker_ready_timeout: float | None = None,
        *,
        app_id: str | None = None,
        database_url: str | None = None,
        broker_url: str | None = None,
        pools: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        if interceptors:
            warnings.warn("WorkflowRuntime(interceptors=...) has no effect in Ledgerflow: its runtime talks to its "
                          "database and broker, not to a sidecar over gRPC", UserWarning, stacklevel=2)
        self._overrides = {"app_id": app_id, "database_url": database_url, "broker_url": broker_url}
        self.pools = dict(pools or {})
        self.concurrency = maximum_thread_pool_workers or maximum_concurrent_activity_work_items or 8
        #: Batches of workflow steps this process runs at once (with the workflow configuration's
        #: maxConcurrentWorkflowInvocations the tighter of the two applies).
        self.orchestration_limit = maximum_concurrent_orchestration_work_items or None
        self.worker_ready_timeout = 30.0 if worker_ready_timeout is None else worker_ready_timeout
        self._ready = threading.Event()
        self._worker: EmbeddedWorker | None = None
        self._ticker: threading.Thread | None = None
        self._watcher: CommitWatcher | None = None
        self._stopping = threading.Event()
        self.service: OrchestratorService | None = None

    @property
    def settings(self) -> Settings:
        return Settings.from_env(**self._overrides)

    # -- building blocks, shared with the separate-process commands ---------------------

    def build(self, settings: Settings | None = None, *, registry: Registry | None = None,
              clock: Callable[[], datetime] = utcnow) -> tuple[Any, OrchestratorService]:
        """A Celery app with this runtime's orchestrator and activity tasks, and its service.
        `registry` stands in for this runtime's (a test's fakes); steps run at `clock()`."""
        settings = settings or self.settings
        registry = registry or self.registry
        celery = broker_app.create_app(settings.broker_url, settings.app_id,
                                       visibility_timeout=settings.visibility_timeout)
        store = Store(settings.database_url, **settings.store_options)
        store.migrate()
        config = settings.workflow
        rules = AppRules(pools={**config.pools, **self.pools}, workflow_limits=config.workflow_limits,
                         retention=config.retention, max_history_events=settings.max_history_events,
                         activity_lease=timedelta(seconds=settings.activity_lease))
        service = OrchestratorService(store, registry, CeleryPublisher(celery), settings.app_id, rules=rules,
                                      security=settings.security, on_commit=commit_hook(settings), clock=clock,
                                      batch_size=settings.batch_size, mark_interval=SENT_MARK_INTERVAL,
                                      replays=self._replays)
        metrics.watch_backlog(store.backlog)
        limits = [n for n in (self.orchestration_limit, config.max_concurrent_workflow_invocations) if n]
        register_orchestrator_tasks(celery, service, process_limit=min(limits, default=None),
                                    batch_size=settings.batch_size, linger=settings.batch_linger_ms / 1000)
        register_activity_tasks(celery, registry, self.activity_gate(settings, in_process=True),
                                self.delivery_cap(settings), settings.activity_config, forward=self._activity_runner)
        return celery, service

    def app_queues(self, settings: Settings) -> list[str]:
        """The queues the in-process runtime consumes: workflows, activities, named pools."""
        names = [queues.workflow_queue(settings.app_id), queues.activity_queue(settings.app_id)]
        return names + sorted({queues.activity_queue(settings.app_id, p) for p in self.pools.values()})

    def build_activity_worker(self, settings: Settings | None = None) -> Any:
        """A Celery app with only this runtime's activity tasks: workers need no database."""
        settings = settings or self.settings
        celery = broker_app.create_app(settings.broker_url, settings.app_id,
                                       visibility_timeout=settings.visibility_timeout)
        register_activity_tasks(celery, self.registry, self.activity_gate(settings, in_process=False),
                                self.delivery_cap(settings), settings.activity_config)
        return celery

    def activity_gate(self, settings: Settings, *, in_process: bool) -> ActivityGate:
        """Per-name limits across all processes; the per-process limit applies in-process
        (a separate worker's process count is its --concurrency)."""
        config = settings.workflow
        limiter = NameLimiter(settings.broker_url) if config.activity_limits else None
        process_limit = config.max_concurrent_activity_invocations if in_process else None
        return ActivityGate(limiter, config.activity_limits, process_limit)

    @staticmethod
    def delivery_cap(settings: Settings) -> DeliveryCap:
        """Parks an activity call whose worker died on each of its last LEDGERFLOW_MAX_DELIVERIES
        runs; remembers results while a copy may still come: Redis restores a dead worker's
        unacknowledged message after the visibility timeout, the lease re-sends after its
        period."""
        return DeliveryCap(CallMemory(settings.broker_url), settings.max_deliveries,
                           remember_seconds=2 * max(settings.activity_lease, settings.visibility_timeout))

    def redrive(self, service: OrchestratorService) -> int:
        """Wake every unfinished instance of this app (STALLED ones too: their code may be here now)."""
        unfinished = service.store.unfinished_instances(service.app_id)
        service.publisher.wake([(inst.app_id, inst.instance_id) for inst in unfinished])
        return len(unfinished)

    # -- the in-process runtime --------------------------------------------------------

    def start(self) -> None:
        if self._worker is not None:
            return
        settings = self.settings
        celery, service = self.build(settings)
        worker = EmbeddedWorker(celery, self.app_queues(settings), concurrency=self.concurrency,
                                name=f"ledgerflow-{settings.app_id}",
                                task_events=settings.task_events)
        worker.start(timeout=self.worker_ready_timeout)
        self._worker, self.service = worker, service
        self._ready.set()
        self._stopping.clear()
        self._ticker = threading.Thread(target=self._tick_loop, args=(service, settings.tick_interval),
                                        name="ledgerflow-ticker", daemon=True)
        self._ticker.start()
        self._watcher = self._commit_watcher(settings, service)
        count = self.redrive(service)
        log.info("runtime started for app %s (%d unfinished instance(s) re-driven)", settings.app_id, count)

    @staticmethod
    def _commit_watcher(settings: Settings, service: OrchestratorService) -> CommitWatcher | None:
        """On SQLite with the in-memory broker, other processes' commits wake this runtime
        (see `ledgerflow.commit_watch`); a real broker carries their wake-ups itself."""
        path = settings.sqlite_path
        if path is None or not settings.embedded_broker:
            return None
        watcher = CommitWatcher(str(path), service.app_id,
                                lambda ids: service.publisher.wake([(service.app_id, i) for i in ids]))
        watcher.start()
        return watcher

    def _tick_loop(self, service: OrchestratorService, interval: float) -> None:
        broker_url = self.settings.broker_url
        watch = liveness.BrokerWatch(broker_url) if liveness.is_redis(broker_url) else None
        while not self._stopping.wait(interval):
            if not self._ticking():
                continue
            try:
                ticker.tick(service, pending_grace=timedelta(seconds=1), watch=watch)
            except Exception:  # a database hiccup must not kill the loop
                log.exception("tick failed; retrying")

    def _ticking(self) -> bool:
        """Whether the timer/reconcile loop ticks now (a sidecar's, only while its app is connected)."""
        return True

    def wait_for_worker_ready(self, timeout: float = 30.0) -> bool:
        """Dapr's: True once `start()` has its workers consuming, False after `timeout` seconds."""
        return self._ready.wait(timeout)

    def shutdown(self) -> None:
        self._ready.clear()
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None
        if self._ticker is not None:
            self._ticker.join(10)
            self._ticker = None
        if self._worker is not None:
            self._worker.stop()
            self._worker = None
        if self.service is not None:
            self.service.sent_marks.close()
            self.service.store.close()
            self.service = None
