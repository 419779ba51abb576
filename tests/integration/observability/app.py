"""The workflow the observability tests follow: two activities, a timer, an external event
and a child workflow (with an activity of its own), so each kind of span appears once."""

from __future__ import annotations

import logging
from datetime import timedelta

import ledgerflow as wf

wfr = wf.WorkflowRuntime()
log = logging.getLogger("ledgerflow.tests.observed")


@wfr.activity
def greet(ctx: wf.WorkflowActivityContext, name: str) -> str:
    log.info("greeting %s", name, extra={"instance_id": ctx.workflow_id, "activity": "greet"})
    return f"hello {name}"


@wfr.activity
def shout(ctx: wf.WorkflowActivityContext, text: str) -> str:
    return text.upper()


@wfr.activity
def explode(ctx: wf.WorkflowActivityContext, why: str) -> str:
    raise ValueError(why)


@wfr.workflow
def leaf(ctx: wf.DaprWorkflowContext, text: str):
    return (yield ctx.call_activity(shout, input=text))


@wfr.workflow
def observed(ctx: wf.DaprWorkflowContext, name: str):
    greeting = yield ctx.call_activity(greet, input=name)
    loud = yield ctx.call_activity(shout, input=greeting)
    yield ctx.create_timer(timedelta(milliseconds=200))
    answer = yield ctx.wait_for_external_event("go")
    child = yield ctx.call_child_workflow(leaf, input=loud, instance_id=f"{ctx.instance_id}-leaf")
    return [greeting, loud, answer, child]


@wfr.workflow
def failing(ctx: wf.DaprWorkflowContext, why: str):
    return (yield ctx.call_activity(explode, input=why))
