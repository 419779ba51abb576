"""Activities and chaining: actions, results, failures, compensation, forged completions."""

from __future__ import annotations

from orchestrator.engine import actions as act
from orchestrator.engine import events as ev
from orchestrator.engine import executor
from orchestrator.engine.errors import TaskFailedError
from orchestrator.engine.registry import Registry
from tests.unit.engine.factories import (
    INSTANCE,
    Run,
    activity,
    at,
    orchestrator_started,
    output,
    started,
    task_completed,
    task_failed,
    task_scheduled,
    workflow,
)


def _chain_registry() -> Registry:
    reg = Registry()

    @activity(reg)
    def hello(ctx, name):
        return f"Hello {name}!"

    @workflow(reg)
    def sequence(ctx, names):
        results = []
        for name in names:
            results.append((yield ctx.call_activity(hello, input=name)))
        return results

    return reg


def test_plain_function_workflow_completes_in_one_step() -> None:
    reg = Registry()
    reg.add_workflow(lambda ctx, x: {"sum": sum(x)}, name="adder")
    result = executor.execute(reg, INSTANCE, [], [orchestrator_started(), started("adder", [1, 2, 3])])
    assert result.status == executor.COMPLETED
    assert result.actions == [act.CompleteOrchestration("COMPLETED", '{"sum": 6}')]
    assert [type(e).__name__ for e in result.new_events] == [
        "OrchestratorStarted",
        "ExecutionStarted",
        "ExecutionCompleted",
    ]


def test_generator_returning_without_yield_completes() -> None:
    reg = Registry()

    @workflow(reg)
    def wf(ctx):
        if False:
            yield
        return "early"

    assert output(Run(reg).start("wf")) == "early"


def test_first_step_schedules_first_activity() -> None:
    reg = _chain_registry()
    result = executor.execute(reg, INSTANCE, [], [orchestrator_started(), started("sequence", ["a", "b"])])
    assert result.status == executor.RUNNING
    assert result.actions == [act.ScheduleTask(0, "hello", '"a"', None, 1, 0)]
    assert result.new_events[-1] == ev.TaskScheduled(result.new_events[0].timestamp, 0, "hello", '"a"')


def test_completion_schedules_next_activity_with_next_sequence() -> None:
    reg = _chain_registry()
    old = [orchestrator_started(), started("sequence", ["a", "b"]), task_scheduled(0, "hello", "a")]
    new = [orchestrator_started(at(1)), task_completed(0, "Hello a!")]
    result = executor.execute(reg, INSTANCE, old, new)
    assert result.actions == [act.ScheduleTask(1, "hello", '"b"', None, 1, 1)]
    assert result.new_events[:2] == new


def test_last_completion_completes_with_all_results() -> None:
    reg = _chain_registry()
    old = [
        orchestrator_started(),
        started("sequence", ["a", "b"]),
        task_scheduled(0, "hello", "a"),
        orchestrator_started(),
        task_completed(0, "Hello a!"),
        task_scheduled(1, "hello", "b"),
    ]
    result = executor.execute(reg, INSTANCE, old, [orchestrator_started(), task_completed(1, "Hello b!")])
    assert result.status == executor.COMPLETED
    assert result.actions == [act.CompleteOrchestration("COMPLETED", '["Hello a!", "Hello b!"]')]


def test_activity_call_carries_app_id() -> None:
    reg = Registry()

    @workflow(reg)
    def wf(ctx):
        yield ctx.call_activity("remote", input={"k": 1}, app_id="billing")

    result = Run(reg).start("wf")
    assert result.actions == [act.ScheduleTask(0, "remote", '{"k": 1}', "billing", 1, 0)]
    assert result.new_events[-1].app_id == "billing"


def test_failed_activity_raises_task_failed_error_into_workflow() -> None:
    reg = Registry()
    caught = []

    @workflow(reg)
    def wf(ctx):
        try:
            yield ctx.call_activity("charge")
        except TaskFailedError as err:
            caught.append(err)
            raise

    run = Run(reg)
    run.start("wf")
    result = run.step([task_failed(0, "card declined", "PaymentError")])
    (err,) = caught
    assert str(err) == "wf-1: Activity task #0 failed: card declined"
    assert err.details == ev.FailureDetails("card declined", "PaymentError", "Traceback: ...")
    assert result.status == executor.FAILED
    assert result.completion.failure.error_type == "TaskFailedError"
    assert result.completion.failure.message == "wf-1: Activity task #0 failed: card declined"
    assert "Traceback" in result.completion.failure.stack_trace


