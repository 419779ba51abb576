"""The orchestrator's Celery tasks: orchestrate, deliver and tick, on the app's workflow queue.

`orchestrate` (wake-ups, each for one or more instances) and `deliver` (activity results)
are consumed in batches with celery-batches: the worker buffers their messages and hands
them over as one list when `batch_size` have arrived or `linger` seconds have passed, and
acknowledges them only after the batch committed (late acks). One list becomes one
database transaction per `batch_size` instances (`OrchestratorService.drive`).
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from celery import Celery
from celery_batches import Batches, SimpleRequest

from brokers import liveness, messages, queues, wire
from orchestrator import recovery, ticker
from orchestrator.service import OrchestratorService, Publisher
from persistence.errors import StoreUnavailable

log = logging.getLogger("ledgerflow.orchestrator")

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

    def activity(self, app_id: str, request: wire.ActivityRequest) -> None:
        messages.publish_activity(self.app, app_id, request, producer=self._producer())

    def _producer(self) -> Any:
        return getattr(self._local, "producer", None)


class BatchTask(Batches):
    """celery-batches' task with two additions.

    At most `parallel` batches of a task run at a time in a process: messages that come
    while they run wait and go together into the next one, so batches grow with the load by
    themselves (group commit) while a lone message waits only for the linger. And the task events Flower shows
    (`task-received` when a message is buffered, `task-succeeded`/`task-failed` when its batch
    has run), sent only while events are on at this worker (as Flower turns them on)."""

    abstract = True
    _eventer: Any = None
    #: batches of this task running at once in a process (the rest of the messages wait)
    parallel = 2
    _running = 0
    _held: list[Any]
    _gate: threading.Lock

    def Strategy(self, task: Any, app: Celery, consumer: Any) -> Any:  # noqa: N802 - Celery's name
        self._gate, self._held = threading.Lock(), []
        buffer = super().Strategy(task, app, consumer)
        eventer = self._eventer = consumer.event_dispatcher

        def on_message(message: Any, body: Any, ack: Any, reject: Any, callbacks: Any, **kw: Any) -> None:
            buffer(message, body, ack, reject, callbacks, **kw)
            if eventer is not None and eventer.enabled:  # None: a worker built without events
                headers = message.headers
                eventer.send("task-received", uuid=headers.get("id"), name=headers.get("task"),
                             args=headers.get("argsrepr", ""), kwargs=headers.get("kwargsrepr", ""),
                             retries=headers.get("retries", 0))

        return on_message

    def flush(self, requests: Any) -> Any:
        with self._gate:
            if self._running >= self.parallel:
                self._held.extend(requests)  # acknowledged when the batch that takes them has run
                return None
            self._running += 1
        return super().flush(requests)

    def finished(self, requests: Sequence[SimpleRequest], error: BaseException | None = None) -> None:
        """The batch of `requests` has run: send its events, then start the next batch with
        the messages that came meanwhile."""
        eventer = self._eventer
        if eventer is not None and eventer.enabled:
            for request in requests:
                if error is None:
                    eventer.send("task-succeeded", uuid=request.id, result="None", runtime=0.0)
                else:
                    eventer.send("task-failed", uuid=request.id, exception=repr(error), traceback="")
        with self._gate:
            self._running -= 1
            held, self._held = self._held, []
        if held:
            self.flush(held)


def register_orchestrator_tasks(app: Celery, service: OrchestratorService, process_limit: int | None = None,
                                batch_size: int = DEFAULT_BATCH_SIZE, linger: float = DEFAULT_LINGER) -> None:
    """Bind the service's entry points to Celery task names on `app`. `process_limit` caps
    the batches this process runs at once (Dapr's maxConcurrentWorkflowInvocations).

    The worker must be allowed to hold a batch's messages unacknowledged: its prefetch is
    raised to `batch_size` per pool slot."""
    slots = threading.BoundedSemaphore(process_limit) if process_limit else contextlib.nullcontext()
    app.conf.worker_prefetch_multiplier = max(app.conf.worker_prefetch_multiplier, batch_size)
    broker_url = str(app.conf.broker_url or "")
    watch = liveness.BrokerWatch(broker_url) if liveness.is_redis(broker_url) else None
    if watch is not None:
        recovery.check_at_start(watch, service.app_id)
    result_of = held_result(service.app_id)
    held = liveness.track(app, broker_url, result_of)

    @app.task(name=queues.ORCHESTRATE_TASK, base=BatchTask, bind=True, flush_every=batch_size,
              flush_interval=linger, shared=False, acks_late=True, ignore_result=True)
    def orchestrate(self: BatchTask, requests: list[SimpleRequest]) -> None:
        error: BaseException | None = None
        try:
            with slots:
                service.drive([iid for request in requests for iid in request.args])
        except StoreUnavailable as exc:
            error = exc
            log.warning("a batch of %d wake-up(s) was not committed: %s; the inboxes keep the work and the "
                        "reconcile tick wakes them", len(requests), exc, extra={"app_id": service.app_id})
        except Exception as exc:
            error = exc
            raise
        finally:
            self.finished(requests, error)

    @app.task(name=queues.DELIVER_TASK, base=BatchTask, bind=True, flush_every=batch_size,
              flush_interval=linger, shared=False, acks_late=True, ignore_result=True)
    def deliver(self: BatchTask, requests: list[SimpleRequest]) -> None:
        results = [(request.args[0], wire.ResultMessage.from_wire(request.args[1])) for request in requests]
        error: BaseException | None = None
        try:
            # held until the batch commits: a death makes the tick re-send
            calls = [result_of(queues.DELIVER_TASK, tuple(request.args)) for request in requests]
            with slots, liveness.holding_all(held, calls):
                service.drive([], results)
        except StoreUnavailable as exc:
            # The results exist only in these messages: send them again for later rather than
            # let the activity lease run out and the activities run again.
            error = exc
            log.warning("a batch of %d result(s) was not committed: %s; they are sent again for later",
                        len(requests), exc, extra={"app_id": service.app_id})
            for request in requests:
                retries = int(request.kwargs.get("retries", 0))
                messages.publish_deliver(app, service.app_id, request.args[0], wire.ResultMessage.from_wire(request.args[1]),
                                         retries=retries + 1, countdown=retry_delay(retries))
        except Exception as exc:
            error = exc
            raise
        finally:
            self.finished(requests, error)

    @app.task(name=queues.TICK_TASK, shared=False, acks_late=True, ignore_result=True)
    def tick(app_id: str | None = None) -> None:
        ticker.tick(service, app_id=app_id, watch=watch)


def held_result(app_id: str) -> liveness.HeldOf:
    """An orchestrator holds the result in a `deliver` message until its step commits: if it
    dies first, the tick sends the call again (the workers send the remembered result)."""

    def held(name: str, args: tuple[Any, ...]) -> liveness.Held | None:
        return liveness.Held(app_id, args[0], args[1]["message_id"]) if name == queues.DELIVER_TASK else None

    return held
