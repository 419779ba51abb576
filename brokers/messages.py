"""Publishing the three kinds of Ledgerflow messages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from celery import Celery

from brokers import queues


def publish_orchestrate(app: Celery, app_id: str, instance_ids: str | Sequence[str], *,
                        producer: Any = None) -> None:
    """Wake the orchestrators of `app_id` for these instances (their inboxes have work): one
    message, stepped as part of one batch."""
    ids = [instance_ids] if isinstance(instance_ids, str) else list(instance_ids)
    app.send_task(queues.ORCHESTRATE_TASK, args=ids, queue=queues.workflow_queue(app_id), producer=producer)


def publish_deliver(app: Celery, app_id: str, instance_id: str, message: dict[str, Any], *,
                    retries: int = 0, countdown: float | None = None) -> None:
    """Send a result back to the app that owns `instance_id` (again, after `countdown`
    seconds, when the orchestrator could not store it: `retries` counts those)."""
    app.send_task(queues.DELIVER_TASK, args=[instance_id, message], kwargs={"retries": retries} if retries else None,
                  queue=queues.workflow_queue(app_id), countdown=countdown)


def publish_activity(app: Celery, app_id: str, pool: str | None, request: dict[str, Any], *,
                     producer: Any = None) -> None:
    """Dispatch one activity call to the pool that runs it."""
    app.send_task(
        queues.activity_task_name(request["name"]),
        args=[request],
        queue=queues.activity_queue(app_id, pool),
        task_id=f"{request['execution_id']}#{request['attempt']}",
        producer=producer,
    )
