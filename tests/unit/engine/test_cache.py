"""A cached Replay fed step by step decides exactly what a cold execute of the history does."""

from __future__ import annotations

from datetime import timedelta

import pytest

from orchestrator.engine import events as ev
from orchestrator.engine import executor
from orchestrator.engine.errors import TaskFailedError
from orchestrator.engine.registry import Registry
from orchestrator.engine.retry import RetryPolicy
from orchestrator.engine.tasks import when_all, when_any
from tests.unit.engine import factories as f


def compare_warm_and_cold(registry, steps: list[list[ev.HistoryEvent]], instance_id: str = f.INSTANCE) -> list:
    """Run `steps` (each preceded by OrchestratorStarted at t=step index) both ways."""
    warm = executor.Replay(registry, instance_id)
    assert warm.replay([]) is None
    history: list[ev.HistoryEvent] = []
    results = []
    for i, batch in enumerate(steps):
        new = [f.orchestrator_started(f.at(i)), *batch]
        cold = executor.execute(registry, instance_id, history, new)
        hot = warm.step(new)
        assert hot.new_events == cold.new_events, f"step {i}"
        assert hot.actions == cold.actions, f"step {i}"
        assert (hot.status, hot.custom_status, hot.completion) == (cold.status, cold.custom_status, cold.completion)
        history.extend(cold.new_events)
        results.append(cold)
    # And a Replay warmed from the whole history in one go agrees with the last step.
    resumed = executor.Replay(registry, instance_id)
    assert resumed.replay(history[: -len(results[-1].new_events)]) is None
    assert resumed.step([f.orchestrator_started(f.at(len(steps) - 1)), *steps[-1]]).actions == results[-1].actions
    return results


def _registry() -> Registry:
    reg = Registry()
    policy = RetryPolicy(first_retry_interval=timedelta(seconds=1), max_number_of_attempts=3)

    @f.workflow(reg)
    def everything(ctx, n):
        ctx.set_custom_status("fanning")
        results = yield when_all([ctx.call_activity("w", input=i) for i in range(n)])
        guid = ctx.new_guid()
        try:
            retried = yield ctx.call_activity("flaky", retry_policy=policy)
        except TaskFailedError:
            retried = "failed"
        child = yield ctx.call_child_workflow("child", input=guid)
        approval = ctx.wait_for_external_event("approve")
        winner = yield when_any([approval, ctx.create_timer(timedelta(hours=1))])
        if ctx.is_patched("bonus"):
            yield ctx.call_activity("bonus")
        ctx.set_custom_status("done")
        return [results, retried, child, winner is approval, ctx.random().random() < 2]

    @f.workflow(reg)
    def looping(ctx, n):
        yield ctx.wait_for_external_event("tick")
        ctx.continue_as_new(n + 1, save_events=True)

    return reg


EVERYTHING_STEPS = [
    [f.started("everything", 2)],
    [f.task_completed(1, "b")],
    [f.event_raised("APPROVE", "early"), f.task_completed(0, "a")],
    [f.task_failed(2, "flaky once")],
    [f.timer_fired(3, f.at(4))],
    [f.task_completed(4, "flaky ok")],
    [f.suspended(), f.child_completed(5, "kid done")],
    [f.resumed()],
    [f.task_completed(7, "bonus")],
]


def test_full_workflow_warm_equals_cold_at_every_step() -> None:
    results = compare_warm_and_cold(_registry(), EVERYTHING_STEPS)
    assert results[-1].status == executor.COMPLETED
    assert f.output(results[-1])[:4] == [["a", "b"], "flaky ok", "kid done", True]


@pytest.mark.parametrize("cut", range(1, len(EVERYTHING_STEPS)))
def test_terminate_at_any_step_warm_equals_cold(cut: int) -> None:
    results = compare_warm_and_cold(_registry(), [*EVERYTHING_STEPS[:cut], [f.terminated("stop")]])
    assert results[-1].status == executor.TERMINATED


def test_failure_warm_equals_cold() -> None:
    steps = [
        [f.started("everything", 1)],
        [f.task_completed(0)],
        [f.task_failed(1, "x", "NonRetryableError")],
        [f.child_failed(2, "kid broke")],
    ]
    assert compare_warm_and_cold(_registry(), steps)[-1].status == executor.FAILED


def test_continue_as_new_with_carryover_warm_equals_cold() -> None:
    steps = [[f.started("looping", 0)], [f.event_raised("tick"), f.event_raised("tick", 2), f.event_raised("x", 3)]]
    last = compare_warm_and_cold(_registry(), steps)[-1]
    assert last.completion.carryover_events == (f.event_raised("tick", 2), f.event_raised("x", 3))


def test_warm_replay_reports_a_stall_like_cold() -> None:
    reg = Registry()
    reg.add_versioned_workflow(lambda ctx: (yield ctx.call_activity("a")), name="v", version_name="v9")
    run = f.Run(reg)
    run.start("v")
    other = Registry()
    other.add_versioned_workflow(lambda ctx: (yield ctx.call_activity("a")), name="v", version_name="v1")
    replay = executor.Replay(other, f.INSTANCE)
    stall = replay.replay(run.history)
    assert stall is not None and stall.reason == executor.VERSION_NOT_AVAILABLE
    cold = executor.execute(other, f.INSTANCE, run.history, [f.orchestrator_started(), f.task_completed(0)])
    assert cold.stall == stall


def test_suspend_in_the_same_batch_as_a_completion_warm_equals_cold() -> None:
    steps = [
        [f.started("everything", 1)],
        [f.task_completed(0, "a"), f.suspended()],
        [],
        [f.task_failed(1, "x", "NonRetryableError")],
        [f.resumed()],
    ]
    results = compare_warm_and_cold(_registry(), steps)
    assert [r.status for r in results] == ["RUNNING", "SUSPENDED", "SUSPENDED", "SUSPENDED", "RUNNING"]
    assert [len(r.actions) for r in results] == [1, 1, 0, 0, 1]
