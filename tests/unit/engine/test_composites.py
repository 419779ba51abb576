"""Fan-out/fan-in: when_all results and failures, when_any returning the task itself."""

from __future__ import annotations

from datetime import timedelta

import pytest

from orchestrator.engine import actions as act
from orchestrator.engine import executor
from orchestrator.engine.errors import TaskFailedError
from orchestrator.engine.registry import Registry
from orchestrator.engine.tasks import CompletableTask, when_all, when_any
from tests.unit.engine.factories import (
    T0,
    Run,
    at,
    event_raised,
    output,
    task_completed,
    task_failed,
    timer_fired,
    workflow,
)


def _fan_out() -> Registry:
    reg = Registry()

    @workflow(reg)
    def fan(ctx, n):
        results = yield when_all([ctx.call_activity("work", input=i) for i in range(n)])
        return results

    return reg


def test_fan_out_schedules_all_activities_in_one_step() -> None:
    result = Run(_fan_out()).start("fan", 3)
    assert result.actions == [act.ScheduleTask(i, "work", str(i), None, 1, i) for i in range(3)]


def test_when_all_results_in_input_order_whatever_the_completion_order() -> None:
    run = Run(_fan_out())
    run.start("fan", 3)
    assert run.step([task_completed(2, "c")]).actions == []
    assert run.step([task_completed(0, "a")]).status == executor.RUNNING
    assert output(run.step([task_completed(1, "b")])) == ["a", "b", "c"]


def test_when_all_waits_for_every_child_then_raises_first_failure_in_input_order() -> None:
    reg = Registry()

    @workflow(reg)
    def fan(ctx):
        try:
            yield when_all([ctx.call_activity("w", input=i) for i in range(3)])
        except TaskFailedError as err:
            return str(err)

    run = Run(reg)
    run.start("fan")
    assert run.step([task_failed(2, "third broke")]).status == executor.RUNNING
    assert run.step([task_failed(1, "second broke")]).status == executor.RUNNING
    assert output(run.step([task_completed(0, "ok")])) == "wf-1: Activity task #1 failed: second broke"


def test_when_all_uncaught_failure_fails_workflow() -> None:
    run = Run(_fan_out())
    run.start("fan", 2)
    run.step([task_failed(0, "x")])
    result = run.step([task_completed(1)])
    assert result.status == executor.FAILED
    assert result.completion.failure.message == "wf-1: Activity task #0 failed: x"


def test_when_all_of_nothing_completes_at_once() -> None:
    assert output(Run(_fan_out()).start("fan", 0)) == []


def test_when_any_returns_the_first_completed_task_object() -> None:
    reg = Registry()

    @workflow(reg)
    def race(ctx):
        a = ctx.call_activity("a")
        b = ctx.call_activity("b")
        winner = yield when_any([a, b])
        return {"a_won": winner is a, "b_won": winner is b, "result": winner.get_result()}

    run = Run(reg)
    assert len(run.start("race").actions) == 2
    assert output(run.step([task_completed(1, "bee")])) == {"a_won": False, "b_won": True, "result": "bee"}


def test_when_any_never_raises_and_returns_the_failed_task() -> None:
    reg = Registry()

    @workflow(reg)
    def race(ctx):
        a = ctx.call_activity("a")
        timer = ctx.create_timer(timedelta(seconds=30))
        winner = yield when_any([a, timer])
        if winner is a and a.is_failed:
            return f"failed: {a.get_exception().details.message}"
        return "other"

    run = Run(reg)
    run.start("race")
    result = run.step([task_failed(0, "nope")])
    assert output(result) == "failed: nope"
    assert result.actions == [act.CompleteOrchestration("COMPLETED", '"failed: nope"')]


def test_when_any_cancels_nothing_and_the_loser_can_be_awaited_later() -> None:
    reg = Registry()

    @workflow(reg)
    def race(ctx):
        a = ctx.call_activity("a")
        b = ctx.call_activity("b")
        first = yield when_any([a, b])
        second_task = b if first is a else a
        second = yield second_task
        return [first.get_result(), second]

    run = Run(reg)
    run.start("race")
    step = run.step([task_completed(0, "A")])
    assert step.actions == [] and step.status == executor.RUNNING
    assert output(run.step([task_completed(1, "B")])) == ["A", "B"]


def test_when_any_timeout_pattern_with_timer() -> None:
    reg = Registry()

    @workflow(reg)
    def approval(ctx):
        approved = ctx.wait_for_external_event("approve")
        timeout = ctx.create_timer(timedelta(hours=1))
        winner = yield when_any([approved, timeout])
        return "approved" if winner is approved else "timed out"

    run = Run(reg)
    assert run.start("approval").actions == [act.CreateTimer(0, T0 + timedelta(hours=1))]
    assert output(run.step([timer_fired(0, T0 + timedelta(hours=1))], t=at(3600))) == "timed out"
    run2 = Run(reg)
    run2.start("approval")
    assert output(run2.step([event_raised("APPROVE", True)])) == "approved"


def test_when_any_with_an_already_completed_task_completes_immediately() -> None:
    reg = Registry()

    @workflow(reg)
    def wf(ctx):
        buffered = ctx.wait_for_external_event("go")
        winner = yield when_any([buffered, ctx.call_activity("slow")])
        return winner is buffered

    run = Run(reg)
    run.start("wf")
    assert output(run.step([event_raised("go")])) is True


def test_nested_composites() -> None:
    reg = Registry()

    @workflow(reg)
    def wf(ctx):
        inner = when_all([ctx.call_activity("a"), ctx.call_activity("b")])
        outer = yield when_all([inner, ctx.call_activity("c")])
        return outer

    run = Run(reg)
    run.start("wf")
    assert output(run.step([task_completed(2, 3), task_completed(1, 2), task_completed(0, 1)])) == [[1, 2], 3]


def test_composite_rejects_non_tasks() -> None:
    with pytest.raises(TypeError, match="when_all/when_any take tasks, got int"):
        when_all([CompletableTask(), 5])
    with pytest.raises(TypeError, match="got str"):
        when_any(["x"])


def test_task_result_helpers() -> None:
    task = CompletableTask()
    with pytest.raises(ValueError, match="has not completed"):
        task.get_result()
    with pytest.raises(ValueError, match="has not failed"):
        task.get_exception()
    task.complete(5)
    task.complete(6)  # a second completion changes nothing
    task.fail(RuntimeError("late"))
    assert task.get_result() == 5 and not task.is_failed


def test_when_all_counts_a_task_listed_twice_and_one_already_done() -> None:
    done, twice, last = CompletableTask(), CompletableTask(), CompletableTask()
    done.complete("d")
    both = when_all([done, twice, last, twice])
    twice.complete("t")
    assert not both.is_complete  # `last` still runs
    twice.complete("again")  # a second completion of the same task counts nothing
    assert not both.is_complete
    last.complete("l")
    assert both.is_complete and both.get_result() == ["d", "t", "l", "t"]
