"""An order-processing workflow: chaining, fan-out/fan-in, human approval with a timeout,
and compensation. The app behind docker-compose.yml and the Procfile, and the README demo.

Run the demo (embedded default: SQLite + in-memory broker, everything in this process):
    python -m examples.order_app
"""

from __future__ import annotations

import json
import sys
import time
from datetime import timedelta

import ledgerflow as wf

wfr = wf.WorkflowRuntime()
retry = wf.RetryPolicy(first_retry_interval=timedelta(milliseconds=100), max_number_of_attempts=3)


@wfr.activity
def price_item(ctx: wf.WorkflowActivityContext, item: dict) -> float:
    return round(item["qty"] * item["unit_price"], 2)


@wfr.activity
def reserve_inventory(ctx: wf.WorkflowActivityContext, order: dict) -> str:
    return f"reservation-{order['id']}"


@wfr.activity
def charge_payment(ctx: wf.WorkflowActivityContext, payment: dict) -> str:
    if payment["amount"] > 10_000:
        raise ValueError(f"card declined for {payment['amount']:.2f}")
    return f"charge-{payment['order_id']}"


@wfr.activity
def release_inventory(ctx: wf.WorkflowActivityContext, reservation: str) -> str:
    return f"released {reservation}"


@wfr.workflow
def process_order(ctx: wf.DaprWorkflowContext, order: dict):
    prices = yield wf.when_all([ctx.call_activity(price_item, input=i) for i in order["items"]])
    total = round(sum(prices), 2)
    ctx.set_custom_status({"stage": "priced", "total": total})
    reservation = yield ctx.call_activity(reserve_inventory, input=order, retry_policy=retry)
    if total > order.get("approval_threshold", 1_000):
        ctx.set_custom_status({"stage": "awaiting approval", "total": total})
        try:
            approval = yield ctx.wait_for_external_event("approval", timeout=timedelta(hours=24))
        except TimeoutError:
            yield ctx.call_activity(release_inventory, input=reservation)
            return {"order": order["id"], "status": "expired"}
        if not approval.get("approved"):
            yield ctx.call_activity(release_inventory, input=reservation)
            return {"order": order["id"], "status": "rejected"}
    try:
        charge = yield ctx.call_activity(charge_payment, input={"order_id": order["id"], "amount": total})
    except wf.TaskFailedError as exc:
        released = yield ctx.call_activity(release_inventory, input=reservation)
        return {"order": order["id"], "status": "payment failed", "reason": exc.details.message, "undo": released}
    return {"order": order["id"], "status": "completed", "total": total, "charge": charge}


def main() -> int:
    wfr.start()
    client = wf.DaprWorkflowClient()
    try:
        order = {"id": "A-1001", "approval_threshold": 100,
                 "items": [{"sku": "pen", "qty": 10, "unit_price": 1.5}, {"sku": "desk", "qty": 1, "unit_price": 240}]}
        iid = client.schedule_new_workflow(process_order, input=order)
        print(f"started order workflow {iid}")
        client.wait_for_workflow_start(iid, timeout_in_seconds=30)
        state = client.get_workflow_state(iid)
        while json.loads(state.serialized_custom_status or "{}").get("stage") != "awaiting approval":
            time.sleep(0.05)
            state = client.get_workflow_state(iid)
        print(f"status: {state.runtime_status.name}, custom status: {state.serialized_custom_status}")
        client.raise_workflow_event(iid, "approval", data={"approved": True, "by": "demo"})
        state = client.wait_for_workflow_completion(iid, timeout_in_seconds=60)
        print(f"final status: {state.runtime_status.name}")
        print(f"result: {state.serialized_output}")
        return 0 if state.runtime_status == wf.WorkflowStatus.COMPLETED else 1
    finally:
        client.close()
        wfr.shutdown()


if __name__ == "__main__":
    sys.exit(main())
