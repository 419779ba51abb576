"""WorkflowAccessPolicy parsing and evaluation, and hot reload of the resources directory."""

from __future__ import annotations

import os
import time
from pathlib import Path

from security.policy import DENIED_MESSAGE, PolicyStore, evaluate, load_file, parse_document

POLICY = """
apiVersion: dapr.io/v1alpha1
kind: WorkflowAccessPolicy
metadata: {name: billing-access}
scopes: [billing]
spec:
  rules:
    - callers: [{appID: orders}, {appID: "shop-*"}]
      workflows:
        - name: "invoice-*"
          operations: [schedule, get]
        - name: gated
          operations: [schedule]
          requires: [{activity: verify_customer}, {activity: fraud_check, appID: risk}]
      activities:
        - name: charge
        - name: "refund*"
          requires: [{workflow: checkout}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: ignored}
"""


def policies(tmp_path: Path, text: str = POLICY):
    (tmp_path / "p.yaml").write_text(text)
    return load_file(tmp_path / "p.yaml")


def decide(ps, caller, kind, name, op="schedule", timeline=None, signing=True, callee="billing"):
    return evaluate(ps, callee_app=callee, caller_app=caller, kind=kind, name=name, operation=op,
                    timeline=timeline, signing=signing)


def test_no_policy_allows_and_other_kinds_are_ignored(tmp_path: Path) -> None:
    assert len(policies(tmp_path)) == 1
    assert decide([], "anyone", "workflow", "x")
    assert decide(policies(tmp_path), "anyone", "workflow", "x", callee="orders")  # not in scopes


def test_rules_match_caller_operation_and_name_with_globs(tmp_path: Path) -> None:
    ps = policies(tmp_path)
    assert decide(ps, "orders", "workflow", "invoice-eu")
    assert decide(ps, "shop-7", "workflow", "invoice-eu", op="get")
    assert not decide(ps, "orders", "workflow", "invoice-eu", op="terminate")
    assert not decide(ps, "orders", "workflow", "audit")
    assert not decide(ps, "mallory", "workflow", "invoice-eu")
    assert decide(ps, "orders", "activity", "charge")
    assert not decide(ps, "orders", "activity", "steal")


def test_self_calls_pass_and_no_identity_is_denied(tmp_path: Path) -> None:
    ps = policies(tmp_path)
    assert decide(ps, "billing", "workflow", "anything", op="purge")
    assert not decide(ps, None, "activity", "charge")


def test_requires_are_checked_in_order_and_denied_without_signing(tmp_path: Path) -> None:
    ps = policies(tmp_path)
    good = [("workflow", "checkout", "orders", True), ("activity", "verify_customer", "orders", True),
            ("activity", "fraud_check", "risk", True)]
    assert decide(ps, "orders", "workflow", "gated", timeline=good)
    assert not decide(ps, "orders", "workflow", "gated", timeline=good, signing=False)
    assert not decide(ps, "orders", "workflow", "gated", timeline=None)
    wrong_order = [good[0], good[2], good[1]]
    assert not decide(ps, "orders", "workflow", "gated", timeline=wrong_order)
    wrong_app = [good[0], good[1], ("activity", "fraud_check", "orders", True)]
    assert not decide(ps, "orders", "workflow", "gated", timeline=wrong_app)
    not_completed = [good[0], ("activity", "verify_customer", "orders", False), good[2]]
    assert not decide(ps, "orders", "workflow", "gated", timeline=not_completed)
    assert decide(ps, "orders", "activity", "refund-all", timeline=good[:1])


def test_invalid_files_fail_closed(tmp_path: Path) -> None:
    ps = policies(tmp_path, "apiVersion: dapr.io/v1alpha1\nkind: WorkflowAccessPolicy\nspec: {rules: 3}\n")
    assert ps[0].name.startswith("invalid:")
    assert not decide(ps, "orders", "workflow", "x", callee="anything")
    assert decide(ps, "anything", "workflow", "x", callee="anything")  # self-calls still pass
    bad = policies(tmp_path, "apiVersion: dapr.io/v1alpha1\nkind: WorkflowAccessPolicy\n"
                             "spec: {rules: [{callers: [{appID: a}], workflows: [{name: x, operations: [fly]}]}]}\n")
    assert bad[0].name.startswith("invalid:")
    assert parse_document({"kind": "Component"}, "x") is None
    assert DENIED_MESSAGE == "access denied by workflow access policy"


def test_hot_reload_on_add_change_and_remove(tmp_path: Path) -> None:
    store = PolicyStore(tmp_path, rescan_seconds=0.2)
    assert not store.governs("billing")
    (tmp_path / "p.yaml").write_text(POLICY)
    deadline = time.monotonic() + 5
    while not store.governs("billing"):
        assert time.monotonic() < deadline, "a new policy file was not picked up within 5 s"
        time.sleep(0.05)
    assert not store.decide(callee_app="billing", caller_app="orders", kind="workflow", name="audit")
    (tmp_path / "p.yaml").write_text(POLICY.replace('"invoice-*"', '"*"'))
    os.utime(tmp_path / "p.yaml", ns=(time.time_ns(), time.time_ns() + 1_000_000))
    deadline = time.monotonic() + 5
    while not store.decide(callee_app="billing", caller_app="orders", kind="workflow", name="audit"):
        assert time.monotonic() < deadline, "a changed policy file was not picked up within 5 s"
        time.sleep(0.05)
    (tmp_path / "p.yaml").unlink()
    deadline = time.monotonic() + 5
    while store.governs("billing"):
        assert time.monotonic() < deadline, "a removed policy file was not dropped within 5 s"
        time.sleep(0.05)
    assert PolicyStore(tmp_path / "missing").policies == ()
