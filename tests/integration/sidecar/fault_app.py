"""A Dapr workflow app (Dapr's own Python SDK, `dapr.ext.workflow`) for the sidecar fault rows:
`chain` calls `step` three times; each execution writes the activity ledger (LEDGERFLOW_CHAOS_LEDGER,
tests/fixtures/checker.py) before and after its effect, so duplicates are counted.
Run as `python fault_app.py`; it serves until SIGTERM. STEP_SECONDS sets how long a step takes."""

from __future__ import annotations

import os
import signal
import threading

import dapr.ext.workflow as wf

from tests.fixtures import checker

wfr = wf.WorkflowRuntime()
SECONDS = float(os.environ.get("STEP_SECONDS", "0.3"))


@wfr.workflow(name="chain")
def chain(ctx: wf.DaprWorkflowContext, value: int):  # type: ignore[no-untyped-def]
    for _ in range(3):
        value = yield ctx.call_activity(step, input=value)
    return value


@wfr.activity(name="step")
def step(ctx: wf.WorkflowActivityContext, value: int) -> int:
    call = f"{ctx.workflow_id}:{ctx.task_id}"
    checker.record_execution(ctx.workflow_id, ctx.task_id, call, 1, "step", "start")
    threading.Event().wait(SECONDS)
    checker.record_execution(ctx.workflow_id, ctx.task_id, call, 1, "step", "done")
    return value + 1


if __name__ == "__main__":
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    wfr.start()
    print("fault app serving", flush=True)
    stop.wait()
    wfr.shutdown()
