"""Named versions and is_patched: what is recorded, how replays honour it, when they stall."""

from __future__ import annotations

from orchestrator.engine import actions as act
from orchestrator.engine import events as ev
from orchestrator.engine import executor
from orchestrator.engine.registry import Registry
from tests.unit.engine.factories import (
    INSTANCE,
    Run,
    orchestrator_started,
    started,
    task_completed,
    task_scheduled,
    versioned_workflow,
    workflow,
)


def _versions(latest: str | None = None, register: tuple[str, ...] = ("v1", "v2")) -> Registry:
    reg = Registry()
    bodies = {
        "v1": lambda ctx: (yield ctx.call_activity("old_step")),
        "v2": lambda ctx: (yield ctx.call_activity("new_step")),
    }
    for version in register:
        fn = bodies[version]
        fn.__name__ = version
        versioned_workflow(reg, name="order", version_name=version, is_latest=(version == latest))(fn)
    return reg


def test_new_run_takes_the_last_registered_version_and_records_it() -> None:
    result = Run(_versions()).start("order")
    assert result.actions == [act.ScheduleTask(0, "new_step", None, None, 1, 0)]
    assert result.new_events[0] == ev.OrchestratorStarted(result.new_events[0].timestamp, "v2", ())


def test_new_run_takes_the_version_marked_latest() -> None:
    result = Run(_versions(latest="v1")).start("order")
    assert result.actions[0].name == "old_step"
    assert result.new_events[0].version == "v1"


def test_a_second_latest_registration_wins_and_old_runs_keep_their_version() -> None:
    """As in dapr-ext-workflow: registering v2 with is_latest=True after v1 with
    is_latest=True makes v2 the latest (it used to raise ValueError)."""
    reg = Registry()
    reg.add_versioned_workflow(lambda ctx: (yield ctx.call_activity("old_step")), name="order",
                                    version_name="v1", is_latest=True)
    reg.add_versioned_workflow(lambda ctx: (yield ctx.call_activity("new_step")), name="order",
                                    version_name="v2", is_latest=True)
    assert Run(reg).start("order").new_events[0].version == "v2"
    old = [orchestrator_started(version="v1"), started("order"), task_scheduled(0, "old_step")]
    result = executor.execute(reg, INSTANCE, old, [orchestrator_started(), task_completed(0, "x")])
    assert result.status == executor.COMPLETED and result.new_events[0].version == "v1"


def test_a_version_is_named_after_its_function_unless_named_and_is_latest_wins() -> None:
    reg = Registry()

    @versioned_workflow(reg, name="wf", version_name="first")
    def wf_v1(ctx):
        return 1

    reg.add_versioned_workflow(lambda ctx: 2, name="wf", version_name="second", is_latest=True)

    @versioned_workflow(reg, name="wf")
    def wf_third(ctx):
        return 3

    assert reg.workflow("wf") == (reg.workflow("wf", "second")[0], "second")
    assert reg.workflow("wf", "wf_third") == (wf_third, "wf_third")


def test_running_instance_keeps_the_version_it_started_with() -> None:
    old = [orchestrator_started(version="v1"), started("order"), task_scheduled(0, "old_step")]
    result = executor.execute(_versions(), INSTANCE, old, [orchestrator_started(), task_completed(0, "x")])
    assert result.status == executor.COMPLETED
    assert result.actions == [act.CompleteOrchestration("COMPLETED", '"x"')]
    assert result.new_events[0].version == "v1"


def test_recorded_version_not_registered_stalls_without_events_or_actions() -> None:
    old = [orchestrator_started(version="v3"), started("order"), task_scheduled(0, "future_step")]
    result = executor.execute(_versions(), INSTANCE, old, [orchestrator_started(), task_completed(0)])
    assert result.status == executor.STALLED
    assert (result.new_events, result.actions, result.completion) == ([], [], None)
    assert result.stall.reason == executor.VERSION_NOT_AVAILABLE
    assert "'v3'" in result.stall.description and INSTANCE in result.stall.description


def test_stall_clears_once_the_version_is_deployed_again() -> None:
    old = [orchestrator_started(version="v1"), started("order"), task_scheduled(0, "old_step")]
    new = [orchestrator_started(), task_completed(0, "ok")]
    assert executor.execute(_versions(register=("v2",)), INSTANCE, old, new).status == executor.STALLED
    assert executor.execute(_versions(register=("v1", "v2")), INSTANCE, old, new).status == executor.COMPLETED


def _patched_workflow(check_patch: bool = True) -> Registry:
    reg = Registry()

    @workflow(reg)
    def wf(ctx):
        yield ctx.call_activity("first")
        if check_patch and ctx.is_patched("extra-step"):
            yield ctx.call_activity("extra")
        return "done"

    return reg


def test_is_patched_on_a_live_path_is_true_and_recorded_in_the_steps_orchestrator_started() -> None:
    run = Run(_patched_workflow())
    assert run.start("wf").new_events[0].patches == ()
    result = run.step([task_completed(0)])
    assert result.actions == [act.ScheduleTask(1, "extra", None, None, 1, 1)]
    assert result.new_events[0].patches == ("extra-step",)


def test_is_patched_replays_true_where_it_was_recorded() -> None:
    run = Run(_patched_workflow())
    run.start("wf")
    run.step([task_completed(0)])
    result = run.step([task_completed(1)])
    assert result.status == executor.COMPLETED
    assert result.new_events[0].patches == ()


def test_is_patched_is_false_for_a_run_that_passed_that_point_before_the_patch() -> None:
    """History from code without the patch: the step after `first` completed the run."""
    old = [
        orchestrator_started(),
        started("wf"),
        task_scheduled(0, "first"),
        orchestrator_started(),
        task_completed(0),
        task_scheduled(1, "second"),
    ]
    reg = Registry()

    @workflow(reg)
    def wf(ctx):
        yield ctx.call_activity("first")
        if ctx.is_patched("extra-step"):
            yield ctx.call_activity("extra")
        else:
            yield ctx.call_activity("second")
        return "old path"

    result = executor.execute(reg, INSTANCE, old, [orchestrator_started(), task_completed(1)])
    assert result.actions == [act.CompleteOrchestration("COMPLETED", '"old path"')]
    assert result.new_events[0].patches == ()


def test_recorded_patch_no_longer_checked_stalls_with_patch_mismatch() -> None:
    run = Run(_patched_workflow())
    run.start("wf")
    run.step([task_completed(0)])
    result = executor.execute(
        _patched_workflow(check_patch=False),
        INSTANCE,
        run.history,
        [orchestrator_started(), task_completed(1)],
    )
    assert result.status == executor.STALLED
    assert (result.new_events, result.actions) == ([], [])
    assert result.stall.reason == executor.PATCH_MISMATCH
    assert "extra-step" in result.stall.description


def test_patch_evaluated_several_times_is_recorded_once() -> None:
    reg = Registry()

    @workflow(reg)
    def wf(ctx):
        return [ctx.is_patched("p"), ctx.is_patched("p"), ctx.is_patched("q")]

    result = Run(reg).start("wf")
    assert result.completion.result == "[true, true, true]"
    assert result.new_events[0].patches == ("p", "q")
