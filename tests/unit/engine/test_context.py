"""The context's read side and determinism helpers: clock, is_replaying, new_guid, random."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from orchestrator.engine import executor
from orchestrator.engine.context import WorkflowContext
from orchestrator.engine.registry import Registry
from orchestrator.engine.state import RunState
from tests.unit.engine.factories import (
    INSTANCE,
    T0,
    Run,
    at,
    orchestrator_started,
    output,
    started,
    task_completed,
    workflow,
)


def _recorder(log: list) -> Registry:
    reg = Registry()

    @workflow(reg)
    def wf(ctx):
        log.append(("start", ctx.instance_id, ctx.current_utc_datetime, ctx.now(), ctx.is_replaying))
        yield ctx.call_activity("a")
        log.append(("after a", ctx.instance_id, ctx.current_utc_datetime, ctx.now(), ctx.is_replaying))
        yield ctx.call_activity("b")
        log.append(("after b", ctx.instance_id, ctx.current_utc_datetime, ctx.now(), ctx.is_replaying))

    return reg


def test_clock_comes_from_each_steps_orchestrator_started() -> None:
    log: list = []
    run = Run(_recorder(log), "inst-7")
    run.start("wf", t=at(0))
    run.step([task_completed(0)], t=at(5))
    log.clear()
    run.step([task_completed(1)], t=at(9))
    assert log == [
        ("start", "inst-7", at(0), at(0), True),
        ("after a", "inst-7", at(5), at(5), True),
        ("after b", "inst-7", at(9), at(9), False),
    ]


def test_is_replaying_is_true_for_old_events_and_false_for_new() -> None:
    log: list = []
    history = [orchestrator_started(), started("wf"), *Run(_recorder([])).start("wf").new_events[2:]]
    executor.execute(_recorder(log), INSTANCE, history, [orchestrator_started(at(1)), task_completed(0)])
    assert [(entry[0], entry[-1]) for entry in log] == [("start", True), ("after a", False)]


def test_cold_first_step_is_not_replaying() -> None:
    log: list = []
    Run(_recorder(log)).start("wf")
    assert log[0][-1] is False


def test_aware_orchestrator_started_gives_naive_utc_clock() -> None:
    reg = Registry()
    reg.add_workflow(lambda ctx: ctx.current_utc_datetime.isoformat(), name="clock")
    aware = datetime(2024, 1, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    result = executor.execute(reg, INSTANCE, [], [orchestrator_started(aware), started("clock")])
    assert output(result) == "2024-01-01T12:00:00"


def test_context_defaults_before_any_event() -> None:
    ctx = WorkflowContext(RunState("x"))
    assert (ctx.instance_id, ctx.is_replaying, ctx.current_utc_datetime) == ("x", False, datetime(1970, 1, 1))
    assert ctx.get_propagated_history() is None


def _helpers() -> Registry:
    reg = Registry()

    @workflow(reg)
    def wf(ctx):
        first = [ctx.new_guid(), ctx.new_guid(), ctx.random().random(), ctx.random().randint(0, 10**9)]
        yield ctx.call_activity("a")
        second = [ctx.new_guid(), ctx.random().random()]
        return first + second

    return reg


def test_new_guid_and_random_are_identical_on_replay() -> None:
    run = Run(_helpers())
    run.start("wf")
    live = output(run.step([task_completed(0)], t=at(3)))
    cold = output(executor.execute(run.registry, INSTANCE, run.history[:-1], [orchestrator_started(at(99))]))
    replay = executor.Replay(run.registry, INSTANCE)
    replay.replay(run.history[:3])
    warm = output(replay.step(run.history[3:5]))
    assert live == cold == warm


def test_new_guid_values_are_uuids_distinct_per_call_and_per_instance() -> None:
    run1, run2 = Run(_helpers(), "i-1"), Run(_helpers(), "i-2")
    run1.start("wf")
    run2.start("wf")
    a = output(run1.step([task_completed(0)]))
    b = output(run2.step([task_completed(0)]))
    guids_a = [a[0], a[1], a[4]]
    assert all(uuid.UUID(g).version == 5 for g in guids_a)
    assert len(set(guids_a)) == 3
    assert not set(guids_a) & {b[0], b[1], b[4]}
    assert a[2] != b[2]


def test_new_guid_depends_on_workflow_time_not_wall_clock() -> None:
    ctx = WorkflowContext(RunState("i-1", now=T0))
    assert ctx.new_guid() == str(
        uuid.uuid5(uuid.UUID("9e952958-5e33-4daf-827f-2fa12937b875"), f"i-1_{T0.isoformat()}_0")
    )


def test_random_is_seeded_by_instance_id() -> None:
    import random

    ctx = WorkflowContext(RunState("seed-me"))
    assert ctx.random() is ctx.random()
    assert ctx.random().random() == random.Random("seed-me").random()
