"""WorkflowAccessPolicy over the real step and worker code (A1, A2 of RELIABILITY.md)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from brokers import wire
from ledgerflow.access import ManagementAccess, WorkflowAccessDeniedError
from orchestrator import inbox
from orchestrator.engine import clock
from orchestrator.engine import events as ev
from persistence.records import NewInstance, utcnow
from persistence.store import Store
from security import attest
from security.policy import DENIED_MESSAGE, DENIED_TYPE
from tests.fixtures.chaos import RowReport
from tests.integration.security import apps
from tests.integration.security.harness import Bus, failure_of, security_for

BYPASSES: list[str] = []


def policy(resources: Path, body: str, name: str = "billing.yaml") -> None:
    resources.mkdir(parents=True, exist_ok=True)
    (resources / name).write_text("apiVersion: dapr.io/v1alpha1\nkind: WorkflowAccessPolicy\n"
                                  "metadata: {name: billing}\nscopes: [billing]\n" + body)


ONLY_INVOICE = """
spec:
  rules:
    - callers: [{appID: orders}]
      workflows: [{name: "invoice*", operations: [schedule]}]
"""


def world(store: Store, tmp_path: Path, signing: bool = True) -> Bus:
    certs = tmp_path / "certs" if signing else None
    resources = tmp_path / "resources"
    resources.mkdir(exist_ok=True)
    bus = Bus(store)
    for app, reg in (("orders", apps.orders), ("billing", apps.billing), ("mallory", apps.mallory)):
        bus.add_app(app, reg, security_for(app, certs, resources))
    return bus


def outcome(bus: Bus, spec: dict[str, Any], iid: str) -> tuple[str, dict[str, Any] | None]:
    bus.start("orders", "checkout", spec, iid)
    bus.run()
    inst = bus.store.get_instance(iid)
    return inst.status, (json.loads(inst.failure) if inst.failure else None)


def denied(result: tuple[str, dict[str, Any] | None]) -> bool:
    status, failure = result
    return status == "FAILED" and failure is not None and DENIED_MESSAGE in failure["message"]


@pytest.mark.row("A1")
def test_a1_no_policy_allows_a_rule_for_one_workflow_allows_only_it(row: RowReport, sqlite_store: Store,
                                                                   tmp_path: Path) -> None:
    bus = world(sqlite_store, tmp_path)
    assert outcome(bus, {"child": "invoice"}, "a")[0] == "COMPLETED"
    assert outcome(bus, {"activity": "charge"}, "b")[0] == "COMPLETED"
    policy(tmp_path / "resources", ONLY_INVOICE)
    assert outcome(bus, {"child": "invoice"}, "c")[0] == "COMPLETED"
    charges = len([c for c in apps.CALLS if c[1] == "charge"])
    assert denied(outcome(bus, {"child": "audit"}, "d"))
    assert denied(outcome(bus, {"activity": "charge", "retry": True}, "e"))
    assert len([c for c in apps.CALLS if c[1] == "charge"]) == charges  # denied: never ran
    # the denied task failed with the policy's error type, at once and without retries
    attempts = [r for app, r in bus.requests if r.instance_id == "e"]
    assert len(attempts) == 1
    child = sqlite_store.get_instance("d:0000")
    assert child.status == "FAILED" and failure_of(sqlite_store, "d:0000")["error_type"] == DENIED_TYPE
    history = [e.type for e in sqlite_store.history("d:0000")]
    assert history == ["OrchestratorStarted", "ExecutionStarted", "ExecutionCompleted"]
    bus.read("d:0000")  # the refusal is signed like any history
    results = [json.loads(m.payload) for m in bus.results if m.type == "TaskFailed"]
    assert results[-1]["failure"]["error_type"] == DENIED_TYPE
    row.figure("no policy", "child and activity allowed")
    row.figure("rule for workflow invoice only", "invoice allowed; audit denied; activity charge denied at once, "
                                                 "never ran, no retry")


def test_a1_self_calls_pass_and_hot_reload_takes_effect(sqlite_store: Store, tmp_path: Path) -> None:
    bus = world(sqlite_store, tmp_path)
    policy(tmp_path / "resources", ONLY_INVOICE.replace("billing", "x"), name="orders.yaml")
    (tmp_path / "resources" / "orders.yaml").write_text((tmp_path / "resources" / "orders.yaml").read_text()
                                                        .replace("scopes: [billing]", "scopes: [orders]"))
    bus.start("orders", "local_parent", "OWN_HISTORY", "self")  # orders -> orders child and activities
    bus.run()
    assert sqlite_store.get_instance("self").status == "COMPLETED"
    policy(tmp_path / "resources", ONLY_INVOICE)
    assert denied(outcome(bus, {"child": "audit"}, "r1"))
    policy(tmp_path / "resources", ONLY_INVOICE.replace('"invoice*"', '"*"'))
    assert outcome(bus, {"child": "audit"}, "r2")[0] == "COMPLETED"
    (tmp_path / "resources" / "billing.yaml").unlink()
    assert outcome(bus, {"activity": "charge"}, "r3")[0] == "COMPLETED"


REQUIRES = """
spec:
  rules:
    - callers: [{appID: orders}]
      workflows: [{name: invoice, operations: [schedule], requires: [{activity: verify_customer}]}]
      activities: [{name: charge, requires: [{workflow: checkout}, {activity: verify_customer}]}]
