"""Running one activity call and turning its outcome into a message for the owner's inbox."""

from __future__ import annotations

import asyncio
import inspect
import logging
from datetime import datetime, timezone
from typing import Any

from orchestrator.engine import codec
from orchestrator.engine import events as ev
from orchestrator.engine.activity import WorkflowActivityContext
from orchestrator.engine.errors import failure_from_exception
from orchestrator.engine.registry import Registry
from orchestrator.engine.serialization import from_json, to_json
from orchestrator.engine.signatures import call_with_input

log = logging.getLogger("ledgerflow.worker")


def result_message_id(generation: int, task_id: int) -> str:
    """One inbox message per task result: a redelivered result is dropped, not applied twice."""
    return f"task:{generation}:{task_id}"


def run_activity(registry: Registry, request: dict[str, Any]) -> dict[str, Any]:
    """Run the activity named in `request`; never raises. Returns the inbox message."""
    name, task_id = request["name"], request["task_id"]
    ctx = WorkflowActivityContext(
        request["instance_id"],
        task_id,
        request["execution_id"],
        attempt=request.get("attempt", 1),
        app_id=request.get("app_id"),
    )
    now = wall_clock()
    log.info("activity start", extra={"instance_id": ctx.workflow_id, "activity": name, "task_id": task_id})
    try:
        fn = registry.activity(name)
        result = call_with_input(fn, ctx, from_json(request.get("input")))
        if inspect.isawaitable(result):
            result = asyncio.run(_awaited(result))
        event: ev.HistoryEvent = ev.TaskCompleted(now, task_id, to_json(result, what=f"Output of activity '{name}'"))
    except Exception as exc:  # the activity's failure is the workflow's business
        log.info(
            "activity failed",
            extra={"instance_id": ctx.workflow_id, "activity": name, "task_id": task_id, "error": repr(exc)},
        )
        event = ev.TaskFailed(now, task_id, failure_from_exception(exc))
    return result_message(request, event)


def result_message(request: dict[str, Any], event: ev.HistoryEvent) -> dict[str, Any]:
    type_name, payload = codec.encode(event)
    return {
        "message_id": result_message_id(request["generation"], request["task_id"]),
        "type": type_name,
        "payload": payload,
        "generation": request["generation"],
        "run": request.get("run"),
    }


def wall_clock() -> datetime:
    """Naive UTC now: event timestamps are naive UTC, like workflow time."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


async def _awaited(awaitable: Any) -> Any:
    return await awaitable
