"""Which part of an old history a rerun starts from (`ledgerflow.rerun.prefix`)."""

from __future__ import annotations

from datetime import datetime

import pytest

from ledgerflow import rerun
from orchestrator.engine import codec
from orchestrator.engine import events as ev
from persistence.records import EventRecord

T = datetime(2026, 1, 1)
FAILURE = ev.FailureDetails("down", "RuntimeError")


def _records(*events: ev.HistoryEvent) -> list[EventRecord]:
    return [EventRecord(0, i, *codec.encode(e), T) for i, e in enumerate(events)]


def _decoded(prefix) -> list[ev.HistoryEvent]:
    assert [e.sequence for e in prefix] == list(range(len(prefix)))
    return [codec.decode(e.type, e.payload) for e in prefix]


HISTORY = _records(
    ev.OrchestratorStarted(T), ev.ExecutionStarted(T, "pipeline", '"book"'),
    ev.TaskScheduled(T, 0, "prepare", '"book"'), ev.TimerCreated(T, 1, T),
    ev.OrchestratorStarted(T), ev.TaskCompleted(T, 0, '"book#1"'), ev.TaskScheduled(T, 2, "ship", '"book#1"'),
    ev.OrchestratorStarted(T), ev.TaskFailed(T, 2, FAILURE),
    ev.ExecutionCompleted(T, "FAILED", None, FAILURE),
)


def test_the_prefix_ends_before_the_event_that_scheduled_the_task() -> None:
    kept = _decoded(rerun.prefix(HISTORY, 2))
    assert [type(e).__name__ for e in kept] == [
        "OrchestratorStarted", "ExecutionStarted", "TaskScheduled", "OrchestratorStarted", "TaskCompleted"]
    assert kept[1].input == '"book"'


def test_a_call_without_its_result_in_the_prefix_is_left_out_to_be_issued_again() -> None:
    # The timer (task 1) had not fired by the time ship (task 2) was scheduled.
    assert all(not isinstance(e, ev.TimerCreated) for e in _decoded(rerun.prefix(HISTORY, 2)))


def test_a_new_input_replaces_the_workflow_input() -> None:
    kept = _decoded(rerun.prefix(HISTORY, 0, '"pen"', overwrite_input=True))
    assert kept == [ev.OrchestratorStarted(T), ev.ExecutionStarted(T, "pipeline", '"pen"')]


@pytest.mark.parametrize("event_id", [3, 99])
def test_an_event_id_that_schedules_nothing_is_refused(event_id: int) -> None:
    with pytest.raises(rerun.RerunEventError, match=r"those are: 0, 1, 2"):
        rerun.prefix(HISTORY, event_id)
