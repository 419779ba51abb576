"""Child workflows: actions, instance IDs, results, failures, parent info."""

from __future__ import annotations

from datetime import timedelta

from orchestrator.engine import actions as act
from orchestrator.engine import events as ev
from orchestrator.engine import executor
from orchestrator.engine.errors import TaskFailedError
from orchestrator.engine.registry import Registry
from orchestrator.engine.tasks import when_all
from tests.unit.engine.factories import (
    INSTANCE,
    Run,
    child_completed,
    child_created,
    child_failed,
    orchestrator_started,
    output,
    started,
    workflow,
)


def test_child_without_id_gets_parent_colon_sequence_in_hex() -> None:
    reg = Registry()

    @workflow(reg)
    def parent(ctx):
        for _ in range(10):
            ctx.create_timer(timedelta(seconds=1))
        a = ctx.call_child_workflow("child", input="x")
        b = ctx.call_child_workflow("child")
        return (yield when_all([a, b]))

    actions = Run(reg, "order-42").start("parent").actions
    children = [a for a in actions if isinstance(a, act.CreateSubOrchestration)]
    assert children == [
        act.CreateSubOrchestration(10, "child", "order-42:000a", '"x"'),
        act.CreateSubOrchestration(11, "child", "order-42:000b", None),
    ]


def test_child_with_explicit_id_and_app_id() -> None:
    reg = Registry()

    @workflow(reg)
    def child(ctx):
        return 1

    @workflow(reg)
    def parent(ctx):
        return (yield ctx.call_child_workflow(child, input={"n": 1}, instance_id="kid-1", app_id="other-app"))

    result = Run(reg).start("parent")
    assert result.actions == [act.CreateSubOrchestration(0, "child", "kid-1", '{"n": 1}', "other-app")]
    assert result.new_events[-1] == ev.SubOrchestrationInstanceCreated(
        result.new_events[0].timestamp, 0, "child", "kid-1", '{"n": 1}', "other-app"
    )


def test_child_completion_resumes_the_parent_with_its_result() -> None:
    reg = Registry()

    @workflow(reg)
    def parent(ctx):
        result = yield ctx.call_child_workflow("child", input=2)
        return result * 10

    old = [orchestrator_started(), started("parent"), child_created(0, "child", "wf-1:0000", 2)]
    result = executor.execute(reg, INSTANCE, old, [orchestrator_started(), child_completed(0, 4)])
    assert result.actions == [act.CompleteOrchestration("COMPLETED", "40")]


def test_child_failure_raises_task_failed_error_with_sub_orchestration_message() -> None:
    reg = Registry()

    @workflow(reg)
    def parent(ctx):
        try:
            yield ctx.call_child_workflow("child")
        except TaskFailedError as err:
            return [str(err), err.details.message, err.details.error_type, err.details.stack_trace]

    run = Run(reg)
    run.start("parent")
    assert output(run.step([child_failed(0, "child exploded", "RuntimeError")])) == [
        "Sub-orchestration task #0 failed: child exploded",
        "child exploded",
        "RuntimeError",
        "Traceback: ...",
    ]


def test_child_run_reports_parent_info_on_its_completion() -> None:
    reg = Registry()

    @workflow(reg)
    def child(ctx, x):
        return x + 1

    parent = ev.ParentInfo("parent", "p-1", 3, "app-a")
    result = executor.execute(
        reg, "p-1:0003", [], [orchestrator_started(), started("child", 1, parent=parent)]
    )
    assert result.parent == parent
    assert result.actions == [act.CompleteOrchestration("COMPLETED", "2", parent=parent)]


def test_failed_child_run_reports_parent_info() -> None:
    reg = Registry()

    @workflow(reg)
    def child(ctx):
        raise RuntimeError("nope")

    parent = ev.ParentInfo("parent", "p-1", 0)
    result = executor.execute(reg, "p-1:0000", [], [orchestrator_started(), started("child", parent=parent)])
    assert result.completion.status == executor.FAILED
    assert result.completion.parent == parent
    assert result.completion.failure.message == "nope"


def test_fan_out_children_results_in_order() -> None:
    reg = Registry()

    @workflow(reg)
    def parent(ctx):
        return (yield when_all([ctx.call_child_workflow("child", input=i) for i in range(3)]))

    run = Run(reg)
    assert [a.instance_id for a in run.start("parent").actions] == ["wf-1:0000", "wf-1:0001", "wf-1:0002"]
    assert output(run.step([child_completed(2, "c"), child_completed(0, "a"), child_completed(1, "b")])) == [
        "a",
        "b",
        "c",
    ]


def test_child_created_event_with_another_name_is_non_deterministic() -> None:
    reg = Registry()

    @workflow(reg)
    def parent(ctx):
        yield ctx.call_child_workflow("child_v2")

    old = [orchestrator_started(), started("parent"), child_created(0, "child_v1", "wf-1:0000")]
    result = executor.execute(reg, INSTANCE, old, [orchestrator_started(), child_completed(0)])
    assert result.completion.failure.error_type == "NonDeterminismError"
