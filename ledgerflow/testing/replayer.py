"""Replaying recorded histories against the current workflow code, before it is deployed.

`Replayer(wfr).replay(history)` feeds a whole recorded history to the real replay engine and
reports the first place where the code no longer does what the history records: a
scheduling event the code now does differently (another activity, a removed step, calls in
another order, a timer that fires at another time), an outcome the code no longer reaches,
or work the code would now ask for that the history never recorded. Nothing runs: no
activity, no database, no broker.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from os import PathLike
from pathlib import Path
from typing import Any

from ledgerflow.registration import Registrar
from ledgerflow.testing import histories
from orchestrator.engine import events as ev
from orchestrator.engine import executor
from orchestrator.engine.registry import Registry
from orchestrator.engine.status import CONTINUED_AS_NEW, FAILED

_SCHEDULING = (ev.TaskScheduled, ev.TimerCreated, ev.SubOrchestrationInstanceCreated)
_STALLS = {
    executor.VERSION_NOT_AVAILABLE: "a workflow version this code does not register",
    executor.PATCH_MISMATCH: "patches this code no longer checks",
}


@dataclass(frozen=True)
class ReplayFailure:
    """Where a history and the code part: the event's position in the history (None when
    the whole history is at issue), its type, what the history recorded, what the code did."""

    sequence: int | None
    event_type: str | None
    recorded: str
    now: str

    def __str__(self) -> str:
        where = "" if self.sequence is None else f"event #{self.sequence}" + (
            f" ({self.event_type})" if self.event_type else " (end of history)") + ": "
        return f"{where}history recorded {self.recorded}; the code now {self.now}"


@dataclass(frozen=True)
class ReplayResult:
    instance_id: str
    events: int
    failure: ReplayFailure | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None

    def __str__(self) -> str:
        if self.failure is None:
            return f"OK    {self.instance_id} ({self.events} events)"
        return f"FAIL  {self.instance_id}: {self.failure}"


class Replayer:
    """Replays histories against the workflows of a `WorkflowRuntime` (or a `Registry`)."""

    def __init__(self, runtime_or_registry: Registrar | Registry) -> None:
        self.registry = (runtime_or_registry.registry if isinstance(runtime_or_registry, Registrar)
                         else runtime_or_registry)

    def replay(self, history: histories.RecordedHistory | str | PathLike[str]) -> ReplayResult:
        """Replay one history (or the JSON file holding it); never raises for a mismatch."""
        if not isinstance(history, histories.RecordedHistory):
            history = histories.load_file(Path(history))
        events = list(history.events)
        return ReplayResult(history.instance_id, len(events), _first_failure(self.registry, history.instance_id, events))


def _first_failure(registry: Registry, instance_id: str, events: list[ev.HistoryEvent]) -> ReplayFailure | None:
    if not events:
        return ReplayFailure(None, None, "no events", "has nothing to replay")
    run = executor.Replay(registry, instance_id, compare_fire_at=True)
    stall = run.replay(events)
    if stall is not None:
        return ReplayFailure(None, None, _STALLS.get(stall.reason, stall.reason), f"stalls: {stall.description}")
    if run.mismatch is not None:
        return _at_scheduling_event(events, run.mismatch)
    result = run.step([ev.OrchestratorStarted(events[-1].timestamp + timedelta(seconds=1))])
    return _outcome_failure(events, result)


def _at_scheduling_event(events: list[ev.HistoryEvent], mismatch: executor.Mismatch) -> ReplayFailure:
    called = "scheduled nothing there" if mismatch.called is None else f"called {mismatch.called}"
    for index, event in enumerate(events):
        if isinstance(event, _SCHEDULING) and event.event_id == mismatch.event_id:
            return ReplayFailure(index, type(event).__name__, mismatch.recorded, called)
    raise AssertionError(f"no scheduling event {mismatch.event_id} in the history")  # the engine matched one


def _outcome_failure(events: list[ev.HistoryEvent], result: executor.ExecutionResult) -> ReplayFailure | None:
    """Compare how the replayed run stands with how the history ends."""
    last, end = events[-1], len(events)
    done = result.completion
    pending = result.actions if done is None else []
    if not isinstance(last, (ev.ExecutionCompleted, ev.ContinuedAsNew)):
        if pending:
            return ReplayFailure(end, None, "nothing more", f"called {executor.describe_action(pending[0])}")
        if done is not None:
            return ReplayFailure(end, None, "a run still going", f"ends it {_outcome(done)}")
        return None
    if done is None:
        if pending:
            return ReplayFailure(end - 1, type(last).__name__, _recorded(last),
                                 f"called {executor.describe_action(pending[0])} instead")
        if isinstance(last, ev.ExecutionCompleted) and last.status == FAILED:
            return None  # failed by the service (a history limit, a refused start), not by the code
        return ReplayFailure(end - 1, type(last).__name__, _recorded(last), "is still waiting")
    if _key(last) != _completion_key(done):
        return ReplayFailure(end - 1, type(last).__name__, _recorded(last), f"ends it {_outcome(done)}")
    return None


def _key(last: ev.ExecutionCompleted | ev.ContinuedAsNew) -> tuple[Any, ...]:
    if isinstance(last, ev.ContinuedAsNew):
        return (CONTINUED_AS_NEW, last.input, last.carryover_events)
    return (last.status, last.result, _failure(last.failure))


def _completion_key(done: Any) -> tuple[Any, ...]:
    if done.status == CONTINUED_AS_NEW:
        return (done.status, done.result, done.carryover_events)
    return (done.status, done.result, _failure(done.failure))


def _failure(failure: ev.FailureDetails | None) -> tuple[str, str] | None:
    return None if failure is None else (failure.message, failure.error_type)


def _recorded(last: ev.ExecutionCompleted | ev.ContinuedAsNew) -> str:
    if isinstance(last, ev.ContinuedAsNew):
        return f"continue_as_new(input={last.input})"
    return _outcome_text(last.status, last.result, last.failure)


def _outcome(done: Any) -> str:
    if done.status == CONTINUED_AS_NEW:
        return f"continue_as_new(input={done.result})"
    return _outcome_text(done.status, done.result, done.failure)


def _outcome_text(status: str, result: str | None, failure: ev.FailureDetails | None) -> str:
    if failure is not None:
        return f"{status} ({failure.error_type}: {failure.message})"
    return f"{status} with {result}"
