"""Multi-app workflows: three apps as three process groups over Redis and PostgreSQL.

app1's workflow calls a child workflow in app2, which calls an activity in app3; normally,
with the activity raising, with the child raising, and with app3 started 30 s late."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import ledgerflow as wf
from tests.fixtures.processes import wait_for

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
S = wf.WorkflowStatus


class Apps:
    def __init__(self, procs: Any, db_url: str, broker_url: str) -> None:
        self.procs, self.db_url, self.broker_url = procs, db_url, broker_url
        self.started: dict[str, list[Any]] = {}

    def env(self, app_id: str) -> dict[str, str]:
        return {"LEDGERFLOW_DATABASE_URL": self.db_url, "LEDGERFLOW_BROKER_URL": self.broker_url,
                "LEDGERFLOW_APP_ID": app_id, "PYTHONPATH": str(REPO), "LEDGERFLOW_ACTIVITY_LEASE": "120"}

    def start(self, app_id: str, orchestrator: bool = True) -> None:
        module = f"tests.integration.apps.multi.{app_id}"
        cli = [sys.executable, "-m", "ledgerflow.cli"]
        group = [self.procs.start(f"{app_id}-worker", [*cli, "worker", module, "--concurrency", "1",
                                                       "--worker-pool", "solo"], env=self.env(app_id), cwd=str(REPO))]
        if orchestrator:
            group.append(self.procs.start(f"{app_id}-orchestrator", [*cli, "orchestrator", module],
                                          env=self.env(app_id), cwd=str(REPO)))
            group.append(self.procs.start(f"{app_id}-beat", [*cli, "beat", "--app-id", app_id, "--interval", "0.5"],
                                          env=self.env(app_id), cwd=str(REPO)))
        self.started[app_id] = group

    def log(self, app_id: str) -> str:
        return "".join(p.log_text() for p in self.started.get(app_id, []))


@pytest.fixture
def apps(procs: Any, postgres_db_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Apps:
    monkeypatch.setenv("LEDGERFLOW_DATABASE_URL", postgres_db_url)
    monkeypatch.setenv("LEDGERFLOW_BROKER_URL", redis_url)
    monkeypatch.setenv("LEDGERFLOW_APP_ID", "app1")
    return Apps(procs, postgres_db_url, redis_url)


def _finish(client: wf.DaprWorkflowClient, value: str, timeout: float = 60) -> wf.WorkflowState:
    iid = client.schedule_new_workflow("root", input=value)
    state = client.wait_for_workflow_completion(iid, timeout_in_seconds=timeout)
    assert state is not None
    return state


def test_three_apps_normal_activity_failure_and_child_failure(apps: Apps) -> None:
    for app_id in ("app1", "app2", "app3"):
        apps.start(app_id)
    client = wf.DaprWorkflowClient()

    ok = _finish(client, "hello")
    assert ok.runtime_status == S.COMPLETED
    assert json.loads(ok.serialized_output) == "root(mid(leaf(hello)))"
    wait_for(lambda: "app1 root done mid(leaf(hello))" in apps.log("app1"), 10, message="app1 line missing")
    assert "app2 mid start hello" in apps.log("app2") and "app2 mid done leaf(hello)" in apps.log("app2")
    assert "app3 leaf ran hello" in apps.log("app3")
    child = client.get_workflow_state(f"{ok.instance_id}:0000")
    assert child.runtime_status == S.COMPLETED and child.name == "mid"

    failed_activity = _finish(client, "activity-fails")
    assert failed_activity.runtime_status == S.COMPLETED
    assert json.loads(failed_activity.serialized_output) == (
        f"root caught: {failed_activity.instance_id}:0000: Activity task #0 failed: leaf failed"
    )
    assert "app3 leaf ran activity-fails" in apps.log("app3")

    failed_child = _finish(client, "child-fails")
    assert json.loads(failed_child.serialized_output) == "root caught: mid refuses"
    wait_for(lambda: "app1 root caught TaskFailedError" in apps.log("app1"), 10, message="app1 catch line missing")
    client.close()


def test_target_app_started_30_s_late_caller_waits_then_finishes(apps: Apps) -> None:
    apps.start("app1")
    apps.start("app2")
    client = wf.DaprWorkflowClient()
    iid = client.schedule_new_workflow("root", input="late")
    wait_for(lambda: "app2 mid start late" in apps.log("app2"), 30, message="app2 never started the child")
    time.sleep(30)
    assert client.get_workflow_state(iid).runtime_status == S.RUNNING
    assert client.get_workflow_state(f"{iid}:0000").runtime_status == S.RUNNING
    for proc in apps.started["app1"]:  # the caller's own processes restart meanwhile
        proc.kill9()
    apps.start("app1")
    apps.start("app3")
    state = client.wait_for_workflow_completion(iid, timeout_in_seconds=60)
    assert state.runtime_status == S.COMPLETED
    assert json.loads(state.serialized_output) == "root(mid(leaf(late)))"
    assert apps.log("app3").count("app3 leaf ran late") >= 1
    client.close()
