"""The app behind the dashboard's browser tests: an order that packs its items in parallel
(one item fails once and is retried), waits on a timer, ships through a child workflow and
waits for an approval event; plus a workflow that shows whatever it is given."""

from __future__ import annotations

import threading
from datetime import timedelta

import ledgerflow as wf

wfr = wf.WorkflowRuntime()
retry = wf.RetryPolicy(first_retry_interval=timedelta(milliseconds=200), max_number_of_attempts=3)

_failed_once: set[str] = set()
_lock = threading.Lock()


@wfr.activity
def pack_item(ctx: wf.WorkflowActivityContext, item: dict) -> str:
    key = f"{item['order']}/{item['item']}"
    with _lock:
        first = item["item"] == 1 and key not in _failed_once
        _failed_once.add(key)
    if first:
        raise RuntimeError(f"the scanner missed item {key}")
    return f"packed {key}"


@wfr.activity
def book_courier(ctx: wf.WorkflowActivityContext, parcel: dict) -> str:
    return f"courier for {parcel['items']} items"


@wfr.activity
def charge(ctx: wf.WorkflowActivityContext, order: str) -> str:
    return f"charged {order}"


@wfr.workflow(name="ShipOrder")
def ship_order(ctx: wf.DaprWorkflowContext, parcel: dict):
    courier = yield ctx.call_activity(book_courier, input=parcel)
    return courier


@wfr.workflow(name="FulfilOrder")
def fulfil_order(ctx: wf.DaprWorkflowContext, order: dict):
    ctx.set_custom_status({"stage": "packing"})
    packed = yield wf.when_all([
        ctx.call_activity(pack_item, input={"order": ctx.instance_id, "item": n}, retry_policy=retry)
        for n in range(order.get("items", 4))])
    yield ctx.create_timer(timedelta(milliseconds=300))
    courier = yield ctx.call_child_workflow(ship_order, input={"items": len(packed)})
    ctx.set_custom_status({"stage": "awaiting approval"})
    approval = yield ctx.wait_for_external_event("approval")
    if not (approval or {}).get("approved"):
        return {"order": ctx.instance_id, "approved": False}
    receipt = yield ctx.call_activity(charge, input=ctx.instance_id)
    return {"order": ctx.instance_id, "courier": courier, "receipt": receipt}


@wfr.workflow(name="Echo")
def echo(ctx: wf.DaprWorkflowContext, value=None):
    ctx.set_custom_status(value)
    yield ctx.wait_for_external_event("done")
    return value
