"""An app with long timers, for WorkflowTestEnvironment's tests."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import ledgerflow as wf

wfr = wf.WorkflowRuntime(app_id="testing-env")
#: inputs the real `charge` ran with (a fake leaves this alone)
CHARGED: list[float] = []


@wfr.activity
def charge(ctx: wf.WorkflowActivityContext, amount: float) -> str:
    CHARGED.append(amount)
    return f"charged {amount}"


@wfr.workflow
def monthly(ctx: wf.DaprWorkflowContext, _: Any = None) -> Any:
    started = ctx.current_utc_datetime
    yield ctx.create_timer(timedelta(days=30))
    return [started.isoformat(), ctx.current_utc_datetime.isoformat()]


@wfr.workflow
def approval(ctx: wf.DaprWorkflowContext, amount: float) -> Any:
    started = ctx.current_utc_datetime
    approved = ctx.wait_for_external_event("approval")
    timeout = ctx.create_timer(timedelta(hours=24))
    winner = yield wf.when_any([approved, timeout])
    if winner == timeout:
        outcome = "expired"
    else:
        outcome = yield ctx.call_activity(charge, input=amount)
    return {"outcome": outcome, "started": started.isoformat(), "ended": ctx.current_utc_datetime.isoformat()}


@wfr.workflow
def hourly(ctx: wf.DaprWorkflowContext, count: int) -> Any:
    times = [ctx.current_utc_datetime.isoformat()]
    for done in range(count):
        yield ctx.create_timer(timedelta(hours=1))
        times.append(ctx.current_utc_datetime.isoformat())
        ctx.set_custom_status(done + 1)
    return times
