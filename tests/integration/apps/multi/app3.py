"""app3: the activity at the end of the chain."""

import ledgerflow as wf

wfr = wf.WorkflowRuntime()


@wfr.activity
def leaf(ctx: wf.WorkflowActivityContext, value: str) -> str:
    print(f"app3 leaf ran {value} for {ctx.workflow_id}", flush=True)
    if value == "activity-fails":
        raise ValueError("leaf failed")
    return f"leaf({value})"
