"""Queue and task names: the addresses every Ledgerflow process agrees on."""

from __future__ import annotations

ORCHESTRATE_TASK = "ledgerflow.orchestrate"
DELIVER_TASK = "ledgerflow.deliver"
TICK_TASK = "ledgerflow.tick"
ACTIVITY_TASK_PREFIX = "ledgerflow.activity."


def workflow_queue(app_id: str) -> str:
    return f"ledgerflow.{app_id}.workflows"


def activity_queue(app_id: str, pool: str | None = None) -> str:
    base = f"ledgerflow.{app_id}.activities"
    return f"{base}.{pool}" if pool else base


def activity_task_name(activity_name: str) -> str:
    """One Celery task name per activity, so Flower shows each by name."""
    return ACTIVITY_TASK_PREFIX + activity_name


def activity_name_of(task_name: str) -> str | None:
    if task_name.startswith(ACTIVITY_TASK_PREFIX):
        return task_name[len(ACTIVITY_TASK_PREFIX):]
    return None
