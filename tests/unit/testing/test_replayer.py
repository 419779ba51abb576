"""`ledgerflow.testing.Replayer`: a recorded history replays cleanly against the code that
recorded it; each kind of change to that code is reported at the exact event."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import ledgerflow as wf
from ledgerflow.testing import HistoryFormatError, RecordedHistory, Replayer
from tests.unit.testing import recorded


def renamed(ctx: Any, _: Any = None) -> Any:
    yield ctx.call_activity("reserve_stock")
    yield ctx.create_timer(timedelta(hours=1))
    yield ctx.call_activity("charge")
    return "done"


def without_charge(ctx: Any, _: Any = None) -> Any:
    yield ctx.call_activity("reserve")
    yield ctx.create_timer(timedelta(hours=1))
    return "done"


def reordered(ctx: Any, _: Any = None) -> Any:
    yield ctx.call_activity("charge")
    yield ctx.create_timer(timedelta(hours=1))
    yield ctx.call_activity("reserve")
    return "done"


def longer_timer(ctx: Any, _: Any = None) -> Any:
    yield ctx.call_activity("reserve")
    yield ctx.create_timer(timedelta(hours=2))
    yield ctx.call_activity("charge")
    return "done"


def new_result(ctx: Any, _: Any = None) -> Any:
    yield ctx.call_activity("reserve")
    yield ctx.create_timer(timedelta(hours=1))
    yield ctx.call_activity("charge")
    return "finished"


def extra_call(ctx: Any, _: Any = None) -> Any:
    yield ctx.call_activity("reserve")
    yield ctx.call_activity("notify")
    yield ctx.create_timer(timedelta(hours=1))


def replay(workflow: Any, steps: int = 4) -> Any:
    return Replayer(recorded.registrar(workflow)).replay(RecordedHistory(recorded.INSTANCE, recorded.recorded(steps)))


def test_the_recording_code_replays_its_history() -> None:
    result = replay(recorded.order)
    assert result.ok and result.failure is None
    assert str(result) == "OK    order-1 (12 events)"


@pytest.mark.parametrize(("workflow", "line"), [
    (renamed, "FAIL  order-1: event #2 (TaskScheduled): history recorded call_activity(reserve); "
              "the code now called call_activity(reserve_stock)"),
    (without_charge, "FAIL  order-1: event #8 (TaskScheduled): history recorded call_activity(charge); "
                     "the code now scheduled nothing there"),
    (reordered, "FAIL  order-1: event #2 (TaskScheduled): history recorded call_activity(reserve); "
                "the code now called call_activity(charge)"),
    (longer_timer, "FAIL  order-1: event #5 (TimerCreated): history recorded "
                   "create_timer(fire_at=2024-01-01T13:00:01); the code now called "
                   "create_timer(fire_at=2024-01-01T14:00:01)"),
    (new_result, "FAIL  order-1: event #11 (ExecutionCompleted): history recorded COMPLETED with \"done\"; "
                 "the code now ends it COMPLETED with \"finished\""),
], ids=["changed-activity-name", "removed-step", "reordered-calls", "changed-timer", "changed-result"])
def test_each_kind_of_change_is_reported_at_its_event(workflow: Any, line: str) -> None:
    assert str(replay(workflow)) == line


def parallel_audit(ctx: Any, _: Any = None) -> Any:
    yield ctx.call_activity("reserve")
    yield wf.when_all([ctx.create_timer(timedelta(hours=1)), ctx.call_activity("audit")])


def test_an_inserted_call_is_reported_where_the_history_recorded_something_else() -> None:
    assert str(replay(extra_call, steps=2)) == (
        "FAIL  order-1: event #5 (TimerCreated): history recorded create_timer(); "
        "the code now called call_activity(notify)")


def test_a_call_the_history_never_recorded_is_reported_at_the_end_of_a_running_history() -> None:
    assert str(replay(parallel_audit, steps=2)) == (
        "FAIL  order-1: event #6 (end of history): history recorded nothing more; "
        "the code now called call_activity(audit)")


@pytest.mark.parametrize("shape", ["cli", "http", "pairs"])
def test_histories_are_read_from_every_exported_shape(tmp_path: Path, shape: str) -> None:
    events = recorded.recorded()
    data: Any = {
        "cli": recorded.cli_json(events),
        "http": recorded.http_json(events),
        "pairs": [{"type": r.type, "payload": r.payload} for r in recorded.records(events)],
    }[shape]
    path = tmp_path / f"{recorded.INSTANCE}.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    assert str(Replayer(recorded.registrar()).replay(path)) == "OK    order-1 (12 events)"
    assert not Replayer(recorded.registrar(renamed)).replay(str(path)).ok


def test_a_file_that_is_not_a_history_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('[{"type": "TaskScheduled"}]', encoding="utf-8")
    with pytest.raises(HistoryFormatError, match="entry 0"):
        Replayer(recorded.registrar()).replay(path)


def test_a_history_this_code_cannot_continue_is_reported_with_the_reason() -> None:
    def v2(ctx: Any, _: Any = None) -> Any:
        return "v2"

    wfr = recorded.registrar()
    history = RecordedHistory("priced-1", [*recorded.recorded(1)])
    versioned = wf.WorkflowRuntime()
    versioned.register_versioned_workflow(v2, name="order", version_name="v2", is_latest=True)
    started_v1 = [dataclasses.replace(history.events[0], version="v1"), *history.events[1:]]
    result = Replayer(versioned).replay(RecordedHistory("priced-1", started_v1))
    assert str(result).startswith(
        "FAIL  priced-1: history recorded a workflow version this code does not register; the code now stalls: ")
    assert "version 'v1'" in str(result)
    assert Replayer(wfr).replay(history).ok
