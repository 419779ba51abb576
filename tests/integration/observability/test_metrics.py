"""`GET /metrics` of the HTTP API over the embedded runtime (everything in this process, as
`ledgerflow dev` runs it): each metric moves when its event happens."""

from __future__ import annotations

import dataclasses
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from brokers import wire
from ledgerflow.api import ApiSettings, create_app
from ledgerflow.config import Settings
from ledgerflow.management import WorkflowManager
from telemetry import tracing
from tests.fixtures.processes import wait_for
from tests.integration.observability import app
from tests.integration.observability.test_stack import _metric

warnings.filterwarnings("ignore", message=".*httpx.*starlette.testclient.*")

BASE = "/v1.0/workflows/dapr"


@pytest.fixture
def embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, WorkflowManager]]:
    from starlette.testclient import TestClient

    for key, value in {"LEDGERFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'lf.db'}",
                       "LEDGERFLOW_BROKER_URL": "memory://localhost/",
                       "LEDGERFLOW_APP_ID": f"met{uuid.uuid4().hex[:6]}"}.items():
        monkeypatch.setenv(key, value)
    for key in (*tracing.ENABLING_VARIABLES, "LEDGERFLOW_API_TOKEN", "DAPR_API_TOKEN", "PROMETHEUS_MULTIPROC_DIR"):
        monkeypatch.delenv(key, raising=False)
    tracing.reset()  # off: no OTEL_* variable
    app.wfr.start()
    manager = WorkflowManager(Settings.from_env())
    try:
        with TestClient(create_app(manager, ApiSettings()), raise_server_exceptions=False) as client:
            yield client, manager
    finally:
        manager.close()
        app.wfr.shutdown()


def _ended(client: Any, instance_id: str) -> str | None:
    status = client.get(f"{BASE}/{instance_id}").json().get("runtimeStatus")
    return status if status in ("COMPLETED", "FAILED") else None


def test_each_metric_moves_when_its_event_happens(embedded: tuple[Any, WorkflowManager]) -> None:
    client, manager = embedded
    before = client.get("/metrics").text

    ok, bad, stuck = (f"{kind}-{uuid.uuid4().hex[:6]}" for kind in ("ok", "bad", "stuck"))
    assert client.post(f"{BASE}/observed/start", params={"instanceID": ok}, json="you").status_code == 202
    assert client.post(f"{BASE}/{ok}/raiseEvent/go", json=1).status_code == 202
    assert client.post(f"{BASE}/failing/start", params={"instanceID": bad}, json="no").status_code == 202
    assert wait_for(lambda: _ended(client, ok), 30, 0.05, "the workflow completes") == "COMPLETED"
    assert wait_for(lambda: _ended(client, bad), 30, 0.05, "the workflow fails") == "FAILED"
    # a result for a finished run is dropped (a late duplicate)
    assert app.wfr.service is not None
    assert not app.wfr.service.deliver(ok, wire.ResultMessage("task:0:0", "TaskCompleted", "{}", 0))
    # an app no orchestrator serves here: its start message waits in the inbox
    assert client.post(f"{BASE}/observed/start", params={"instanceID": stuck, "appID": "elsewhere"}).status_code == 202
    wait_for(lambda: _metric(client.get("/metrics").text, "ledgerflow_inbox_backlog") >= 1, 10, 0.05,
             "the backlog gauge counts the waiting message")
    after = client.get("/metrics").text

    def moved(name: str, **labels: str) -> float:
        return _metric(after, name, **labels) - _metric(before, name, **labels)

    assert moved("ledgerflow_workflows_started_total", workflow="observed") == 1
    assert moved("ledgerflow_workflows_started_total", workflow="leaf") == 1
    assert moved("ledgerflow_workflows_finished_total", workflow="observed", status="COMPLETED") == 1
    assert moved("ledgerflow_workflows_finished_total", workflow="failing", status="FAILED") == 1
    assert moved("ledgerflow_activity_executions_total", activity="greet", outcome="completed") == 1
    assert moved("ledgerflow_activity_executions_total", activity="explode", outcome="failed") == 1
    assert moved("ledgerflow_activity_duration_seconds_count", activity="shout") == 2
    assert moved("ledgerflow_step_duration_seconds_count") >= 8
    assert moved("ledgerflow_timer_lateness_seconds_count") == 1
    assert moved("ledgerflow_redeliveries_total", reason="stale_result") == 1
    assert _metric(after, "ledgerflow_inbox_backlog") >= 1
    assert "# TYPE ledgerflow_outbox_unsent gauge" in after
    assert "process_cpu_seconds_total" in after
    # tracing off: nothing is stored for a trace
    assert manager.store.get_instance(ok).trace_context is None


def test_metrics_need_the_api_token_when_one_is_set(embedded: tuple[Any, WorkflowManager]) -> None:
    from starlette.testclient import TestClient

    _, manager = embedded
    with TestClient(create_app(manager, ApiSettings(token="s3cret"))) as guarded:
        assert guarded.get("/metrics").status_code == 401
        answer = guarded.get("/metrics", headers={"dapr-api-token": "s3cret"})
        assert answer.status_code == 200 and "ledgerflow_workflows_started_total" in answer.text
        assert guarded.get("/v1.0/healthz").status_code == 204


def test_a_run_the_service_ends_itself_counts_as_finished(embedded: tuple[Any, WorkflowManager]) -> None:
    client, _ = embedded
    assert app.wfr.service is not None
    service = app.wfr.service
    # the first activity result takes the history past it
    service.steps.rules = dataclasses.replace(service.rules, max_history_events=4)
    before = client.get("/metrics").text
    instance_id = f"full-{uuid.uuid4().hex[:6]}"
    assert client.post(f"{BASE}/failing/start", params={"instanceID": instance_id}, json="x").status_code == 202
    assert wait_for(lambda: _ended(client, instance_id), 30, 0.05, "the run ends") == "FAILED"
    assert client.get(f"{BASE}/{instance_id}").json()["properties"]["dapr.workflow.failure.error_type"] == \
        "HistoryLimitExceeded"
    after = client.get("/metrics").text
    labels = {"workflow": "failing", "status": "FAILED"}
    assert _metric(after, "ledgerflow_workflows_finished_total", **labels) - \
        _metric(before, "ledgerflow_workflows_finished_total", **labels) == 1
