"""Code that no longer matches its history fails with NonDeterminismError naming both sides."""

from __future__ import annotations

from datetime import timedelta

import pytest

from orchestrator.engine import actions as act
from orchestrator.engine import executor
from orchestrator.engine.registry import Registry
from tests.unit.engine.factories import (
    INSTANCE,
    Run,
    at,
    child_completed,
    child_created,
    orchestrator_started,
    output,
    started,
    task_completed,
    task_scheduled,
    timer_created,
    timer_fired,
)


def _registry(body) -> Registry:
    reg = Registry()
    reg.add_workflow(body, name="wf")
    return reg


def _activity_a(ctx):
    return (yield ctx.call_activity("a"))


def _activity_b(ctx):
    return (yield ctx.call_activity("b"))


def _timer(ctx):
    yield ctx.create_timer(timedelta(seconds=5))


def _child(ctx):
    yield ctx.call_child_workflow("a")


def _nothing(ctx):
    return "nothing"


HISTORY_A = [orchestrator_started(), started("wf"), task_scheduled(0, "a")]


@pytest.mark.parametrize(
    ("body", "history", "expected"),
    [
        (
            _activity_b,
            HISTORY_A,
            "at sequence 0 history records call_activity(a) but the current code called call_activity(b)",
        ),
        (
            _timer,
            HISTORY_A,
            "at sequence 0 history records call_activity(a) but the current code called create_timer()",
        ),
        (
            _child,
            HISTORY_A,
            "at sequence 0 history records call_activity(a) but the current code called call_child_workflow(a)",
        ),
        (
            _nothing,
            HISTORY_A,
            "history records call_activity(a) at sequence 0, but the current code scheduled nothing there",
        ),
        (
            _activity_a,
            [orchestrator_started(), started("wf"), timer_created(0, at(5))],
            "at sequence 0 history records create_timer() but the current code called call_activity(a)",
        ),
        (
            _activity_a,
            [orchestrator_started(), started("wf"), child_created(0, "a", "wf-1:0000")],
            "at sequence 0 history records call_child_workflow(a) but the current code called call_activity(a)",
        ),
    ],
    ids=["wrong-name", "activity-vs-timer", "activity-vs-child", "missing", "timer-vs-activity", "child-vs-activity"],
)
def test_mismatch_fails_with_non_determinism_error_naming_both_sides(body, history, expected) -> None:
    result = executor.execute(_registry(body), INSTANCE, history, [orchestrator_started(), task_completed(0)])
    assert result.status == executor.FAILED
    failure = result.completion.failure
    assert failure.error_type == "NonDeterminismError"
    assert expected in failure.message
    assert f"Workflow 'wf' ({INSTANCE})" in failure.message
    assert result.actions == [result.completion]


def test_mismatch_later_in_history_is_detected() -> None:
    def changed(ctx):
        yield ctx.call_activity("a")
        yield ctx.call_activity("c")

    history = [
        orchestrator_started(),
        started("wf"),
        task_scheduled(0, "a"),
        orchestrator_started(),
        task_completed(0),
        task_scheduled(1, "b"),
    ]
    result = executor.execute(
        _registry(changed), INSTANCE, history, [orchestrator_started(), task_completed(1)]
    )
    assert result.completion.failure.error_type == "NonDeterminismError"
    assert "at sequence 1 history records call_activity(b) but the current code called call_activity(c)" in (
        result.completion.failure.message
    )


def test_code_that_now_ends_before_its_recorded_schedules_is_non_deterministic() -> None:
    history = [
        orchestrator_started(),
        started("wf"),
        task_scheduled(0, "a"),
        orchestrator_started(),
        task_completed(0),
        task_scheduled(1, "b"),
    ]
    result = executor.execute(
        _registry(_activity_a), INSTANCE, history, [orchestrator_started(), task_completed(1)]
    )
    assert result.status == executor.FAILED
    assert result.completion.failure.error_type == "NonDeterminismError"
    assert "history records call_activity(b) at sequence 1, but the current code scheduled nothing there" in (
        result.completion.failure.message
    )


def test_a_run_that_ends_cancels_what_it_scheduled_in_its_last_step_and_replays_cleanly() -> None:
    def notify_and_finish(ctx):
        yield ctx.call_activity("a")
        ctx.call_activity("notify")
        return "done"

    run = Run(_registry(notify_and_finish))
    run.start("wf")
    live = run.step([task_completed(0)])
    assert live.actions == [act.CompleteOrchestration("COMPLETED", '"done"')]
    assert not any(getattr(e, "name", None) == "notify" for e in live.new_events)
    cold = executor.execute(run.registry, INSTANCE, run.history, [orchestrator_started()])
    assert cold.status == executor.COMPLETED and output(cold) == "done"


def test_extra_actions_after_the_recorded_history_are_new_actions_not_errors() -> None:
    def more(ctx):
        yield ctx.call_activity("a")
        yield ctx.call_activity("added_later")

    result = executor.execute(
        _registry(more), INSTANCE, HISTORY_A, [orchestrator_started(), task_completed(0)]
    )
    assert result.actions == [act.ScheduleTask(1, "added_later", None, None, 1, 1)]


def test_replay_of_unchanged_code_is_deterministic_at_every_prefix() -> None:
    def wf(ctx):
        yield ctx.call_activity("a")
        yield ctx.create_timer(timedelta(seconds=1))
        yield ctx.call_child_workflow("child")
        return "ok"

    run = Run(_registry(wf))
    run.start("wf")
    run.step([task_completed(0)])
    run.step([timer_fired(1, at(1))], t=at(1))
    run.step([child_completed(2)], t=at(2))
    assert run.last.status == executor.COMPLETED
    for cut in range(1, len(run.history)):
        cold = executor.execute(run.registry, INSTANCE, run.history[:cut], [orchestrator_started(at(3))])
        assert cold.status != executor.FAILED, (cut, cold.completion)
