"""Publishing the three kinds of Ledgerflow messages."""

from __future__ import annotations

from typing import Any

from celery import Celery

from brokers import queues


def publish_orchestrate(app: Celery, app_id: str, instance_id: str) -> None:
    """Wake the orchestrators of `app_id` for `instance_id` (its inbox has work)."""
    app.send_task(queues.ORCHESTRATE_TASK, args=[instance_id], queue=queues.workflow_queue(app_id))


def publish_deliver(app: Celery, app_id: str, instance_id: str, message: dict[str, Any]) -> None:
    """Send a result back to the app that owns `instance_id`."""
    app.send_task(queues.DELIVER_TASK, args=[instance_id, message], queue=queues.workflow_queue(app_id))


def publish_activity(app: Celery, app_id: str, pool: str | None, request: dict[str, Any]) -> None:
    """Dispatch one activity call to the pool that runs it."""
    app.send_task(
        queues.activity_task_name(request["name"]),
        args=[request],
        queue=queues.activity_queue(app_id, pool),
        task_id=f"{request['execution_id']}#{request['attempt']}",
    )


def publish_tick(app: Celery, app_id: str) -> None:
    app.send_task(queues.TICK_TASK, args=[app_id], queue=queues.workflow_queue(app_id))
