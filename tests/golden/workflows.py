"""The workflow code the golden histories in `histories/` were recorded from.

Change a workflow here and `tests/unit/engine/test_golden_replay.py` replays every recorded
history against the changed code: a change that would break running instances fails there
first. Do not edit a workflow to make a golden replay pass unless the change is meant to be
safe for running instances (guard new paths with `ctx.is_patched`, or add a new version).

`nondeterministic` is deliberately different from the code its history was recorded with
(see `record.py`): its replay must fail with NonDeterminismError.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from ledgerflow.registration import Registrar
from orchestrator.engine.errors import TaskFailedError
from orchestrator.engine.retry import RetryPolicy
from orchestrator.engine.tasks import when_all, when_any

RETRY = RetryPolicy(first_retry_interval=timedelta(seconds=2), max_number_of_attempts=4, backoff_coefficient=2)


@dataclass
class Shipment:
    order_id: str
    lines: list


def chain(ctx, names):
    greetings = []
    for name in names:
        greetings.append((yield ctx.call_activity("greet", input=name)))
    return greetings


def fan_out(ctx, count):
    parts = yield when_all([ctx.call_activity("square", input=i) for i in range(count)])
    total = yield ctx.call_activity("sum", input=parts)
    return {"parts": parts, "total": total}


def timers_and_events(ctx):
    approval = yield ctx.wait_for_external_event("approval", timeout=timedelta(minutes=10))
    yield ctx.create_timer(timedelta(seconds=30))
    try:
        second = yield ctx.wait_for_external_event("second", timeout=5)
    except TimeoutError as err:
        second = str(err)
    race = ctx.wait_for_external_event("race")
    winner = yield when_any([race, ctx.create_timer(timedelta(hours=1))])
    return [approval, second, winner is race]


def retries(ctx):
    first = yield ctx.call_activity("flaky", input="x", retry_policy=RETRY)
    try:
        yield ctx.call_activity("doomed", retry_policy=RETRY)
    except TaskFailedError as err:
        return [first, str(err)]
    return [first, "no failure"]


def child(ctx, n):
    return n * 2


def parent(ctx, n):
    results = yield when_all([ctx.call_child_workflow(child, input=i) for i in range(n)])
    try:
        yield ctx.call_child_workflow("child", input=-1, instance_id="golden-explicit-child", app_id="other")
    except TaskFailedError as err:
        results.append(err.details.message)
    return results


def looping(ctx, generation):
    tick = yield ctx.wait_for_external_event("tick")
    ctx.set_custom_status({"generation": generation, "tick": tick})
    ctx.continue_as_new(generation + 1, save_events=True)


def suspendable(ctx):
    a = yield ctx.call_activity("a")
    b = yield ctx.call_activity("b")
    return a + b


def long_running(ctx):
    kids = [ctx.call_child_workflow("child", input=i) for i in range(3)]
    yield when_all(kids)


def pricing_v1(ctx, amount):
    return (yield ctx.call_activity("price_v1", input=amount))


def pricing_v2(ctx, amount):
    price = yield ctx.call_activity("price_v2", input=amount)
    tax = yield ctx.call_activity("tax", input=price)
    return price + tax


def patched(ctx):
    yield ctx.call_activity("charge")
    if ctx.is_patched("send-receipt"):
        yield ctx.call_activity("send_receipt")
    yield ctx.call_activity("ship")
    return "shipped"


def helpers(ctx):
    ctx.set_custom_status("starting")
    ids = [ctx.new_guid(), ctx.new_guid()]
    draws = [ctx.random().randint(0, 10**6) for _ in range(3)]
    yield ctx.create_timer(timedelta(seconds=1))
    ids.append(ctx.new_guid())
    return {"ids": ids, "draws": draws, "now": ctx.now().isoformat()}


def serialization(ctx, shipment):
    label = yield ctx.call_activity("label", input=Shipment(shipment.order_id, shipment.lines))
    return {"order": shipment.order_id, "label": label.code, "text": "café ✓", "tuple": (1, 2)}


def failing(ctx):
    yield ctx.call_activity("step_one")
    yield ctx.call_activity("step_two")


def in_progress(ctx):
    yield ctx.call_activity("slow")
    yield ctx.wait_for_external_event("never")


def nondeterministic(ctx):
    # Recorded when this called "reserve" first; the changed code calls "reserve_v2".
    yield ctx.call_activity("reserve_v2")
    yield ctx.call_activity("charge")


def register(wfr: Registrar, *, with_versions: tuple[str, ...] = ("v1", "v2")) -> Registrar:
    for fn in (
        chain,
        fan_out,
        timers_and_events,
        retries,
        child,
        parent,
        looping,
        suspendable,
        long_running,
        patched,
        helpers,
        serialization,
        failing,
        in_progress,
        nondeterministic,
    ):
        wfr.register_workflow(fn)
    versions = {"v1": pricing_v1, "v2": pricing_v2}
    for name in with_versions:
        wfr.register_versioned_workflow(versions[name], name="pricing", version_name=name)
    return wfr


def registrar() -> Registrar:
    """Everything, as the current code registers it (pricing v2 is the latest version)."""
    return register(Registrar())
