"""continue_as_new: the next run's input, and carry-over of unconsumed events."""

from __future__ import annotations

from datetime import timedelta

from orchestrator.engine import actions as act
from orchestrator.engine import events as ev
from orchestrator.engine import executor
from orchestrator.engine.registry import Registry
from orchestrator.engine.serialization import from_json
from tests.unit.engine.factories import Run, at, event_raised, orchestrator_started, started, timer_fired, workflow


def _counter(save_events: bool = False) -> Registry:
    reg = Registry()

    @workflow(reg)
    def counter(ctx, n):
        yield ctx.create_timer(timedelta(seconds=1))
        ctx.continue_as_new(n + 1, save_events=save_events)

    return reg


def test_continue_as_new_completes_the_run_with_the_next_input() -> None:
    run = Run(_counter())
    run.start("counter", 1)
    result = run.step([timer_fired(0, at(1))], t=at(1))
    assert result.status == executor.CONTINUED_AS_NEW
    assert result.actions == [act.CompleteOrchestration("CONTINUED_AS_NEW", "2")]
    assert result.new_events[-1] == ev.ContinuedAsNew(at(1), "2", ())


def test_continue_as_new_then_yield_ends_the_run_at_the_yield() -> None:
    reg = Registry()
    after = []

    @workflow(reg)
    def wf(ctx, n):
        ctx.continue_as_new({"n": n})
        yield ctx.create_timer(timedelta(seconds=5))
        after.append("ran on")

    result = Run(reg).start("wf", 7)
    assert result.status == executor.CONTINUED_AS_NEW
    assert result.completion == act.CompleteOrchestration("CONTINUED_AS_NEW", '{"n": 7}')
    assert after == []


def test_continue_as_new_with_none_input() -> None:
    reg = Registry()

    @workflow(reg)
    def wf(ctx):
        ctx.continue_as_new()

    assert Run(reg).start("wf").completion == act.CompleteOrchestration("CONTINUED_AS_NEW", None)


def test_unconsumed_events_are_dropped_without_save_events() -> None:
    run = Run(_counter(save_events=False))
    run.start("counter", 0)
    result = run.step([event_raised("extra", 1), timer_fired(0, at(1))], t=at(1))
    assert result.completion.carryover_events == ()


def test_save_events_carries_unconsumed_events_into_the_next_generation() -> None:
    run = Run(_counter(save_events=True))
    run.start("counter", 0)
    run.step([event_raised("a", 1, t=at(0.5))], t=at(0.5))
    result = run.step([event_raised("B", 2, t=at(0.7)), timer_fired(0, at(1)), event_raised("a", 3, t=at(1))], t=at(1))
    expected = (event_raised("a", 1, t=at(0.5)), event_raised("B", 2, t=at(0.7)), event_raised("a", 3, t=at(1)))
    assert result.completion.carryover_events == expected
    assert result.new_events[-1] == ev.ContinuedAsNew(at(1), "1", expected)
    assert result.actions == [result.completion]


def test_consumed_events_are_not_carried_over() -> None:
    reg = Registry()

    @workflow(reg)
    def wf(ctx):
        yield ctx.wait_for_external_event("take")
        ctx.continue_as_new("next", save_events=True)

    run = Run(reg)
    run.start("wf")
    result = run.step([event_raised("take", 1), event_raised("keep", 2), event_raised("take", 3)])
    assert result.completion.carryover_events == (event_raised("keep", 2), event_raised("take", 3))


def test_carried_events_feed_the_next_generation_as_new_events() -> None:
    reg = Registry()

    @workflow(reg)
    def wf(ctx, gen):
        if gen == 0:
            ctx.continue_as_new(1, save_events=True)
            return None
        return (yield ctx.wait_for_external_event("msg"))

    first = executor.execute(
        reg, "wf-1", [], [orchestrator_started(), started("wf", 0), event_raised("msg", "hello")]
    )
    assert first.completion.carryover_events == (event_raised("msg", "hello"),)
    next_input = from_json(first.completion.result)
    second = executor.execute(
        reg,
        "wf-1",
        [],
        [orchestrator_started(at(1)), started("wf", next_input, t=at(1)), *first.completion.carryover_events],
    )
    assert second.status == executor.COMPLETED
    assert second.completion.result == '"hello"'


def test_continue_as_new_replays_to_the_same_completion() -> None:
    run = Run(_counter(save_events=True))
    run.start("counter", 5)
    live = run.step([timer_fired(0, at(1)), event_raised("late", 1)], t=at(1))
    assert live.completion.result == "6"
    assert live.completion.carryover_events == (event_raised("late", 1),)
    cold = executor.execute(run.registry, run.instance_id, run.history[:-1], [orchestrator_started(at(2))])
    assert cold.completion == live.completion
