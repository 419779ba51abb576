"""Durable timers: create_timer(datetime | timedelta), firing, workflow time."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from orchestrator.engine import actions as act
from orchestrator.engine import events as ev
from orchestrator.engine import executor
from orchestrator.engine.registry import Registry
from tests.unit.engine.factories import (
    INSTANCE,
    T0,
    Run,
    at,
    orchestrator_started,
    output,
    started,
    timer_created,
    timer_fired,
    workflow,
)


def _sleeper() -> Registry:
    reg = Registry()

    @workflow(reg)
    def sleeper(ctx, seconds):
        yield ctx.create_timer(timedelta(seconds=seconds))
        return ctx.current_utc_datetime.isoformat()

    return reg


def test_timedelta_timer_fires_relative_to_workflow_time() -> None:
    result = Run(_sleeper()).start("sleeper", 90, t=at(10))
    assert result.actions == [act.CreateTimer(0, at(100))]
    assert result.new_events[-1] == ev.TimerCreated(at(10), 0, at(100))


def test_datetime_timer_fires_at_that_time() -> None:
    reg = Registry()

    @workflow(reg)
    def wf(ctx):
        yield ctx.create_timer(datetime(2030, 5, 6, 7, 8, 9))

    assert Run(reg).start("wf").actions == [act.CreateTimer(0, datetime(2030, 5, 6, 7, 8, 9))]


def test_aware_datetime_timer_is_converted_to_naive_utc() -> None:
    reg = Registry()
    plus_two = timezone(timedelta(hours=2))

    @workflow(reg)
    def wf(ctx):
        yield ctx.create_timer(datetime(2030, 1, 1, 14, 0, tzinfo=plus_two))

    assert Run(reg).start("wf").actions == [act.CreateTimer(0, datetime(2030, 1, 1, 12, 0))]


def test_timer_fired_resumes_the_workflow_with_the_new_clock() -> None:
    old = [orchestrator_started(T0), started("sleeper", 60), timer_created(0, at(60))]
    new = [orchestrator_started(at(61)), timer_fired(0, at(60))]
    result = executor.execute(_sleeper(), INSTANCE, old, new)
    assert result.status == executor.COMPLETED
    assert output(result) == at(61).isoformat()


def test_timer_not_fired_keeps_the_workflow_waiting() -> None:
    old = [orchestrator_started(T0), started("sleeper", 60), timer_created(0, at(60))]
    result = executor.execute(_sleeper(), INSTANCE, old, [orchestrator_started(at(30))])
    assert result.status == executor.RUNNING
    assert result.actions == []
    assert result.new_events == [orchestrator_started(at(30))]


def test_zero_timer_still_waits_for_its_fired_event() -> None:
    run = Run(_sleeper())
    assert run.start("sleeper", 0).actions == [act.CreateTimer(0, T0)]
    assert run.step([timer_fired(0, T0)]).status == executor.COMPLETED


def test_sequential_timers_take_consecutive_sequence_numbers() -> None:
    reg = Registry()

    @workflow(reg)
    def wf(ctx):
        for _ in range(3):
            yield ctx.create_timer(timedelta(minutes=1))
        return "slept"

    run = Run(reg)
    assert run.start("wf").actions == [act.CreateTimer(0, at(60))]
    assert run.step([timer_fired(0, at(60))], t=at(60)).actions == [act.CreateTimer(1, at(120))]
    assert run.step([timer_fired(1, at(120))], t=at(120)).actions == [act.CreateTimer(2, at(180))]
    assert output(run.step([timer_fired(2, at(180))], t=at(180))) == "slept"


def test_duplicate_or_forged_timer_fired_is_ignored() -> None:
    reg = Registry()

    @workflow(reg)
    def wf(ctx):
        yield ctx.create_timer(timedelta(seconds=1))
        yield ctx.create_timer(timedelta(seconds=1))
        return "done"

    run = Run(reg)
    run.start("wf")
    assert run.step([timer_fired(0, at(1)), timer_fired(0, at(1)), timer_fired(5, at(1))], t=at(1)).actions == [
        act.CreateTimer(1, at(2))
    ]
    assert output(run.step([timer_fired(1, at(2))], t=at(2))) == "done"


def test_timer_fired_in_same_batch_as_its_creation_is_ignored() -> None:
    result = executor.execute(
        _sleeper(), INSTANCE, [], [orchestrator_started(), started("sleeper", 0), timer_fired(0, T0)]
    )
    assert result.status == executor.RUNNING
    assert result.actions == [act.CreateTimer(0, T0)]
