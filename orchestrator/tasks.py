"""The orchestrator's Celery tasks: orchestrate, deliver and tick, on the app's workflow queue.

`orchestrate` (wake-ups, each for one or more instances) and `deliver` (activity results)
are consumed in batches with celery-batches: the worker buffers their messages and hands
them over as one list when `batch_size` have arrived or `linger` seconds have passed, and
acknowledges them only after the batch committed (late acks). One list becomes one
database transaction per `batch_size` instances (`OrchestratorService.drive`).
"""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from celery import Celery
from celery_batches import Batches, SimpleRequest

from brokers import messages, queues
from orchestrator import ticker
from orchestrator.service import OrchestratorService, Publisher
from persistence.errors import StoreUnavailable

#: Messages a batch takes at most, and how long a batch waits for more (seconds).
DEFAULT_BATCH_SIZE = 64
DEFAULT_LINGER = 0.004


def retry_delay(retries: int) -> float:
    """Seconds before retry number `retries` + 1: 0.5, 1, 2, 4, 8, then 10, with jitter."""
    return min(10.0, 0.5 * 2 ** min(retries, 5)) * random.uniform(0.8, 1.2)


class CeleryPublisher(Publisher):
    """Publishes through `app`; inside `batch()` every message of the thread goes through one
    producer (one broker connection taken from the pool once, not once per message)."""

    def __init__(self, app: Celery) -> None:
        self.app = app
        self._local = threading.local()

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        if getattr(self._local, "producer", None) is not None:
            yield  # already inside a batch of this thread
            return
        with self.app.producer_or_acquire() as producer:
            self._local.producer = producer
            try:
                yield
            finally:
                self._local.producer = None

    def orchestrate(self, app_id: str, instance_ids: Sequence[str]) -> None:
        messages.publish_orchestrate(self.app, app_id, instance_ids, producer=self._producer())

    def activity(self, app_id: str, pool: str | None, request: dict[str, Any]) -> None:
        messages.publish_activity(self.app, app_id, pool, request, producer=self._producer())

    def _producer(self) -> Any:
        return getattr(self._local, "producer", None)


def register_orchestrator_tasks(app: Celery, service: OrchestratorService, process_limit: int | None = None,
                                batch_size: int = DEFAULT_BATCH_SIZE, linger: float = DEFAULT_LINGER) -> None:
    """Bind the service's entry points to Celery task names on `app`. `process_limit` caps
    the batches this process runs at once (Dapr's maxConcurrentWorkflowInvocations).

    The worker must be allowed to hold a batch's messages unacknowledged: its prefetch is
    raised to `batch_size` per pool slot."""
    slots = threading.BoundedSemaphore(process_limit) if process_limit else contextlib.nullcontext()
    app.conf.worker_prefetch_multiplier = max(app.conf.worker_prefetch_multiplier, batch_size)

    @app.task(name=queues.ORCHESTRATE_TASK, base=Batches, flush_every=batch_size, flush_interval=linger,
              shared=False, acks_late=True, ignore_result=True)
    def orchestrate(requests: list[SimpleRequest]) -> None:
        with slots:
            service.drive([iid for request in requests for iid in request.args])

    @app.task(name=queues.DELIVER_TASK, base=Batches, flush_every=batch_size, flush_interval=linger,
              shared=False, acks_late=True, ignore_result=True)
    def deliver(requests: list[SimpleRequest]) -> None:
        results = [(request.args[0], request.args[1]) for request in requests]
        with slots:
            try:
                service.drive([], results)
            except StoreUnavailable:
                # The results exist only in these messages: send them again for later rather
                # than let the activity lease run out and the activities run again.
                for request in requests:
                    retries = int(request.kwargs.get("retries", 0))
                    messages.publish_deliver(app, service.app_id, request.args[0], request.args[1],
                                             retries=retries + 1, countdown=retry_delay(retries))
                raise

    @app.task(name=queues.TICK_TASK, shared=False, acks_late=True, ignore_result=True)
    def tick(app_id: str | None = None) -> None:
        ticker.tick(service, app_id=app_id)
