"""The propagated history as the callee sees it: accessors and the wire format."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from ledgerflow import PropagatedHistory, PropagationNotFoundError, PropagationScope
from orchestrator.engine import codec
from orchestrator.engine import events as ev
from orchestrator.engine.propagation import parse, scope_name

T = datetime(2025, 1, 1)


def _chunk(app: str, iid: str, name: str, events: list[ev.HistoryEvent]) -> dict:
    rows = []
    for i, e in enumerate(events):
        t, p = codec.encode(e)
        rows.append([i, t, p, "2025-01-01T00:00:00+00:00"])
    return {"app_id": app, "instance_id": iid, "name": name, "generation": 0, "events": rows}


def wire() -> str:
    parent = _chunk("orders", "p1", "checkout", [
        ev.ExecutionStarted(T, "checkout", '{"a":1}'),
        ev.TaskScheduled(T, 0, "verify", '"ann"'),
        ev.TaskCompleted(T, 0, '"ok"'),
        ev.TaskScheduled(T, 1, "verify", '"bob"'),
        ev.TaskFailed(T, 1, ev.FailureDetails("nope", "ValueError")),
        ev.SubOrchestrationInstanceCreated(T, 2, "kyc", "p1:0002", '"x"', "risk"),
        ev.SubOrchestrationInstanceCompleted(T, 2, '"clean"'),
    ])
    child = _chunk("billing", "c1", "invoice", [ev.ExecutionStarted(T, "invoice", "5")])
    return json.dumps({"scope": "LINEAGE", "chunks": [parent, child]})


def test_accessors() -> None:
    h = parse(wire())
    assert isinstance(h, PropagatedHistory) and h.scope is PropagationScope.LINEAGE
    assert h.get_app_ids() == ["billing", "orders"]
    assert [w.name for w in h.get_workflows()] == ["checkout", "invoice"]
    w = h.get_last_workflow_by_name("checkout")
    assert w.input == '{"a":1}' and w.app_id == "orders"
    ok, failed = w.get_activities_by_name("verify")
    assert (ok.started, ok.completed, ok.failed, ok.input, ok.output) == (True, True, False, '"ann"', '"ok"')
    assert (failed.completed, failed.failed, failed.error) == (False, True, "nope")
    assert w.get_last_activity_by_name("verify") is failed
    kyc = w.get_last_child_workflow_by_name("kyc")
    assert (kyc.instance_id, kyc.app_id, kyc.completed, kyc.output) == ("p1:0002", "risk", True, '"clean"')
    assert len(h.events) == 8
    for call in (lambda: h.get_last_workflow_by_name("nope"), lambda: w.get_last_activity_by_name("nope"),
                 lambda: w.get_last_child_workflow_by_name("nope")):
        with pytest.raises(PropagationNotFoundError):
            call()
    assert h.timeline() == [("workflow", "checkout", "orders", True), ("activity", "verify", "orders", True),
                            ("activity", "verify", "orders", False), ("childWorkflow", "kyc", "risk", True),
                            ("workflow", "invoice", "billing", True)]


def test_scope_names_and_empty() -> None:
    assert scope_name(PropagationScope.OWN_HISTORY) == "OWN_HISTORY" and scope_name(None) is None
    with pytest.raises(ValueError):
        scope_name("EVERYTHING")
    assert parse(None) is None


def test_new_event_fields_keep_old_encodings() -> None:
    started = ev.ExecutionStarted(T, "wf", "1")
    assert "propagated" not in codec.encode(started)[1]
    with_prop = ev.ExecutionStarted(T, "wf", "1", propagated=wire())
    assert codec.decode(*codec.encode(with_prop)) == with_prop
