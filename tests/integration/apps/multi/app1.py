"""app1: the root workflow, which calls a child workflow in app2."""

import ledgerflow as wf

wfr = wf.WorkflowRuntime()


@wfr.workflow
def root(ctx: wf.DaprWorkflowContext, value: str):
    if not ctx.is_replaying:
        print(f"app1 root start {value}", flush=True)
    try:
        result = yield ctx.call_child_workflow("mid", input=value, app_id="app2")
    except wf.TaskFailedError as exc:
        print(f"app1 root caught {exc.details.error_type}", flush=True)
        return f"root caught: {exc.details.message}"
    print(f"app1 root done {result}", flush=True)
    return f"root({result})"
