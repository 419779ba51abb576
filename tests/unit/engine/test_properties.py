"""Properties: order-independence of fan-in, execute never raising, codec round-trips, and a
cached Replay deciding exactly what a cold execute decides."""

from __future__ import annotations

import os
from datetime import timedelta, timezone

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from orchestrator.engine import codec, executor
from orchestrator.engine import events as ev
from orchestrator.engine.errors import TaskFailedError
from orchestrator.engine.registry import Registry
from orchestrator.engine.tasks import when_all
from tests.golden import workflows
from tests.unit.engine import factories as f

#: Modest by default so the engine suite stays fast; raise it to hunt (e.g. 5000) locally.
EXAMPLES = int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", "100"))
#: database=None: nothing is written to .hypothesis/ in the work tree.
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
STATUSES = {"RUNNING", "SUSPENDED", "STALLED", "COMPLETED", "FAILED", "TERMINATED", "CONTINUED_AS_NEW"}


# -- fan-out: any interleaving and batching of completions gives the same result -------------


def _fan_out_registry() -> Registry:
    reg = Registry()

    @f.workflow(reg)
    def fan(ctx, n):
        try:
            return (yield when_all([ctx.call_activity("work", input=i) for i in range(n)]))
        except TaskFailedError as err:
            return f"failed: {err}"

    return reg


@st.composite
def fan_out_deliveries(draw):
    n = draw(st.integers(1, 6))
    failing = draw(st.sets(st.integers(0, n - 1), max_size=n))
    order = draw(st.permutations(range(n)))
    redelivered = draw(st.lists(st.integers(0, n - 1), max_size=3))
    deliveries = list(order)
    for task in redelivered:  # a redelivery lands anywhere after the first delivery
        first = deliveries.index(task)
        deliveries.insert(draw(st.integers(first + 1, len(deliveries))), task)
    cuts = sorted(draw(st.sets(st.integers(1, len(deliveries) - 1)))) if len(deliveries) > 1 else []
    return n, failing, deliveries, cuts


@SETTINGS
@given(fan_out_deliveries())
def test_any_interleaving_and_batching_of_fan_out_completions_gives_the_same_result(case) -> None:
    n, failing, deliveries, cuts = case
    events = [f.task_failed(i, f"task {i} broke") if i in failing else f.task_completed(i, i * 10) for i in deliveries]
    run = f.Run(_fan_out_registry())
    run.start("fan", n)
    bounds = [0, *cuts, len(events)]
    for step, (lo, hi) in enumerate(zip(bounds, bounds[1:], strict=False), start=1):
        run.step(events[lo:hi], t=f.at(step))
    expected = (
        f"failed: wf-1: Activity task #{min(failing)} failed: task {min(failing)} broke"
        if failing
        else [i * 10 for i in range(n)]
    )
    first_done = next(r for r in run.results if r.completion is not None)
    assert first_done.status == executor.COMPLETED
    assert f.output(first_done) == expected
    assert sum(isinstance(e, ev.ExecutionCompleted) for e in run.history) >= 1
    assert run.last.completion == first_done.completion


# -- arbitrary event sequences -------------------------------------------------------------

WORKFLOW_NAMES = [*workflows.registrar().registry.workflow_names(), "missing"]
IDS = st.integers(0, 6)
SMALL_JSON = st.one_of(st.none(), st.integers(-3, 30), st.text(max_size=3), st.lists(st.integers(0, 3), max_size=2))
WHEN = st.integers(0, 4000).map(f.at)

FED_EVENTS = st.one_of(
    st.builds(f.task_completed, IDS, SMALL_JSON, t=WHEN),
    st.builds(f.task_failed, IDS, st.text(max_size=5), st.sampled_from(["ValueError", "NonRetryableError"]), t=WHEN),
    st.builds(f.timer_fired, IDS, WHEN),
    st.builds(f.child_completed, IDS, SMALL_JSON, t=WHEN),
    st.builds(f.child_failed, IDS, st.text(max_size=5), t=WHEN),
    st.builds(
        f.event_raised,
        st.sampled_from(["approval", "APPROVAL", "tick", "race", "second", "never", "x"]),
        SMALL_JSON,
        t=WHEN,
    ),
    st.builds(f.suspended, t=WHEN),
    st.builds(f.resumed, t=WHEN),
    st.builds(f.terminated, SMALL_JSON, recursive=st.booleans(), t=WHEN),
)
ANY_EVENTS = st.one_of(
    FED_EVENTS,
    st.builds(f.started, st.sampled_from(WORKFLOW_NAMES), SMALL_JSON, t=WHEN),
    st.builds(
        f.orchestrator_started,
        WHEN,
        version=st.sampled_from([None, "v1", "v2", "v9"]),
        patches=st.lists(st.sampled_from(["send-receipt", "other"]), max_size=2),
    ),
    st.builds(f.task_scheduled, IDS, st.sampled_from(["greet", "square", "flaky", "charge"]), SMALL_JSON, t=WHEN),
    st.builds(f.timer_created, IDS, WHEN, t=WHEN),
    st.builds(f.child_created, IDS, st.sampled_from(["child", "other"]), st.text(max_size=4), t=WHEN),
)


