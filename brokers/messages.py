"""Publishing the three kinds of Ledgerflow messages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from celery import Celery

from brokers import queues, wire


# Every publish names its own `argsrepr`: Celery would otherwise build one with its safe repr of
# every argument, a sizeable share of a publish's CPU; these say what the message is for.

def publish_orchestrate(app: Celery, app_id: str, instance_ids: str | Sequence[str], *,
                        producer: Any = None) -> None:
    """Wake the orchestrators of `app_id` for these instances (their inboxes have work): one
    message, stepped as part of one batch."""
    ids = [instance_ids] if isinstance(instance_ids, str) else list(instance_ids)
    app.send_task(queues.ORCHESTRATE_TASK, args=ids, queue=queues.workflow_queue(app_id), producer=producer,
                  argsrepr=_ids_repr(ids), kwargsrepr="{}")


def publish_deliver(app: Celery, app_id: str, instance_id: str, message: wire.ResultMessage, *,
                    retries: int = 0, countdown: float | None = None) -> None:
    """Send a result back to the app that owns `instance_id` (again, after `countdown`
    seconds, when the orchestrator could not store it: `retries` counts those)."""
    app.send_task(queues.DELIVER_TASK, args=[instance_id, message.to_wire()],
                  kwargs={"retries": retries} if retries else None, queue=queues.workflow_queue(app_id),
                  countdown=countdown, argsrepr=f"({instance_id!r}, {message.message_id!r})",
                  kwargsrepr=f"{{'retries': {retries}}}")


def publish_activity(app: Celery, app_id: str, request: wire.ActivityRequest, *, producer: Any = None) -> None:
    """Dispatch one activity call to `app_id`'s pool that runs it (`request.pool`); its trace
    context (if any) also travels as the `traceparent` message header, where OpenTelemetry
    tools look for it."""
    app.send_task(
        queues.activity_task_name(request.name),
        args=[request.to_wire()],
        queue=queues.activity_queue(app_id, request.pool),
        task_id=f"{request.execution_id}#{request.attempt}",
        producer=producer,
        argsrepr=f"({request.instance_id!r}, task {request.task_id})",
        kwargsrepr="{}",
        headers={wire.TRACEPARENT: request.traceparent} if request.traceparent else None,
    )


def _ids_repr(ids: list[str]) -> str:
    return repr(ids) if len(ids) <= 3 else f"[{ids[0]!r}, ... {len(ids)} instances]"
