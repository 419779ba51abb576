"""Every pattern from the Dapr docs, as one app; used by the end-to-end tests on both stacks.

Activities keep no state in module globals (they may run in another process); what they
did is visible in the workflow outputs and in a ledger file when LEDGER_DIR is set.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta

import ledgerflow as wf

wfr = wf.WorkflowRuntime()
fast_retry = wf.RetryPolicy(first_retry_interval=timedelta(milliseconds=200), max_number_of_attempts=3,
                            backoff_coefficient=2.0)


def _ledger(kind: str, key: str) -> None:
    directory = os.environ.get("LEDGER_DIR")
    if directory:
        with open(os.path.join(directory, f"{kind}.log"), "a") as fh:
            fh.write(f"{key} {os.getpid()} {time.time()}\n")


@wfr.activity
def step(ctx: wf.WorkflowActivityContext, value: str) -> str:
    return value + "+"


@wfr.activity
def square(ctx: wf.WorkflowActivityContext, n: int) -> int:
    return n * n


@wfr.activity
def slow(ctx: wf.WorkflowActivityContext, seconds: float) -> float:
    _ledger("slow-start", f"{ctx.workflow_id}:{ctx.task_execution_id}")
    time.sleep(seconds)
    _ledger("slow-done", f"{ctx.workflow_id}:{ctx.task_execution_id}")
    return seconds


@wfr.activity
def flaky(ctx: wf.WorkflowActivityContext, fail_times: int) -> int:
    """Fails on its first `fail_times` attempts (attempt numbers come from the engine)."""
    if ctx.attempt <= fail_times:
        raise ValueError(f"attempt {ctx.attempt} fails")
    return ctx.attempt


@wfr.activity
def refund(ctx: wf.WorkflowActivityContext, order: str) -> str:
    return f"refunded {order}"


@wfr.workflow
def chaining(ctx: wf.DaprWorkflowContext, value: str):
    a = yield ctx.call_activity(step, input=value)
    b = yield ctx.call_activity(step, input=a)
    c = yield ctx.call_activity(step, input=b)
    return c


@wfr.workflow
def fan_out(ctx: wf.DaprWorkflowContext, n: int):
    results = yield wf.when_all([ctx.call_activity(square, input=i) for i in range(n)])
    return sum(results)


@wfr.workflow
def race_timer(ctx: wf.DaprWorkflowContext, seconds: float):
    work = ctx.call_activity(slow, input=seconds)
    timer = ctx.create_timer(timedelta(seconds=0.5))
    winner = yield wf.when_any([work, timer])
    return "timer" if winner == timer else "work"


@wfr.workflow
def approval(ctx: wf.DaprWorkflowContext, timeout_s: float):
    ctx.set_custom_status("waiting for approval")
    try:
        decision = yield ctx.wait_for_external_event("approval", timeout=timedelta(seconds=timeout_s))
    except TimeoutError:
        return "expired"
    ctx.set_custom_status("approved")
    return f"approved by {decision['by']}"


@wfr.workflow
def monitor(ctx: wf.DaprWorkflowContext, state: dict):
    checks = state["checks"] + 1
    yield ctx.create_timer(timedelta(milliseconds=100))
    if checks >= state["until"]:
        return checks
    ctx.continue_as_new({"checks": checks, "until": state["until"]})


@wfr.workflow
def child(ctx: wf.DaprWorkflowContext, n: int):
    value = yield ctx.call_activity(square, input=n)
    if n < 0:
        raise ValueError("negative input")
    return value


@wfr.workflow
def parent(ctx: wf.DaprWorkflowContext, ns: list):
    results = yield wf.when_all([ctx.call_child_workflow(child, input=n) for n in ns])
    return results


@wfr.workflow
def retrying(ctx: wf.DaprWorkflowContext, fail_times: int):
    attempt = yield ctx.call_activity(flaky, input=fail_times, retry_policy=fast_retry)
    return attempt


@wfr.workflow
def compensation(ctx: wf.DaprWorkflowContext, order: str):
    try:
        yield ctx.call_activity(flaky, input=10)
    except wf.TaskFailedError as exc:
        undone = yield ctx.call_activity(refund, input=order)
        return {"error": exc.details.error_type, "compensated": undone}
    return "no failure"


@wfr.workflow
def waiter(ctx: wf.DaprWorkflowContext):
    value = yield ctx.wait_for_external_event("go")
    return value


@wfr.workflow
def parent_of_waiters(ctx: wf.DaprWorkflowContext, n: int):
    yield wf.when_all([ctx.call_child_workflow(waiter, instance_id=f"{ctx.instance_id}-child-{i}") for i in range(n)])
    return "never"


@wfr.workflow
def sleeper(ctx: wf.DaprWorkflowContext, seconds: float):
    yield ctx.create_timer(timedelta(seconds=seconds))
    return ctx.current_utc_datetime.isoformat()


@wfr.workflow
def slow_chain(ctx: wf.DaprWorkflowContext, seconds: float):
    done = yield ctx.call_activity(slow, input=seconds)
    return done


@wfr.workflow
def fan_slow(ctx: wf.DaprWorkflowContext, spec: dict):
    done = yield wf.when_all([ctx.call_activity(slow, input=spec["seconds"]) for _ in range(spec["n"])])
    return len(done)


@wfr.workflow
def awaiting_payment(ctx: wf.DaprWorkflowContext, order_id: str):
    payment = yield ctx.wait_for_external_event("payment_received")
    return {"order": order_id, "paid": payment["amount"]}
