"""Suspend buffers every event but resume and terminate; terminate ends the run and its children."""

from __future__ import annotations

from datetime import timedelta

from orchestrator.engine import actions as act
from orchestrator.engine import events as ev
from orchestrator.engine import executor
from orchestrator.engine.registry import Registry
from orchestrator.engine.tasks import when_all
from tests.unit.engine.factories import (
    Run,
    at,
    child_completed,
    event_raised,
    orchestrator_started,
    output,
    resumed,
    started,
    suspended,
    task_completed,
    terminated,
    timer_fired,
    workflow,
)


def _two_steps() -> Registry:
    reg = Registry()

    @workflow(reg)
    def wf(ctx):
        a = yield ctx.call_activity("a")
        b = yield ctx.wait_for_external_event("go")
        return [a, b]

    return reg


def test_suspended_run_buffers_completions_and_events() -> None:
    run = Run(_two_steps())
    run.start("wf")
    assert run.step([suspended("maintenance")]).status == executor.SUSPENDED
    result = run.step([task_completed(0, "A"), event_raised("go", "G")])
    assert result.status == executor.SUSPENDED
    assert result.actions == []
    assert result.new_events[1:] == [task_completed(0, "A"), event_raised("go", "G")]


def test_resume_applies_the_buffered_events_in_order() -> None:
    run = Run(_two_steps())
    run.start("wf")
    run.step([suspended()])
    run.step([task_completed(0, "A"), event_raised("go", "G")])
    result = run.step([resumed()])
    assert result.status == executor.COMPLETED
    assert output(result) == ["A", "G"]


def test_suspend_and_resume_in_one_batch() -> None:
    run = Run(_two_steps())
    run.start("wf")
    result = run.step([suspended(), task_completed(0, "A"), resumed(), event_raised("go", 1)])
    assert output(result) == ["A", 1]


def test_timer_fired_while_suspended_waits_for_resume() -> None:
    reg = Registry()

    @workflow(reg)
    def wf(ctx):
        yield ctx.create_timer(timedelta(seconds=1))
        return "woke"

    run = Run(reg)
    run.start("wf")
    assert run.step([suspended(), timer_fired(0, at(1))], t=at(1)).status == executor.SUSPENDED
    assert output(run.step([resumed()], t=at(9))) == "woke"


def test_terminate_completes_as_terminated_with_the_given_output() -> None:
    run = Run(_two_steps())
    run.start("wf")
    result = run.step([terminated({"reason": "operator"})])
    assert result.status == executor.TERMINATED
    assert result.actions == [act.CompleteOrchestration("TERMINATED", '{"reason": "operator"}')]
    assert result.new_events[-1] == ev.ExecutionCompleted(
        result.new_events[0].timestamp, "TERMINATED", '{"reason": "operator"}'
    )


def test_terminate_while_suspended_is_applied_at_once() -> None:
    run = Run(_two_steps())
    run.start("wf")
    run.step([suspended()])
    result = run.step([task_completed(0, "A"), terminated("stop")])
    assert result.status == executor.TERMINATED
    assert result.completion.result == '"stop"'


def test_terminate_drops_actions_scheduled_in_the_same_step() -> None:
    reg = Registry()

    @workflow(reg)
    def chain(ctx):
        yield ctx.call_activity("a")
        yield ctx.call_activity("b")

    run = Run(reg)
    run.start("chain")
    result = run.step([task_completed(0), terminated()])
    assert result.actions == [act.CompleteOrchestration("TERMINATED", None)]
    assert not any(isinstance(e, ev.TaskScheduled) for e in result.new_events)


def _parent_of_three() -> Registry:
    reg = Registry()

    @workflow(reg)
    def parent(ctx):
        kids = [
            ctx.call_child_workflow("child", instance_id=f"kid-{i}", app_id="a" if i == 2 else None) for i in range(3)
        ]
        return (yield when_all(kids))

    return reg


def test_recursive_terminate_terminates_unfinished_children() -> None:
    run = Run(_parent_of_three())
    run.start("parent")
    run.step([child_completed(1, "done")])
    result = run.step([terminated("bye", recursive=True)])
    assert result.actions == [
        act.TerminateSubOrchestration("kid-0", None, '"bye"'),
        act.TerminateSubOrchestration("kid-2", "a", '"bye"'),
        act.CompleteOrchestration("TERMINATED", '"bye"'),
    ]


def test_non_recursive_terminate_leaves_children_alone() -> None:
    run = Run(_parent_of_three())
    run.start("parent")
    result = run.step([terminated("bye", recursive=False)])
    assert result.actions == [act.CompleteOrchestration("TERMINATED", '"bye"')]


def test_recursive_terminate_works_from_a_live_replay_cache() -> None:
    replay = executor.Replay(_parent_of_three(), "wf-1")

    replay.replay([])
    replay.step([orchestrator_started(), started("parent")])
    replay.step([orchestrator_started(), child_completed(0, "done")])
    result = replay.step([orchestrator_started(), terminated("bye")])
    assert result.actions == [
        act.TerminateSubOrchestration("kid-1", None, '"bye"'),
        act.TerminateSubOrchestration("kid-2", "a", '"bye"'),
        act.CompleteOrchestration("TERMINATED", '"bye"'),
    ]


def test_events_after_completion_are_ignored() -> None:
    reg = Registry()
    reg.add_workflow(lambda ctx: "done", name="quick")
    run = Run(reg)
    first = run.start("quick")
    second = run.step([terminated("too late"), task_completed(0)])
    assert second.completion == first.completion


def test_actions_taken_just_before_a_suspend_are_not_taken_again_on_replay() -> None:
    reg = Registry()

    @workflow(reg)
    def chain(ctx):
        yield ctx.call_activity("a")
        yield ctx.call_activity("b")
        return "done"

    run = Run(reg)
    run.start("chain")
    step = run.step([task_completed(0), suspended()])
    assert step.status == executor.SUSPENDED
    assert step.actions == [act.ScheduleTask(1, "b", None, None, 1, 1)]
    cold = executor.execute(reg, run.instance_id, run.history, [orchestrator_started(at(1))])
    assert (cold.status, cold.actions) == (executor.SUSPENDED, [])
    cold = executor.execute(reg, run.instance_id, run.history, [orchestrator_started(at(2)), resumed()])
    assert (cold.status, cold.actions) == (executor.RUNNING, [])
