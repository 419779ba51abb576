"""app2: a child workflow, which calls an activity in app3."""

import ledgerflow as wf

wfr = wf.WorkflowRuntime()


@wfr.workflow
def mid(ctx: wf.DaprWorkflowContext, value: str):
    if not ctx.is_replaying:
        print(f"app2 mid start {value}", flush=True)
    result = yield ctx.call_activity("leaf", input=value, app_id="app3")
    if value == "child-fails":
        raise ValueError("mid refuses")
    if not ctx.is_replaying:
        print(f"app2 mid done {result}", flush=True)
    return f"mid({result})"
