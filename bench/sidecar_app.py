"""The benchmark's chain as a Dapr app on Dapr's own Python SDK (`dapr.ext.workflow`), for
`python -m bench.sidecar`: the same workflow and no-op activity as `bench.app`, replayed and run
in this process, behind `ledgerflow sidecar`. Serves until SIGTERM."""

from __future__ import annotations

import signal
import threading
from typing import Any

import dapr.ext.workflow as wf

wfr = wf.WorkflowRuntime()


@wfr.activity(name="noop")
def noop(ctx: wf.WorkflowActivityContext, value: Any = None) -> Any:
    return value


@wfr.workflow(name="chain")
def chain(ctx: wf.DaprWorkflowContext, n: int):  # type: ignore[no-untyped-def]
    for i in range(n):
        yield ctx.call_activity(noop, input=i)
    return n


if __name__ == "__main__":
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    wfr.start()
    stop.wait()
    wfr.shutdown()