"""


def test_requires_use_the_verified_propagated_history(sqlite_store: Store, tmp_path: Path) -> None:
    bus = world(sqlite_store, tmp_path)
    policy(tmp_path / "resources", REQUIRES)
    assert outcome(bus, {"verify": True, "scope": "OWN_HISTORY"}, "ok1")[0] == "COMPLETED"
    assert outcome(bus, {"verify": True, "scope": "LINEAGE", "child": "invoice"}, "ok2")[0] == "COMPLETED"
    assert denied(outcome(bus, {"verify": False, "scope": "OWN_HISTORY"}, "no1"))
    assert denied(outcome(bus, {"verify": True}, "no2"))  # not propagated
    assert denied(outcome(bus, {"verify": True, "child": "invoice"}, "no3"))

    def forge(app: str, request: wire.ActivityRequest) -> wire.ActivityRequest:  # claim a step that never happened
        if app == "billing" and request.propagated:
            request = replace(request, propagated=request.propagated.replace("verify_customer", "verify_custome_"))
        return request

    bus.on_request = forge
    charges = len([c for c in apps.CALLS if c[1] == "charge"])
    status, failure = outcome(bus, {"verify": True, "scope": "OWN_HISTORY"}, "forged")
    assert status == "FAILED" and "propagated chunk 0 (checkout)" in failure["message"]
    last = json.loads(bus.results[-1].payload)["failure"]
    assert last["error_type"] == "PropagationVerificationError"
    assert len([c for c in apps.CALLS if c[1] == "charge"]) == charges


def test_requires_are_denied_without_signing(sqlite_store: Store, tmp_path: Path) -> None:
    bus = world(sqlite_store, tmp_path, signing=False)
    policy(tmp_path / "resources", REQUIRES)
    assert denied(outcome(bus, {"verify": True, "scope": "OWN_HISTORY"}, "u1"))
    assert denied(outcome(bus, {"verify": True, "scope": "LINEAGE", "child": "invoice"}, "u2"))


@pytest.mark.row("A2")
def test_a2_bypass_attempts(row: RowReport, sqlite_store: Store, tmp_path: Path) -> None:
    bus = world(sqlite_store, tmp_path)
    policy(tmp_path / "resources", ONLY_INVOICE)
    assert outcome(bus, {"child": "invoice"}, "ok")[0] == "COMPLETED"
    sec = bus.securities
    attempts = 0

    # other operations on the allowed workflow, by orders' management client
    orders_mgmt = ManagementAccess("orders", sec["orders"])
    orders_mgmt.check("schedule", app_id="billing", name="invoice")
    record = sqlite_store.get_instance("ok:0000")
    for op in ("raise", "purge", "terminate", "pause", "resume", "get", "rerun"):
        attempts += 1
        try:
            orders_mgmt.check(op, record=record)
            BYPASSES.append(f"management {op}")
        except WorkflowAccessDeniedError as exc:
            assert str(exc) == DENIED_MESSAGE and exc.operation == op
    ManagementAccess("billing", sec["billing"]).check("purge", record=record)  # billing itself may

    # a forged caller id on an activity request: mallory claims to be orders
    genuine: list[wire.ActivityRequest] = []
    bus.on_request = lambda app, r: (genuine.append(r), None)[1] if app == "billing" else r
    policy(tmp_path / "resources", ONLY_INVOICE.replace("workflows:", "activities: [{name: charge}]\n      workflows:"))
    bus.start("orders", "checkout", {"activity": "charge", "input": 9}, "held")
    bus.run()
    bus.on_request = None
    [request] = genuine
    from workers.activity import run_activity

    forgeries = {
        "claimed app_id, no attestation": replace(request, caller=None, input="1000"),
        "orders' attestation on another input": replace(request, input="1000"),
        "mallory's own attestation claiming orders": replace(request, input="1000", caller=attest.attest(
            sec["mallory"].identity, attest.REQUEST, replace(request, input="1000").canonical())),
    }
    for name, forged in forgeries.items():
        attempts += 1
        message = run_activity(apps.billing.registry, forged, sec["billing"])
        failure = json.loads(message.payload).get("failure") or {}
        if failure.get("error_type") != DENIED_TYPE:
            BYPASSES.append(name)
    assert not [c for c in apps.CALLS if c[1] == "charge" and c[2] == 1000]
    assert json.loads(run_activity(apps.billing.registry, request, sec["billing"]).payload)["result"] == '"charged 9"'

    # a forged child start: mallory writes billing's audit child claiming orders as parent
    for caller in (None, "mallory"):
        attempts += 1
        iid = f"forged-{caller}"
        started = ev.ExecutionStarted(clock.naive_utc(utcnow()), "audit", "1",
                                      ev.ParentInfo("checkout", "ok", 0, "orders"))
        if caller:
            from orchestrator.guard import child_start_fields

            started = ev.ExecutionStarted(started.timestamp, "audit", "1", started.parent, caller=json.dumps(
                attest.attest(sec["mallory"].identity, attest.CHILD_START, *child_start_fields(iid, started))))
        sqlite_store.create_instance(NewInstance(iid, "billing", "audit", input="1", parent_instance_id="ok",
                                                 parent_app_id="orders", parent_task_id=0),
                                     inbox.message("start", started))
        bus.queue.append(("orchestrate", "billing", iid))
        bus.run()
        if failure_of(sqlite_store, iid).get("error_type") != DENIED_TYPE:
            BYPASSES.append(f"forged child start ({caller})")

    # a forged result is covered by test_signing.py::test_s3_cross_app_results_need_the_callees_attestation
    row.figure("bypass attempts", attempts)
    row.figure("bypasses", f"{len(BYPASSES)} {BYPASSES if BYPASSES else ''}".strip())
    assert BYPASSES == []


def test_management_calls_go_through_the_hook(sqlite_store: Store, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from ledgerflow import errors
    from ledgerflow.config import Settings
    from ledgerflow.management import WorkflowManager
    from security import context as sec_context
    from security.certs import init_certs

    init_certs(tmp_path / "certs", "orders")
    policy(tmp_path / "resources", ONLY_INVOICE)
    for key, value in {"LEDGERFLOW_SIGNING": "on", "LEDGERFLOW_CERTS_DIR": str(tmp_path / "certs"),
                       "LEDGERFLOW_RESOURCES_DIR": str(tmp_path / "resources"), "LEDGERFLOW_APP_ID": "orders"}.items():
        monkeypatch.setenv(key, value)
    sec_context.reset_cache()
    manager = WorkflowManager(Settings.from_env(database_url=str(sqlite_store.engine.url)), sqlite_store)
    manager._wake = lambda *a: None  # type: ignore[method-assign]
    iid = manager.schedule("invoice", input=1, app_id="billing", instance_id="m1")
    with pytest.raises(WorkflowAccessDeniedError):
        manager.schedule("audit", input=1, app_id="billing", instance_id="m2")
    for call in (lambda: manager.raise_event(iid, "x"), lambda: manager.terminate(iid),
                 lambda: manager.suspend(iid), lambda: manager.resume(iid), lambda: manager.state(iid)):
        with pytest.raises(WorkflowAccessDeniedError, match=DENIED_MESSAGE):
            call()
    assert manager.schedule("chain", input=1, instance_id="own") == "own"  # its own app: allowed
    with pytest.raises(errors.InstanceNotFoundError):
        manager.raise_event("nope", "x")
