"""One instance-ID rule for the Python client, the CLI and the HTTP API: an ID you choose is
1-64 ASCII letters, digits, '_' and '-'; a child's generated ID (`parent:0001`) is reachable
everywhere but cannot be chosen for a new workflow."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import ledgerflow as wf
from ledgerflow.api import ApiSettings, create_app
from ledgerflow.cli import main
from orchestrator import inbox
from orchestrator.engine import clock
from orchestrator.engine import events as ev
from persistence.records import NewInstance, utcnow

warnings.filterwarnings("ignore", message=".*httpx.*starlette.testclient.*")

INVALID = ("workflow instance ID 'my:id' is invalid: use 1-64 ASCII letters, digits, '_' and '-'")


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[wf.DaprWorkflowClient]:
    monkeypatch.setenv("LEDGERFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'lf.db'}")
    monkeypatch.setenv("LEDGERFLOW_BROKER_URL", "memory://localhost/")
    monkeypatch.setenv("LEDGERFLOW_APP_ID", "ids")
    for key in ("LEDGERFLOW_API_TOKEN", "DAPR_API_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    c = wf.DaprWorkflowClient()
    c._manager.store.migrate()  # the CLI acts on an existing database only
    yield c
    c.close()


@pytest.fixture
def http(client: wf.DaprWorkflowClient) -> Iterator[Any]:
    from starlette.testclient import TestClient

    with TestClient(create_app(client._manager, ApiSettings())) as api:
        yield api


def cli(*args: str) -> Any:
    return CliRunner().invoke(main, ["wf", *args], catch_exceptions=False)


def test_a_chosen_id_with_a_colon_is_refused_by_all_three(client, http) -> None:
    with pytest.raises(wf.errors.InvalidInstanceIdError, match=f"^{INVALID}$"):
        client.schedule_new_workflow("hello", instance_id="my:id")
    result = cli("run", "hello", "-i", "my:id")
    assert (result.exit_code, result.stderr) == (1, f"Error: {INVALID}\n")
    response = http.post("/v1.0/workflows/dapr/hello/start?instanceID=my:id")
    assert (response.status_code, response.json()) == (
        400, {"errorCode": "ERR_INSTANCE_ID_INVALID", "message": INVALID})
    assert client._manager.list_instances() == []


def test_a_child_id_is_reachable_by_all_three(client, http) -> None:
    child = "order-1:0001"
    started = ev.ExecutionStarted(clock.naive_utc(utcnow()), "child", None)
    client._manager.store.create_instance(NewInstance(instance_id=child, app_id="ids", name="child", input=None),
                                          inbox.message("start", started, None), [])
    assert client.get_workflow_state(child).instance_id == child
    result = cli("get", child)
    assert result.exit_code == 0 and f'"instanceID": "{child}"' in result.stdout
    response = http.get(f"/v1.0/workflows/dapr/{child}")
    assert (response.status_code, response.json()["instanceID"]) == (200, child)
