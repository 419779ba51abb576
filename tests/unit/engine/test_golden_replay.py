"""Replay every golden history in tests/golden/histories against the current workflow code.

Temporal's Replayer, for Ledgerflow: a change to the engine or to `tests/golden/workflows.py`
that would break a running instance fails here before it reaches one. Two checks per file:

* full replay, by the replayer users get (`ledgerflow.testing.Replayer`): the whole history
  must reproduce the recorded outcome (the same completion, or, for a run still going, no
  new action) and must not stall;
* step by step: for histories recorded with the current code, re-running each step from the
  events fed to it must produce exactly the events that step recorded.

`nondeterministic.json` was recorded with different code (see `tests/golden/record.py`): its
replay must fail with NonDeterminismError.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ledgerflow.testing import RecordedHistory, Replayer, ReplayResult, histories
from orchestrator.engine import codec, executor
from orchestrator.engine import events as ev
from tests.golden import record, workflows

HISTORIES = Path(record.__file__).resolve().parent / "histories"
FILES = sorted(HISTORIES.glob("*.json"))
#: Recorded with other code on purpose (an older version, before a patch): full replay only.
REPLAY_ONLY = {"versioned_v1", "patched_before"}
NONDETERMINISTIC = {"nondeterministic"}
#: Events the engine writes itself; every other event in a step was fed to it.
ENGINE_WRITTEN = (
    ev.TaskScheduled,
    ev.TimerCreated,
    ev.SubOrchestrationInstanceCreated,
    ev.ExecutionCompleted,
    ev.ContinuedAsNew,
)


def load(path: Path) -> list[ev.HistoryEvent]:
    return list(histories.load_file(path).events)


def split_steps(history: list[ev.HistoryEvent]) -> list[list[ev.HistoryEvent]]:
    steps: list[list[ev.HistoryEvent]] = []
    for event in history:
        if isinstance(event, ev.OrchestratorStarted) or not steps:
            steps.append([])
        steps[-1].append(event)
    return steps


def _comparable(event: ev.HistoryEvent) -> ev.HistoryEvent:
    """Stack traces hold paths and line numbers; record.py drops them, so ignore them here."""
    if isinstance(event, ev.ExecutionCompleted) and event.failure is not None:
        return dataclasses.replace(event, failure=dataclasses.replace(event.failure, stack_trace=None))
    return event


def full_replay(name: str, history: list[ev.HistoryEvent]) -> ReplayResult:
    """The users' replayer (`ledgerflow.testing.Replayer`) over the golden workflows."""
    return Replayer(workflows.registrar()).replay(RecordedHistory(record.instance_id(name), history))


def step_mismatches(name: str, history: list[ev.HistoryEvent]) -> list[str]:
    registry = workflows.registrar().registry
    problems: list[str] = []
    old: list[ev.HistoryEvent] = []
    for index, recorded in enumerate(split_steps(history)):
        fed = [e for e in recorded if not isinstance(e, ENGINE_WRITTEN)]
        fed[0] = dataclasses.replace(fed[0], version=None, patches=())
        result = executor.execute(registry, record.instance_id(name), old, fed)
        got = [codec.encode(_comparable(e)) for e in result.new_events]
        want = [codec.encode(_comparable(e)) for e in recorded]
        if got != want:
            problems.append(f"step {index}: recorded {want}, re-ran to {got}")
        old.extend(recorded)
    return problems


def test_there_is_a_golden_history_for_every_scenario() -> None:
    assert {p.stem for p in FILES} == {s.name for s in record._scenarios()}
    assert REPLAY_ONLY | NONDETERMINISTIC <= {p.stem for p in FILES}


@pytest.mark.parametrize("path", [p for p in FILES if p.stem not in NONDETERMINISTIC], ids=lambda p: p.stem)
def test_golden_history_replays_with_no_mismatch(path: Path) -> None:
    history = load(path)
    result = full_replay(path.stem, history)
    mismatches = [] if result.ok else [str(result)]
    if path.stem not in REPLAY_ONLY:
        mismatches += step_mismatches(path.stem, history)
    assert mismatches == []


@pytest.mark.parametrize("path", [p for p in FILES if p.stem in NONDETERMINISTIC], ids=lambda p: p.stem)
def test_nondeterministic_golden_history_fails_with_non_determinism_error(path: Path) -> None:
    history = load(path)
    result = executor.execute(
        workflows.registrar().registry,
        record.instance_id(path.stem),
        history,
        [ev.OrchestratorStarted(history[-1].timestamp)],
    )
    assert result.status == executor.FAILED
    assert result.completion.failure.error_type == "NonDeterminismError"
    message = result.completion.failure.message
    assert "call_activity(reserve)" in message and "call_activity(reserve_v2)" in message
    failure = full_replay(path.stem, history).failure
    assert failure is not None and failure.sequence == 2 and failure.event_type == "TaskScheduled"
    assert (failure.recorded, failure.now) == ("call_activity(reserve)", "called call_activity(reserve_v2)")


def test_golden_check_catches_a_changed_result() -> None:
    """The checker itself: a history whose recorded output was edited is a mismatch."""
    history = load(HISTORIES / "chain.json")
    edited = [*history[:-1], dataclasses.replace(history[-1], result='["edited"]')]
    assert not full_replay("chain", edited).ok
    assert step_mismatches("chain", edited) != []
