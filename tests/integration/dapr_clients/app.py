"""The app behind the Dapr client tests: a greeting, a workflow that waits for an event, one
that runs long, and a pipeline whose second step fails once per process (for rerun)."""

from __future__ import annotations

from datetime import timedelta

import ledgerflow as wf

wfr = wf.WorkflowRuntime()

#: Calls of each activity in this process.
CALLS: dict[str, int] = {}


def _count(name: str) -> int:
    CALLS[name] = CALLS.get(name, 0) + 1
    return CALLS[name]


@wfr.activity
def greet(ctx: wf.WorkflowActivityContext, name: str | dict) -> str:
    return f"Hello, {name if isinstance(name, str) else name['name']}!"


@wfr.workflow(name="hello")
def hello(ctx: wf.DaprWorkflowContext, name: str | dict):
    ctx.set_custom_status("greeting")
    return (yield ctx.call_activity(greet, input=name))


@wfr.workflow(name="approval")
def approval(ctx: wf.DaprWorkflowContext, _input=None):
    decision = yield ctx.wait_for_external_event("approve")
    return {"approved": decision}


@wfr.workflow(name="sleeper")
def sleeper(ctx: wf.DaprWorkflowContext, seconds: int | None = None):
    yield ctx.create_timer(timedelta(seconds=seconds or 3600))
    return "woke"


@wfr.workflow(name="fails")
def fails(ctx: wf.DaprWorkflowContext, _input=None):
    raise ValueError("no stock")
    yield  # a generator


@wfr.activity
def prepare(ctx: wf.WorkflowActivityContext, item: str) -> str:
    return f"{item}#{_count('prepare')}"


@wfr.activity
def ship(ctx: wf.WorkflowActivityContext, prepared: str) -> str:
    if _count("ship") == 1:
        raise RuntimeError("the carrier is down")
    return f"shipped {prepared}"


@wfr.workflow(name="pipeline")
def pipeline(ctx: wf.DaprWorkflowContext, item: str):
    prepared = yield ctx.call_activity(prepare, input=item)
    return (yield ctx.call_activity(ship, input=prepared))
