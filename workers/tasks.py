"""Activity tasks on a Celery app: one task name per activity, late acks.

An activity name no worker has registered is answered with a failure
("Activity function named 'X' was not registered!") instead of vanishing: Celery rejects
unknown tasks, and the `task_unknown` signal lets us reply to the workflow first.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from celery import Celery, signals

from brokers import liveness, messages, queues, wire
from orchestrator.engine import codec
from orchestrator.engine import events as ev
from orchestrator.engine.errors import ActivityNotRegisteredError, failure_from_exception
from orchestrator.engine.registry import Registry
from workers.activity import DEFAULTS, ActivityConfig, result_message, run_activity, wall_clock
from telemetry import metrics, tracing
from workers.limits import ActivityGate, DeliveryCap

log = logging.getLogger("ledgerflow.worker")

#: Runs one activity call in place of the registry's function, as `run_activity` does
#: (`request`, then keywords `app_id`, `refuse` and `config`), returning the result message;
#: `ledgerflow sidecar` forwards the call to the app's own SDK.
ActivityRunner = Callable[..., wire.ResultMessage]


def register_activity_tasks(app: Celery, registry: Registry, gate: ActivityGate | None = None,
                            cap: DeliveryCap | None = None, config: ActivityConfig = DEFAULTS, *,
                            forward: ActivityRunner | None = None) -> None:
    """Register every activity of `registry` as its own Celery task on `app`. `config` travels
    with the tasks into every worker process (prefork children inherit it). With `forward`,
    every activity name is served, each by `forward` (registered when its first call comes)."""
    gate = gate or ActivityGate()
    cap = cap or DeliveryCap(None, 0)
    held = liveness.track(app, str(app.conf.broker_url or ""), held_call)
    for name in registry.activity_names():
        register_activity_task(app, registry, name, gate, cap, held, config, forward)
    app._ledgerflow_unknown = _UnknownActivities(app, registry, gate, cap, held, config, forward)  # type: ignore[attr-defined]


class _UnknownActivities:
    """Answers the unknown activity tasks of one app, from what `register_activity_tasks`
    last registered on it. Kept on the app itself, so the one `task_unknown` receiver
    below holds no app alive (this object refers to its app, as `HeldCalls` does)."""

    def __init__(self, app: Celery, registry: Registry, gate: ActivityGate, cap: DeliveryCap,
                 held: liveness.HeldCalls | None, config: ActivityConfig, forward: ActivityRunner | None) -> None:
        self.app, self.registry, self.gate, self.cap, self.held, self.config = app, registry, gate, cap, held, config
        #: with a runner, every activity name is served (`ledgerflow sidecar`)
        self.forward = forward

    def __call__(self, consumer: Any, message: Any, name: str) -> None:
        activity = queues.activity_name_of(name)
        if activity is None:
            return
        request = _request_of(message)
        if request is None:
            return
        app, registry = self.app, self.registry
        if self.forward is not None or activity in registry.activity_names():  # (or registered after the start)
            register_activity_task(app, registry, activity, self.gate, self.cap, self.held, self.config, self.forward)
            consumer.update_strategies()
            messages.publish_activity(app, _queue_app(message, request), request)
            return
        failure = failure_from_exception(ActivityNotRegisteredError(f"Activity function named '{activity}' was not registered!"))
        event = ev.TaskFailed(wall_clock(), request.task_id, failure)
        reply = result_message(request, event, app_id=own_app_id(app), config=self.config)
        messages.publish_deliver(app, request.app_id, request.instance_id, reply)


def _on_unknown(sender: Any = None, message: Any = None, name: str = "", **_: Any) -> None:
    """The one `task_unknown` receiver: hands the task to its consumer's app, if Ledgerflow
    registered activities on that app."""
    handler = getattr(getattr(sender, "app", None), "_ledgerflow_unknown", None)
    if isinstance(handler, _UnknownActivities):
        handler(sender, message, name)


signals.task_unknown.connect(_on_unknown, weak=False)


def register_activity_task(app: Celery, registry: Registry, name: str, gate: ActivityGate, cap: DeliveryCap,
                           held: liveness.HeldCalls | None = None, config: ActivityConfig = DEFAULTS,
                           forward: ActivityRunner | None = None) -> None:
    task_name = queues.activity_task_name(name)
    if task_name in app.tasks:
        return

    def run(self: Any, body: dict[str, Any]) -> None:
        request = wire.ActivityRequest.from_wire(body)
        with liveness.holding(held, held_call(task_name, (body,))) as mine:
            if not mine:
                metrics.redelivered("held_elsewhere")
                log.info("activity call held by another live worker: this copy is not run", extra={
                    "instance_id": request.instance_id, "activity": name, "task_id": request.task_id})
                return
            with gate.enter(self, name):
                message, parked = cap.begin(request)
                if message is not None:  # a re-sent copy of a call that already finished
                    metrics.redelivered("duplicate_call")
                    log.info("activity already ran: its result is sent again", extra={
                        "instance_id": request.instance_id, "activity": name, "task_id": request.task_id})
                else:
                    message = _run_observed(self, registry, request, own_app_id(app), parked, config, forward)
                cap.end(request, message)
            messages.publish_deliver(app, request.app_id, request.instance_id, message)

    run.__name__ = run.__qualname__ = name
    app.task(name=task_name, bind=True, shared=False, acks_late=True, reject_on_worker_lost=True, max_retries=None,
             ignore_result=True)(run)


def _run_observed(task: Any, registry: Registry, request: wire.ActivityRequest, app_id: str | None,
                  parked: ev.FailureDetails | None, config: ActivityConfig = DEFAULTS,
                  forward: ActivityRunner | None = None) -> wire.ResultMessage:
    """`run_activity` inside the `activity:{name}` server span (a child of the orchestrator's
    client span, from the `traceparent` header), counted and timed."""
    name = request.name
    traceparent = getattr(task.request, tracing.TRACEPARENT, None) or request.traceparent
    attrs = tracing.attributes("activity", name, request.instance_id, request.app_id, request.task_id)
    began = time.perf_counter()
    with tracing.running(f"activity:{name}", traceparent, attrs) as span:
        if forward is not None:
            message = forward(request, app_id=app_id, refuse=parked, config=config)
        else:
            message = run_activity(registry, request, app_id=app_id, refuse=parked, config=config)
        failed = message.type != "TaskCompleted"
        if failed and span is not None:
            failure = codec.decode(message.type, message.payload).failure  # type: ignore[attr-defined]
            tracing.fail(span, failure.error_type, failure.message)
        if span is not None:
            span.set_attribute("durabletask.task.status", "Failed" if failed else "Completed")
    m = metrics.metrics()
    m.activity_executions.labels(activity=name, outcome="failed" if failed else "completed").inc()
    m.activity_duration.labels(activity=name).observe(time.perf_counter() - began)
    return message


def held_call(name: str, args: tuple[Any, ...]) -> liveness.Held | None:
    """A worker holds each activity call it reserved, from receipt until acknowledged: if the
    worker dies, its owner's tick sends the call again (the same execution id)."""
    if queues.activity_name_of(name) is None:
        return None
    request = wire.ActivityRequest.from_wire(args[0])
    return liveness.Held(request.app_id, request.instance_id, request.result_message_id)


def own_app_id(app: Celery) -> str | None:
    """The app whose queues this Celery app serves (its default queue is ledgerflow.<app>.workflows):
    the identity its workers attest results with and the callee its access policies protect."""
    queue = str(app.conf.task_default_queue or "")
    return queue[len("ledgerflow."):-len(".workflows")] if queue.startswith("ledgerflow.") and \
        queue.endswith(".workflows") else None


def _request_of(message: Any) -> wire.ActivityRequest | None:
    try:
        body = message.decode()
        args = body[0] if isinstance(body, (list, tuple)) else body["args"]
        return wire.ActivityRequest.from_wire(args[0])
    except Exception:  # malformed: nothing to answer
        log.warning("unknown activity message without a readable request was dropped")
        return None


def _queue_app(message: Any, request: wire.ActivityRequest) -> str:
    routing = (message.delivery_info or {}).get("routing_key", "")
    parts = routing.split(".")
    return parts[1] if len(parts) >= 3 else request.target_app_id or request.app_id
