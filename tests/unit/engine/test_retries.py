"""Retry policies: validation, delay arithmetic, durable retry timers, non-retryable errors."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from orchestrator.engine import actions as act
from orchestrator.engine import executor
from orchestrator.engine.errors import TaskFailedError
from orchestrator.engine.registry import Registry
from orchestrator.engine.retry import RetryPolicy, next_delay
from tests.unit.engine.factories import (
    T0,
    Run,
    at,
    child_completed,
    child_failed,
    output,
    task_completed,
    task_failed,
    timer_fired,
    workflow,
)

S = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"first_retry_interval": -S, "max_number_of_attempts": 1}, "first_retry_interval must be >= 0"),
        ({"first_retry_interval": S, "max_number_of_attempts": 0}, "max_number_of_attempts must be >= 1"),
        (
            {"first_retry_interval": S, "max_number_of_attempts": 2, "backoff_coefficient": 0.5},
            "backoff_coefficient must be >= 1",
        ),
        (
            {"first_retry_interval": S, "max_number_of_attempts": 2, "max_retry_interval": -S},
            "max_retry_interval must be >= 0",
        ),
        ({"first_retry_interval": S, "max_number_of_attempts": 2, "retry_timeout": -S}, "retry_timeout must be >= 0"),
    ],
)
def test_retry_policy_validation_messages(kwargs, message) -> None:
    with pytest.raises(ValueError) as info:
        RetryPolicy(**kwargs)
    assert str(info.value) == message


def test_retry_policy_defaults() -> None:
    policy = RetryPolicy(first_retry_interval=S, max_number_of_attempts=3)
    assert (policy.backoff_coefficient, policy.max_retry_interval, policy.retry_timeout) == (1.0, None, None)


@pytest.mark.parametrize(
    ("policy", "delays"),
    [
        (RetryPolicy(first_retry_interval=S, max_number_of_attempts=1), []),
        (RetryPolicy(first_retry_interval=S, max_number_of_attempts=4), [1, 1, 1]),
        (RetryPolicy(first_retry_interval=S, max_number_of_attempts=5, backoff_coefficient=2), [1, 2, 4, 8]),
        (
            RetryPolicy(
                first_retry_interval=2 * S, max_number_of_attempts=5, backoff_coefficient=3, max_retry_interval=10 * S
            ),
            [2, 6, 10, 10],
        ),
        (RetryPolicy(first_retry_interval=S, max_number_of_attempts=3, backoff_coefficient=None), [1, 1]),
        (RetryPolicy(first_retry_interval=0 * S, max_number_of_attempts=3), [0, 0]),
    ],
)
def test_delay_before_attempt_k_plus_one(policy, delays) -> None:
    got = []
    attempts_made = 1
    while (delay := next_delay(policy, attempts_made, T0, T0)) is not None:
        got.append(delay.total_seconds())
        attempts_made += 1
    assert got == delays
    assert attempts_made == policy.max_number_of_attempts


def test_retry_timeout_is_measured_in_workflow_time() -> None:
    policy = RetryPolicy(first_retry_interval=S, max_number_of_attempts=10, retry_timeout=timedelta(seconds=30))
    assert next_delay(policy, 1, T0, at(29)) == S
    assert next_delay(policy, 1, T0, at(30)) is None


def _retrying(policy: RetryPolicy) -> Registry:
    reg = Registry()

    @workflow(reg)
    def wf(ctx):
        try:
            return (yield ctx.call_activity("flaky", input="x", retry_policy=policy))
        except TaskFailedError as err:
            return f"gave up: {err}"

    return reg


def test_failure_with_policy_waits_on_a_durable_timer_then_reschedules_under_new_sequence() -> None:
    policy = RetryPolicy(first_retry_interval=timedelta(seconds=5), max_number_of_attempts=3, backoff_coefficient=2)
    run = Run(_retrying(policy))
    assert run.start("wf").actions == [act.ScheduleTask(0, "flaky", '"x"', None, 1, 0)]
    assert run.step([task_failed(0)], t=at(1)).actions == [act.CreateTimer(1, at(6))]
    assert run.step([timer_fired(1, at(6))], t=at(6)).actions == [act.ScheduleTask(2, "flaky", '"x"', None, 2, 0)]
    assert run.step([task_failed(2)], t=at(7)).actions == [act.CreateTimer(3, at(17))]
    assert run.step([timer_fired(3, at(17))], t=at(17)).actions == [act.ScheduleTask(4, "flaky", '"x"', None, 3, 0)]
    assert output(run.step([task_completed(4, "finally")], t=at(18))) == "finally"
    assert [e.attempt for e in run.history if type(e).__name__ == "TaskScheduled"] == [1, 2, 3]


def test_max_number_of_attempts_counts_the_first_try() -> None:
    policy = RetryPolicy(first_retry_interval=S, max_number_of_attempts=2)
    run = Run(_retrying(policy))
    run.start("wf")
    run.step([task_failed(0, "one")])
    run.step([timer_fired(1, at(1))], t=at(1))
    result = run.step([task_failed(2, "two")], t=at(2))
    assert output(result) == "gave up: wf-1: Activity task #2 failed: two"


def test_max_retry_interval_caps_the_timer() -> None:
    policy = RetryPolicy(
        first_retry_interval=timedelta(seconds=10),
        max_number_of_attempts=5,
        backoff_coefficient=10,
        max_retry_interval=timedelta(seconds=15),
    )
    run = Run(_retrying(policy))
    run.start("wf")
    assert run.step([task_failed(0)]).actions == [act.CreateTimer(1, at(10))]
    run.step([timer_fired(1, at(10))], t=at(10))
    assert run.step([task_failed(2)], t=at(10)).actions == [act.CreateTimer(3, at(25))]


def test_no_retry_after_retry_timeout_of_workflow_time() -> None:
    policy = RetryPolicy(first_retry_interval=S, max_number_of_attempts=10, retry_timeout=timedelta(minutes=1))
    run = Run(_retrying(policy))
    run.start("wf")
    assert run.step([task_failed(0, "slow")], t=at(60)).actions == [
        act.CompleteOrchestration("COMPLETED", '"gave up: wf-1: Activity task #0 failed: slow"')
    ]


@pytest.mark.parametrize("error_type", ["NonRetryableError", "WorkflowAccessPolicyDenied",
                                        "ActivityDeliveryLimitExceeded"])
def test_non_retryable_failures_are_not_retried(error_type: str) -> None:
    policy = RetryPolicy(first_retry_interval=S, max_number_of_attempts=5)
    run = Run(_retrying(policy))
    run.start("wf")
    result = run.step([task_failed(0, "bad input", error_type)])
    assert output(result) == "gave up: wf-1: Activity task #0 failed: bad input"


def test_without_policy_failure_is_final() -> None:
    reg = Registry()

    @workflow(reg)
    def wf(ctx):
        yield ctx.call_activity("once")

    run = Run(reg)
    run.start("wf")
    assert run.step([task_failed(0, "x")]).status == executor.FAILED


def test_child_workflow_retry_reruns_the_child_with_the_same_instance_id() -> None:

    policy = RetryPolicy(first_retry_interval=timedelta(seconds=3), max_number_of_attempts=2)
    reg = Registry()

    @workflow(reg)
    def parent(ctx):
        return (yield ctx.call_child_workflow("child", input=1, retry_policy=policy))

    run = Run(reg)
    assert run.start("parent").actions == [act.CreateSubOrchestration(0, "child", "wf-1:0000", "1")]
    assert run.step([child_failed(0, "child broke")]).actions == [act.CreateTimer(1, at(3))]
    assert run.step([timer_fired(1, at(3))], t=at(3)).actions == [
        act.CreateSubOrchestration(2, "child", "wf-1:0000", "1", None, 2)
    ]
    assert output(run.step([child_completed(2, "ok")], t=at(4))) == "ok"


def test_child_retry_exhausted_raises_sub_orchestration_message() -> None:

    policy = RetryPolicy(first_retry_interval=S, max_number_of_attempts=2)
    reg = Registry()

    @workflow(reg)
    def parent(ctx):
        yield ctx.call_child_workflow("child", instance_id="kid", retry_policy=policy)

    run = Run(reg)
    run.start("parent")
    run.step([child_failed(0, "a")])
    run.step([timer_fired(1, at(1))], t=at(1))
    result = run.step([child_failed(2, "b")], t=at(2))
    assert result.status == executor.FAILED
    assert result.completion.failure.message == "Sub-orchestration task #2 failed: b"


def test_retries_replay_deterministically_from_history() -> None:
    policy = RetryPolicy(first_retry_interval=S, max_number_of_attempts=3)
    run = Run(_retrying(policy))
    run.start("wf")
    run.step([task_failed(0)])
    run.step([timer_fired(1, at(1))], t=at(1))
    run.step([task_failed(2)], t=at(2))
    run.step([timer_fired(3, at(3))], t=at(3))
    result = run.step([task_completed(4, "third time")], t=at(4))
    assert output(result) == "third time"
    kinds = [type(e).__name__ for e in run.history if type(e).__name__ != "OrchestratorStarted"]
    assert kinds == [
        "ExecutionStarted",
        "TaskScheduled",
        "TaskFailed",
        "TimerCreated",
        "TimerFired",
        "TaskScheduled",
        "TaskFailed",
        "TimerCreated",
        "TimerFired",
        "TaskScheduled",
        "TaskCompleted",
        "ExecutionCompleted",
    ]
    assert isinstance(run.history[0].timestamp, datetime)
