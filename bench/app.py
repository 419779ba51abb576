"""The workflows the benchmark runs, as one Ledgerflow app.

`ledgerflow orchestrator bench.app` and `ledgerflow worker bench.app` load `wfr` below; the
embedded runs build their own runtime with `build_runtime(...)` (same registrations).
Every activity is a no-op: the benchmark measures the machinery, not the work.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import ledgerflow as wf


def noop(ctx: wf.WorkflowActivityContext, value: Any = None) -> Any:
    return value


def chain(ctx: wf.DaprWorkflowContext, n: int):
    """`n` sequential no-op activities (P1, P3, P7a)."""
    for i in range(n):
        yield ctx.call_activity(noop, input=i)
    return n


def fanout(ctx: wf.DaprWorkflowContext, n: int):
    """`n` no-op activities at once, then fan-in (P2, P7b)."""
    results = yield wf.when_all([ctx.call_activity(noop, input=i) for i in range(n)])
    return len(results)


def timer_at(ctx: wf.DaprWorkflowContext, due: str):
    """Wait for a timer due at `due` (ISO 8601, UTC); return workflow time when it fired (P4)."""
    yield ctx.create_timer(datetime.fromisoformat(due))
    return ctx.current_utc_datetime.isoformat()


def wait_event(ctx: wf.DaprWorkflowContext, _: Any = None):
    """Idle until the event `go` arrives (P5)."""
    return (yield ctx.wait_for_external_event("go"))


def build_runtime(**overrides: Any) -> wf.WorkflowRuntime:
    runtime = wf.WorkflowRuntime(**overrides)
    runtime.register_activity(noop)
    for fn in (chain, fanout, timer_at, wait_event):
        runtime.register_workflow(fn)
    return runtime


wfr = build_runtime()
