"""External events: case-insensitive names, FIFO, buffering, one event per waiter, timeouts."""

from __future__ import annotations

from datetime import timedelta

import pytest

from orchestrator.engine import actions as act
from orchestrator.engine import executor
from orchestrator.engine.registry import Registry
from orchestrator.engine.tasks import when_all
from tests.unit.engine.factories import T0, Run, at, event_raised, output, task_completed, timer_fired, workflow


def _waiter(name: str = "approval", count: int = 1, timeout=None) -> Registry:
    reg = Registry()

    @workflow(reg)
    def wf(ctx):
        got = []
        for _ in range(count):
            got.append((yield ctx.wait_for_external_event(name, timeout=timeout)))
        return got

    return reg


def test_waiting_for_an_event_schedules_nothing() -> None:
    result = Run(_waiter()).start("wf")
    assert result.status == executor.RUNNING
    assert result.actions == []


def test_event_completes_the_wait_with_its_data() -> None:
    run = Run(_waiter())
    run.start("wf")
    assert output(run.step([event_raised("approval", {"by": "ann"})])) == [{"by": "ann"}]


@pytest.mark.parametrize("sent", ["APPROVAL", "Approval", "aPpRoVaL"])
def test_event_names_are_case_insensitive(sent: str) -> None:
    run = Run(_waiter("Approval"))
    run.start("wf")
    assert output(run.step([event_raised(sent, 1)])) == [1]


def test_events_of_one_name_are_delivered_first_in_first_out() -> None:
    run = Run(_waiter(count=3))
    run.start("wf")
    result = run.step([event_raised("approval", 1), event_raised("APPROVAL", 2), event_raised("approval", 3)])
    assert output(result) == [1, 2, 3]


def test_event_arriving_before_the_wait_is_buffered() -> None:
    reg = Registry()

    @workflow(reg)
    def wf(ctx):
        yield ctx.call_activity("first")
        data = yield ctx.wait_for_external_event("early")
        return data

    run = Run(reg)
    run.start("wf")

    assert run.step([event_raised("early", "kept")]).status == executor.RUNNING
    assert output(run.step([task_completed(0)])) == "kept"


def test_one_event_completes_one_waiter() -> None:
    reg = Registry()

    @workflow(reg)
    def wf(ctx):
        a = ctx.wait_for_external_event("go")
        b = ctx.wait_for_external_event("go")
        return (yield when_all([a, b]))

    run = Run(reg)
    run.start("wf")
    assert run.step([event_raised("go", "first")]).status == executor.RUNNING
    assert output(run.step([event_raised("go", "second")])) == ["first", "second"]


def test_events_of_other_names_do_not_complete_the_wait() -> None:
    run = Run(_waiter())
    run.start("wf")
    assert run.step([event_raised("rejection", 1)]).status == executor.RUNNING


@pytest.mark.parametrize("timeout", [None, -1, timedelta(seconds=-5)])
def test_none_or_negative_timeout_waits_forever_without_a_timer(timeout) -> None:
    run = Run(_waiter(timeout=timeout))
    assert run.start("wf").actions == []
    assert output(run.step([event_raised("approval", "late")], t=at(10**6))) == ["late"]


@pytest.mark.parametrize("timeout", [0, 0.0, timedelta(0)])
def test_zero_timeout_is_already_failed_with_timeout_error(timeout) -> None:
    result = Run(_waiter(timeout=timeout)).start("wf")
    assert result.status == executor.FAILED
    assert result.completion.failure.error_type == "TimeoutError"
    assert result.completion.failure.message == f"Timed out after {timeout} waiting for external event 'approval'"
    assert result.actions == [result.completion]


def test_zero_timeout_takes_an_already_buffered_event() -> None:
    reg = Registry()

    @workflow(reg)
    def wf(ctx):
        yield ctx.create_timer(timedelta(seconds=1))
        return (yield ctx.wait_for_external_event("x", timeout=0))

    run = Run(reg)
    run.start("wf")
    assert output(run.step([event_raised("x", "here"), timer_fired(0, at(1))], t=at(1))) == "here"


def test_positive_timeout_creates_a_timer_and_fails_with_timeout_error() -> None:
    reg = Registry()

    @workflow(reg)
    def wf(ctx):
        try:
            return (yield ctx.wait_for_external_event("approval", timeout=timedelta(minutes=5)))
        except TimeoutError as err:
            return str(err)

    run = Run(reg)
    assert run.start("wf").actions == [act.CreateTimer(0, T0 + timedelta(minutes=5))]
    result = run.step([timer_fired(0, at(300))], t=at(300))
    assert output(result) == "Timed out after 0:05:00 waiting for external event 'approval'"


def test_positive_timeout_in_seconds() -> None:
    run = Run(_waiter(timeout=30))
    assert run.start("wf").actions == [act.CreateTimer(0, at(30))]
    result = run.step([timer_fired(0, at(30))], t=at(30))
    assert result.status == executor.FAILED
    assert result.completion.failure.message == "Timed out after 30 waiting for external event 'approval'"


def test_event_before_timeout_wins_and_the_late_timer_is_harmless() -> None:
    reg = Registry()

    @workflow(reg)
    def wf(ctx):
        first = yield ctx.wait_for_external_event("approval", timeout=60)
        second = yield ctx.wait_for_external_event("next")
        return [first, second]

    run = Run(reg)
    run.start("wf")
    assert run.step([event_raised("approval", "yes")], t=at(5)).status == executor.RUNNING
    assert run.step([timer_fired(0, at(60))], t=at(60)).status == executor.RUNNING
    assert output(run.step([event_raised("next", 2)], t=at(61))) == ["yes", 2]


def test_timed_out_waiter_does_not_consume_a_later_event() -> None:
    reg = Registry()

    @workflow(reg)
    def wf(ctx):
        try:
            yield ctx.wait_for_external_event("go", timeout=10)
        except TimeoutError:
            pass
        return (yield ctx.wait_for_external_event("go"))

    run = Run(reg)
    run.start("wf")
    run.step([timer_fired(0, at(10))], t=at(10))
    assert output(run.step([event_raised("go", "for the second wait")], t=at(11))) == "for the second wait"


def test_event_with_no_data_gives_none() -> None:
    run = Run(_waiter())
    run.start("wf")
    assert output(run.step([event_raised("approval")])) == [None]
