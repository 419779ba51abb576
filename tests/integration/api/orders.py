"""The app behind the HTTP API tests: the Dapr docs' OrderProcessingWorkflow (the seed's
async request-reply walk-through), plus a workflow that waits for an event."""

from __future__ import annotations

import ledgerflow as wf

wfr = wf.WorkflowRuntime()


@wfr.activity
def process_payment(ctx: wf.WorkflowActivityContext, order: dict) -> float:
    return order["TotalCost"] * order["Quantity"]


@wfr.workflow(name="OrderProcessingWorkflow")
def order_processing(ctx: wf.DaprWorkflowContext, order: dict):
    ctx.set_custom_status("paying")
    yield ctx.call_activity(process_payment, input=order)
    return {"Processed": True}


@wfr.workflow(name="WaitForApproval")
def wait_for_approval(ctx: wf.DaprWorkflowContext, _input=None):
    ctx.set_custom_status({"stage": "waiting"})
    approval = yield ctx.wait_for_external_event("approval")
    return {"approved": approval}


@wfr.workflow(name="Fails")
def fails(ctx: wf.DaprWorkflowContext, _input=None):
    raise ValueError("no stock")
    yield  # a generator


@wfr.activity
def boom(ctx: wf.WorkflowActivityContext, _input=None) -> None:
    raise RuntimeError("boom went the activity")


@wfr.workflow(name="CallsBoom")
def calls_boom(ctx: wf.DaprWorkflowContext, _input=None):
    yield ctx.call_activity(boom)