@SETTINGS
@given(old=st.lists(ANY_EVENTS, max_size=12), new=st.lists(ANY_EVENTS, max_size=8))
def test_execute_never_raises_for_arbitrary_event_sequences(old, new) -> None:
    registry = workflows.registrar().registry
    result = executor.execute(registry, "prop", old, new)
    assert result.status in STATUSES
    if result.status == executor.STALLED:
        assert result.new_events == [] and result.actions == []


# -- the codec round-trips every event type --------------------------------------------------

TEXT = st.text(max_size=20)
OPT_TEXT = st.none() | TEXT
TIMES = st.datetimes(timezones=st.none() | st.just(timezone.utc) | st.just(timezone(timedelta(hours=-5))))
INTS = st.integers(-(2**63), 2**63)
FAILURES = st.builds(ev.FailureDetails, TEXT, TEXT, OPT_TEXT)
PARENTS = st.builds(ev.ParentInfo, TEXT, TEXT, INTS, OPT_TEXT)
RAISED = st.builds(ev.EventRaised, TIMES, TEXT, OPT_TEXT)

EVENT_STRATEGIES = {
    ev.ExecutionStarted: st.builds(ev.ExecutionStarted, TIMES, TEXT, OPT_TEXT, st.none() | PARENTS, st.none() | TIMES),
    ev.OrchestratorStarted: st.builds(ev.OrchestratorStarted, TIMES, OPT_TEXT, st.lists(TEXT, max_size=3).map(tuple)),
    ev.TaskScheduled: st.builds(ev.TaskScheduled, TIMES, INTS, TEXT, OPT_TEXT, OPT_TEXT, INTS),
    ev.TaskCompleted: st.builds(ev.TaskCompleted, TIMES, INTS, OPT_TEXT),
    ev.TaskFailed: st.builds(ev.TaskFailed, TIMES, INTS, FAILURES),
    ev.TimerCreated: st.builds(ev.TimerCreated, TIMES, INTS, TIMES),
    ev.TimerFired: st.builds(ev.TimerFired, TIMES, INTS, TIMES),
    ev.SubOrchestrationInstanceCreated: st.builds(
        ev.SubOrchestrationInstanceCreated, TIMES, INTS, TEXT, TEXT, OPT_TEXT, OPT_TEXT, INTS
    ),
    ev.SubOrchestrationInstanceCompleted: st.builds(ev.SubOrchestrationInstanceCompleted, TIMES, INTS, OPT_TEXT),
    ev.SubOrchestrationInstanceFailed: st.builds(ev.SubOrchestrationInstanceFailed, TIMES, INTS, FAILURES),
    ev.EventRaised: RAISED,
    ev.ExecutionSuspended: st.builds(ev.ExecutionSuspended, TIMES, OPT_TEXT),
    ev.ExecutionResumed: st.builds(ev.ExecutionResumed, TIMES, OPT_TEXT),
    ev.ExecutionTerminated: st.builds(ev.ExecutionTerminated, TIMES, OPT_TEXT, st.booleans()),
    ev.ExecutionCompleted: st.builds(
        ev.ExecutionCompleted,
        TIMES,
        st.sampled_from(["COMPLETED", "FAILED", "TERMINATED"]),
        OPT_TEXT,
        st.none() | FAILURES,
    ),
    ev.ContinuedAsNew: st.builds(ev.ContinuedAsNew, TIMES, OPT_TEXT, st.lists(RAISED, max_size=3).map(tuple)),
}


def test_codec_property_covers_every_event_type() -> None:
    assert set(EVENT_STRATEGIES) == set(ev.EVENT_TYPES)


@settings(max_examples=EXAMPLES * 3, deadline=None, database=None)
@given(st.one_of(*EVENT_STRATEGIES.values()))
def test_codec_round_trips_every_event_type(event: ev.HistoryEvent) -> None:
    decoded = codec.decode(*codec.encode(event))
    assert decoded == event
    assert decoded.timestamp.utcoffset() == event.timestamp.utcoffset()


# -- cached Replay == cold execute -----------------------------------------------------------


@SETTINGS
@given(
    name=st.sampled_from(WORKFLOW_NAMES),
    input=SMALL_JSON,
    steps=st.lists(st.lists(FED_EVENTS, max_size=4), min_size=1, max_size=6),
)
# Found by this property: actions taken in a step that ended suspended were scheduled again
# by a cold replay (their TaskScheduled events were held with the suspended events).
@example(name="nondeterministic", input=None, steps=[[f.task_completed(0), f.suspended()], []])
def test_cached_replay_step_by_step_equals_cold_execute(name, input, steps) -> None:
    registry = workflows.registrar().registry
    warm = executor.Replay(registry, "prop")
    assert warm.replay([]) is None
    history: list[ev.HistoryEvent] = []
    batches = [[f.started(name, input)], *steps]
    for index, batch in enumerate(batches):
        new = [f.orchestrator_started(f.at(index * 100)), *batch]
        cold = executor.execute(registry, "prop", history, new)
        hot = warm.step(new)
        assert hot.new_events == cold.new_events
        assert hot.actions == cold.actions
        assert (hot.status, hot.custom_status) == (cold.status, cold.custom_status)
        history.extend(cold.new_events)