def test_workflow_catches_failure_and_compensates() -> None:
    reg = Registry()

    @workflow(reg)
    def saga(ctx):
        yield ctx.call_activity("reserve")
        try:
            yield ctx.call_activity("charge")
        except TaskFailedError as err:
            yield ctx.call_activity("release", input=err.details.message)
            return "compensated"
        return "charged"

    run = Run(reg)
    run.start("saga")
    run.step([task_completed(0)])
    result = run.step([task_failed(1, "insufficient funds")])
    assert result.actions == [act.ScheduleTask(2, "release", '"insufficient funds"', None, 1, 2)]
    assert output(run.step([task_completed(2)])) == "compensated"


def test_exception_in_workflow_code_fails_with_its_type_and_message() -> None:
    reg = Registry()

    @workflow(reg)
    def wf(ctx):
        yield ctx.call_activity("a")
        raise KeyError("missing key")

    run = Run(reg)
    run.start("wf")
    result = run.step([task_completed(0)])
    assert result.status == executor.FAILED
    assert result.completion.failure.error_type == "KeyError"
    assert result.completion.failure.message == "'missing key'"
    assert isinstance(result.new_events[-1], ev.ExecutionCompleted)
    assert result.new_events[-1].status == "FAILED"


def test_yielding_a_non_task_fails_with_type_error() -> None:
    reg = Registry()

    @workflow(reg)
    def first(ctx):
        yield 42

    @workflow(reg)
    def later(ctx):
        yield ctx.call_activity("a")
        yield "not a task"

    result = Run(reg).start("first")
    assert result.status == executor.FAILED
    assert result.completion.failure.error_type == "TypeError"
    assert result.completion.failure.message.startswith("Workflow 'first' yielded a int, not a task")
    run = Run(reg)
    run.start("later")
    result = run.step([task_completed(0)])
    assert result.completion.failure.error_type == "TypeError"
    assert "yielded a str" in result.completion.failure.message


def test_custom_status_is_reported_as_json() -> None:
    reg = Registry()

    @workflow(reg)
    def wf(ctx):
        ctx.set_custom_status({"stage": 1})
        yield ctx.call_activity("a")
        ctx.set_custom_status("done")
        return None

    run = Run(reg)
    assert run.start("wf").custom_status == '{"stage": 1}'
    result = run.step([task_completed(0)])
    assert result.custom_status == '"done"'
    assert result.status == executor.COMPLETED and result.completion.result is None


def test_forged_completion_for_unscheduled_task_is_ignored() -> None:
    reg = Registry()
    seen = []

    @workflow(reg)
    def wf(ctx):
        seen.append((yield ctx.call_activity("a")))
        return seen[-1]

    run = Run(reg)
    run.start("wf")
    result = run.step([task_completed(7, "forged"), task_failed(9, "forged")])
    assert result.status == executor.RUNNING and result.actions == [] and seen == []
    assert output(run.step([task_completed(0, "real")])) == "real"
    assert seen == ["real"]


def test_duplicate_completion_is_ignored() -> None:
    reg = Registry()

    @workflow(reg)
    def wf(ctx):
        first = yield ctx.call_activity("a")
        second = yield ctx.call_activity("b")
        return [first, second]

    run = Run(reg)
    run.start("wf")
    run.step([task_completed(0, "first")])
    result = run.step([task_completed(0, "again"), task_failed(0, "late failure")])
    assert result.actions == [] and result.status == executor.RUNNING
    assert output(run.step([task_completed(1, "second")])) == ["first", "second"]


def test_completion_in_same_batch_as_its_schedule_is_ignored() -> None:
    """A completion may not precede the recorded scheduling of its task."""
    reg = Registry()

    @workflow(reg)
    def wf(ctx):
        return (yield ctx.call_activity("a"))

    result = executor.execute(
        reg, INSTANCE, [], [orchestrator_started(), started("wf"), task_completed(0, "too early")]
    )
    assert result.status == executor.RUNNING
    assert result.actions == [act.ScheduleTask(0, "a", None, None, 1, 0)]


def test_forged_timer_fired_for_an_activity_does_not_swallow_its_completion() -> None:
    reg = Registry()

    @workflow(reg)
    def wf(ctx):
        return (yield ctx.call_activity("a"))

    run = Run(reg)
    run.start("wf")
    assert run.step([ev.TimerFired(at(1), 0, at(1))]).status == executor.RUNNING
    assert output(run.step([task_completed(0, "real")])) == "real"
