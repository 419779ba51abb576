"""Every pattern from the seeds end to end, on the embedded default and on the real stack."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

import ledgerflow as wf
from tests.integration.stacks import Stack, embedded_stack, real_stack, stack  # noqa: F401

pytestmark = pytest.mark.integration
S = wf.WorkflowStatus


def run(stack: Stack, name: str, value=None, timeout: float = 60, **kwargs) -> wf.WorkflowState:
    iid = stack.client.schedule_new_workflow(name, input=value, **kwargs)
    state = stack.client.wait_for_workflow_completion(iid, timeout_in_seconds=timeout)
    assert state is not None
    return state


def output(state: wf.WorkflowState):
    assert state.runtime_status == S.COMPLETED, state.failure_details
    return json.loads(state.serialized_output)


def test_task_chaining(stack: Stack) -> None:
    assert output(run(stack, "chaining", "go")) == "go+++"


def test_fan_out_fan_in_of_100(stack: Stack) -> None:
    assert output(run(stack, "fan_out", 100)) == sum(i * i for i in range(100))


def test_when_any_with_a_timer(stack: Stack) -> None:
    assert output(run(stack, "race_timer", 5)) == "timer"
    assert output(run(stack, "race_timer", 0)) == "work"


def test_human_approval_with_event_and_timeout(stack: Stack) -> None:
    iid = stack.client.schedule_new_workflow("approval", input=30)
    stack.client.wait_for_workflow_start(iid, timeout_in_seconds=30)
    state = stack.client.get_workflow_state(iid)
    assert json.loads(state.serialized_custom_status) == "waiting for approval" or state.runtime_status == S.RUNNING
    stack.client.raise_workflow_event(iid, "Approval", data={"by": "ann"})
    state = stack.client.wait_for_workflow_completion(iid, timeout_in_seconds=30)
    assert output(state) == "approved by ann"
    assert json.loads(state.serialized_custom_status) == "approved"
    assert output(run(stack, "approval", 0.5)) == "expired"


def test_monitor_with_continue_as_new(stack: Stack) -> None:
    assert output(run(stack, "monitor", {"checks": 0, "until": 5})) == 5


def test_child_workflows_and_their_failures(stack: Stack) -> None:
    assert output(run(stack, "parent", [1, 2, 3])) == [1, 4, 9]
    failed = run(stack, "parent", [1, -2])
    assert failed.runtime_status == S.FAILED
    assert failed.failure_details.error_type == "TaskFailedError"
    assert "Sub-orchestration task #1 failed: negative input" in failed.failure_details.message


def test_retries_with_backoff(stack: Stack) -> None:
    assert output(run(stack, "retrying", 2)) == 3
    exhausted = run(stack, "retrying", 5)
    assert exhausted.runtime_status == S.FAILED
    assert "attempt 3 fails" in exhausted.failure_details.message


def test_compensation(stack: Stack) -> None:
    assert output(run(stack, "compensation", "o-1")) == {"error": "ValueError", "compensated": "refunded o-1"}


def test_suspend_and_resume(stack: Stack) -> None:
    iid = stack.client.schedule_new_workflow("waiter")
    stack.client.wait_for_workflow_start(iid, timeout_in_seconds=30)
    stack.client.pause_workflow(iid)
    assert stack.client.get_workflow_state(iid).runtime_status == S.SUSPENDED
    stack.client.raise_workflow_event(iid, "go", data="value")
    with pytest.raises(TimeoutError, match="Timed-out waiting for the orchestration to complete"):
        stack.client.wait_for_workflow_completion(iid, timeout_in_seconds=1.5)
    stack.client.resume_workflow(iid)
    assert stack.client.get_workflow_state(iid).runtime_status == S.RUNNING
    assert output(stack.client.wait_for_workflow_completion(iid, timeout_in_seconds=30)) == "value"


def test_terminate_is_recursive_and_purge_removes_children(stack: Stack) -> None:
    iid = stack.client.schedule_new_workflow("parent_of_waiters", input=3)
    children = [f"{iid}-child-{i}" for i in range(3)]
    for c in children:
        assert stack.client.wait_for_workflow_start(c, timeout_in_seconds=30) is not None
    with pytest.raises(RuntimeError, match="RUNNING"):
        stack.client.purge_workflow(iid)
    stack.client.terminate_workflow(iid, output="stopped")
    state = stack.client.wait_for_workflow_completion(iid, timeout_in_seconds=30)
    assert state.runtime_status == S.TERMINATED and json.loads(state.serialized_output) == "stopped"
    for c in children:
        assert stack.client.wait_for_workflow_completion(c, timeout_in_seconds=30).runtime_status == S.TERMINATED
    stack.client.purge_workflow(iid)
    assert stack.client.get_workflow_state(iid) is None
    assert all(stack.client.get_workflow_state(c) is None for c in children)


def test_custom_status_and_scheduled_start(stack: Stack) -> None:
    start_at = datetime.now(timezone.utc) + timedelta(seconds=2)
    iid = stack.client.schedule_new_workflow("chaining", input="s", start_at=start_at)
    assert stack.client.get_workflow_state(iid).runtime_status == S.PENDING
    state = stack.client.wait_for_workflow_completion(iid, timeout_in_seconds=30)
    assert output(state) == "s+++"
    history_start = state.last_updated_at
    assert history_start >= start_at


def test_unknown_workflow_and_activity_names_fail_clearly(stack: Stack) -> None:
    state = run(stack, "no_such_workflow")
    assert state.runtime_status == S.FAILED
    assert state.failure_details.message == "A 'no_such_workflow' orchestrator was not registered."


def test_restarting_a_finished_id_replaces_the_run_and_an_active_id_is_refused(stack: Stack) -> None:
    iid = stack.client.schedule_new_workflow("waiter", instance_id="same-id-1")
    with pytest.raises(RuntimeError, match="already exists"):
        stack.client.schedule_new_workflow("waiter", instance_id=iid)
    stack.client.raise_workflow_event(iid, "go", data=1)
    assert output(stack.client.wait_for_workflow_completion(iid, timeout_in_seconds=30)) == 1
    stack.client.schedule_new_workflow("chaining", input="again", instance_id=iid)
    assert output(stack.client.wait_for_workflow_completion(iid, timeout_in_seconds=30)) == "again+++"
