"""The orchestrator's Celery tasks: orchestrate, deliver and tick, on the app's workflow queue."""

from __future__ import annotations

import contextlib
import random
import threading
from typing import Any

from celery import Celery

from brokers import liveness, messages, queues
from orchestrator import recovery, ticker
from orchestrator.service import OrchestratorService, Publisher
from persistence.errors import StoreUnavailable


def retry_delay(retries: int) -> float:
    """Seconds before retry number `retries` + 1: 0.5, 1, 2, 4, 8, then 10, with jitter."""
    return min(10.0, 0.5 * 2 ** min(retries, 5)) * random.uniform(0.8, 1.2)


class CeleryPublisher(Publisher):
    def __init__(self, app: Celery) -> None:
        self.app = app

    def orchestrate(self, app_id: str, instance_id: str) -> None:
        messages.publish_orchestrate(self.app, app_id, instance_id)

    def activity(self, app_id: str, pool: str | None, request: dict[str, Any]) -> None:
        messages.publish_activity(self.app, app_id, pool, request)


def register_orchestrator_tasks(app: Celery, service: OrchestratorService, process_limit: int | None = None) -> None:
    """Bind the service's entry points to Celery task names on `app`. `process_limit` caps
    the steps this process runs at once (Dapr's maxConcurrentWorkflowInvocations)."""
    slots = threading.BoundedSemaphore(process_limit) if process_limit else contextlib.nullcontext()
    broker_url = str(app.conf.broker_url or "")
    watch = liveness.BrokerWatch(broker_url) if liveness.is_redis(broker_url) else None
    if watch is not None:
        recovery.check_at_start(watch, service.app_id)
    result_of = held_result(service.app_id)
    held = liveness.track(app, broker_url, result_of)

    @app.task(name=queues.ORCHESTRATE_TASK, shared=False, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
    def orchestrate(instance_id: str) -> None:
        with slots:
            service.run_until_idle(instance_id)

    @app.task(name=queues.DELIVER_TASK, bind=True, shared=False, acks_late=True, reject_on_worker_lost=True,
              ignore_result=True, max_retries=None)
    def deliver(self: Any, instance_id: str, message: dict[str, Any]) -> None:
        with slots, liveness.holding(held, result_of(queues.DELIVER_TASK, (instance_id, message))):
            try:
                service.deliver(instance_id, message)
            except StoreUnavailable as exc:
                # The result exists only in this message: keep it (a retry re-sends it) rather
                # than let the activity lease run out and the activity run again.
                raise self.retry(exc=exc, countdown=retry_delay(self.request.retries)) from exc

    @app.task(name=queues.TICK_TASK, shared=False, acks_late=True, ignore_result=True)
    def tick(app_id: str | None = None) -> None:
        ticker.tick(service, app_id=app_id, watch=watch)


def held_result(app_id: str) -> liveness.HeldOf:
    """An orchestrator holds the result in a `deliver` message until its step commits: if it
    dies first, the tick sends the call again (the workers send the remembered result)."""

    def held(name: str, args: tuple[Any, ...]) -> liveness.Held | None:
        return liveness.Held(app_id, args[0], args[1]["message_id"]) if name == queues.DELIVER_TASK else None

    return held
