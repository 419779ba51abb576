"""Workflows and activities of three apps for the security tests: orders (the caller),
billing (the callee) and mallory (an app with a valid certificate and bad intentions)."""

from __future__ import annotations

from typing import Any

from ledgerflow.propagation import PropagationScope
from ledgerflow.registration import Registrar

#: (app, activity, input, propagated history or None) for every activity body that ran
CALLS: list[tuple[str, str, Any, Any]] = []

orders = Registrar()
billing = Registrar()
mallory = Registrar()


@orders.activity
def step(ctx: Any, x: int) -> int:
    CALLS.append(("orders", "step", x, ctx.get_propagated_history()))
    return x + 1


@orders.activity
def verify_customer(ctx: Any, who: str) -> str:
    CALLS.append(("orders", "verify_customer", who, None))
    return f"verified {who}"


@orders.workflow
def chain(ctx: Any, n: int):
    x = 0
    for _ in range(n):
        x = yield ctx.call_activity(step, input=x)
    return x


@orders.workflow
def waiter(ctx: Any, _: Any = None):
    a = yield ctx.call_activity(step, input=1)
    go = yield ctx.wait_for_external_event("go")
    b = yield ctx.call_activity(step, input=a + (go or 0))
    c = yield ctx.call_activity(step, input=b)
    return c


@orders.workflow
def timer_waiter(ctx: Any, _: Any = None):
    from datetime import timedelta

    a = yield ctx.call_activity(step, input=1)
    yield ctx.create_timer(timedelta(minutes=10))
    return (yield ctx.call_activity(step, input=a))


@orders.workflow
def checkout(ctx: Any, spec: dict[str, Any]):
    """Calls billing's activity or child workflow, optionally after verify_customer."""
    if spec.get("verify"):
        yield ctx.call_activity(verify_customer, input="ann")
    scope = PropagationScope[spec["scope"]] if spec.get("scope") else None
    if spec.get("child"):
        return (yield ctx.call_child_workflow(spec["child"], input=spec.get("input", 1), app_id="billing",
                                              propagation=scope))
    retry = None
    if spec.get("retry"):
        from datetime import timedelta

        from ledgerflow import RetryPolicy

        retry = RetryPolicy(first_retry_interval=timedelta(seconds=1), max_number_of_attempts=3)
    return (yield ctx.call_activity(spec.get("activity", "charge"), input=spec.get("input", 1), app_id="billing",
                                    propagation=scope, retry_policy=retry))


@orders.workflow
def local_parent(ctx: Any, scope: str | None):
    first = yield ctx.call_activity(step, input=1)
    prop = PropagationScope[scope] if scope else None
    return [first, (yield ctx.call_child_workflow(local_child, input=first, propagation=prop))]


@orders.workflow
def local_child(ctx: Any, x: int):
    history = ctx.get_propagated_history()
    seen = None
    if history is not None:
        seen = [w.name for w in history.get_workflows()]
    y = yield ctx.call_activity(step, input=x, propagation=PropagationScope.LINEAGE)
    return {"seen": seen, "y": y}


@orders.workflow
def looping(ctx: Any, n: int):
    history = ctx.get_propagated_history()
    y = yield ctx.call_activity(step, input=n)
    if n < 2:
        ctx.continue_as_new(n + 1)
        return None
    return {"y": y, "seen": [w.name for w in history.get_workflows()] if history else None}


@orders.workflow
def loop_parent(ctx: Any, _: Any = None):
    yield ctx.call_activity(step, input=0)
    return (yield ctx.call_child_workflow(looping, input=0, propagation=PropagationScope.OWN_HISTORY))


@billing.activity
def charge(ctx: Any, amount: int) -> str:
    CALLS.append(("billing", "charge", amount, ctx.get_propagated_history()))
    return f"charged {amount}"


@billing.activity
def refund(ctx: Any, amount: int) -> str:
    CALLS.append(("billing", "refund", amount, None))
    return f"refunded {amount}"


@billing.workflow
def invoice(ctx: Any, amount: int):
    history = ctx.get_propagated_history()
    charged = yield ctx.call_activity(charge, input=amount)
    names = None
    if history is not None:
        last = history.get_last_workflow_by_name("checkout")
        names = [a.name for a in last.activities]
    return {"charged": charged, "caller_activities": names}


@billing.workflow
def audit(ctx: Any, amount: int):
    return amount


@billing.workflow
def relay(ctx: Any, spec: dict[str, Any]):
    """billing calling onward (for LINEAGE): an activity of orders with the given scope."""
    scope = PropagationScope[spec["scope"]]
    return (yield ctx.call_activity("step", input=1, app_id="orders", propagation=scope))


@mallory.activity
def steal(ctx: Any, x: Any) -> str:
    return "stolen"
