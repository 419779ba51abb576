"""History propagation over the real step and worker code, with and without signing."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from brokers import wire
from persistence.store import Store
from tests.integration.security import apps
from tests.integration.security.harness import Bus, security_for


def bus_for(store: Store, certs: Path | None) -> Bus:
    bus = Bus(store)
    bus.add_app("orders", apps.orders, security_for("orders", certs))
    bus.add_app("billing", apps.billing, security_for("billing", certs))
    return bus


def out(bus: Bus, iid: str):
    inst = bus.store.get_instance(iid)
    assert inst.status == "COMPLETED", inst.failure
    return json.loads(inst.output)


@pytest.mark.parametrize("signing", [False, True], ids=["unsigned", "signed"])
def test_scopes_to_children_and_activities(sqlite_store: Store, tmp_path: Path, signing: bool) -> None:
    bus = bus_for(sqlite_store, tmp_path / "certs" if signing else None)
    bus.start("orders", "local_parent", None, "none")
    bus.start("orders", "local_parent", "OWN_HISTORY", "own")
    bus.run()
    assert out(bus, "none")[1]["seen"] is None
    assert out(bus, "own")[1]["seen"] == ["local_parent"]
    # the child's activity was called with LINEAGE: it sees the parent's chunk and the child's own
    lineage = [c[3] for c in apps.CALLS if c[1] == "step" and c[3] is not None]
    assert [w.name for w in lineage[-1].get_workflows()] == ["local_parent", "local_child"]
    assert lineage[-1].get_workflows()[0].verified is signing
    parent = lineage[-1].get_last_workflow_by_name("local_parent")
    first = parent.get_last_activity_by_name("step")
    assert (first.completed, first.input, first.output) == (True, "1", "2")
    assert parent.get_last_child_workflow_by_name("local_child").started


def test_lineage_passes_on_what_was_received_own_history_drops_it(sqlite_store: Store, tmp_path: Path) -> None:
    bus = bus_for(sqlite_store, tmp_path / "certs")
    for scope in ("LINEAGE", "OWN_HISTORY"):
        apps.CALLS.clear()
        bus.start("orders", "checkout", {"verify": True, "scope": "LINEAGE", "child": "relay",
                                         "input": {"scope": scope}}, f"r-{scope}")
        bus.run()
        assert bus.store.get_instance(f"r-{scope}").status == "COMPLETED"
        [seen] = [c[3] for c in apps.CALLS if c[1] == "step"]
        names = [w.name for w in seen.get_workflows()]
        assert names == (["checkout", "relay"] if scope == "LINEAGE" else ["relay"])
        assert seen.get_app_ids() == (["billing", "orders"] if scope == "LINEAGE" else ["billing"])


def test_cross_app_child_reads_its_callers_history(sqlite_store: Store, tmp_path: Path) -> None:
    bus = bus_for(sqlite_store, tmp_path / "certs")
    bus.start("orders", "checkout", {"verify": True, "scope": "OWN_HISTORY", "child": "invoice", "input": 3}, "x")
    bus.run()
    assert out(bus, "x") == {"charged": "charged 3", "caller_activities": ["verify_customer"]}
    bus.read("x:0001")


def test_continue_as_new_keeps_the_received_history(sqlite_store: Store, tmp_path: Path) -> None:
    bus = bus_for(sqlite_store, tmp_path / "certs")
    bus.start("orders", "loop_parent", None, "lp")
    bus.run()
    child = bus.store.get_instance("lp:0001")
    assert child.generation == 2
    assert out(bus, "lp") == {"y": 3, "seen": ["loop_parent"]}
    bus.read("lp:0001")


def test_a_tampered_chunk_is_refused_by_a_signing_receiver(sqlite_store: Store, tmp_path: Path) -> None:
    bus = bus_for(sqlite_store, tmp_path / "certs")

    def tamper(app: str, request: wire.ActivityRequest) -> wire.ActivityRequest:
        if request.propagated:
            assert "verified ann" in request.propagated
            request = replace(request, propagated=request.propagated.replace("verified ann", "verified bob"))
        return request

    bus.on_request = tamper
    bus.start("orders", "checkout", {"verify": True, "scope": "OWN_HISTORY"}, "t")
    bus.run()
    inst = bus.store.get_instance("t")
    assert inst.status == "FAILED" and "propagated chunk" in json.loads(inst.failure)["message"]
    assert not [c for c in apps.CALLS if c[1] == "charge"]
