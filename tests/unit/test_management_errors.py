"""Bad input gets a clear error and writes nothing (embedded default, no worker needed)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import ledgerflow as wf
import ledgerflow.aio
from ledgerflow import errors
from orchestrator.engine.serialization import SerializationError


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> wf.DaprWorkflowClient:
    monkeypatch.setenv("LEDGERFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'lf.db'}")
    monkeypatch.setenv("LEDGERFLOW_BROKER_URL", "memory://localhost/")
    c = wf.DaprWorkflowClient()
    yield c
    c.close()


@pytest.mark.parametrize(
    ("instance_id", "error", "code"),
    [
        ("", errors.InstanceIdMissingError, "ERR_INSTANCE_ID_PROVIDED_MISSING"),
        ("x" * 65, errors.InstanceIdTooLongError, "ERR_INSTANCE_ID_TOO_LONG"),
        ("../x", errors.InvalidInstanceIdError, "ERR_INSTANCE_ID_INVALID"),
        ("a\x00b", errors.InvalidInstanceIdError, "ERR_INSTANCE_ID_INVALID"),
        ("caf\u00e9", errors.InvalidInstanceIdError, "ERR_INSTANCE_ID_INVALID"),
        ("rtl\u202eid", errors.InvalidInstanceIdError, "ERR_INSTANCE_ID_INVALID"),
    ],
)
def test_invalid_instance_ids_are_refused_and_nothing_is_written(client, instance_id, error, code) -> None:
    with pytest.raises(error) as info:
        client.schedule_new_workflow("wf", instance_id=instance_id)
    assert info.value.code == code
    assert client._manager.store.list_instances() == []


def test_a_payload_that_is_not_json_serializable_is_refused_before_anything_is_written(client) -> None:
    with pytest.raises(SerializationError, match=r"Input of workflow 'wf' is not JSON-serializable: set value"):
        client.schedule_new_workflow("wf", input={1, 2}, instance_id="ok-id")
    assert client.get_workflow_state("ok-id") is None


def test_unknown_instances(client) -> None:
    assert client.get_workflow_state("nope") is None
    with pytest.raises(errors.InstanceNotFoundError, match="no such instance exists: workflow instance 'nope'"):
        client.raise_workflow_event("nope", "ev", data=1)
    with pytest.raises(errors.InstanceNotFoundError):
        client.purge_workflow("nope")
    with pytest.raises(errors.InstanceNotFoundError):
        client.terminate_workflow("nope")
    with pytest.raises(errors.InstanceNotFoundError):
        client.pause_workflow("nope")


def test_purging_a_pending_instance_is_refused_and_loses_nothing(client) -> None:
    iid = client.schedule_new_workflow("wf", input=1, instance_id="keep-me")
    with pytest.raises(errors.InstanceActiveError, match="keep-me"):
        client.purge_workflow(iid)
    assert client.get_workflow_state(iid).runtime_status == wf.WorkflowStatus.PENDING


def test_wait_times_out_with_dapr_message(client) -> None:
    iid = client.schedule_new_workflow("wf")
    with pytest.raises(TimeoutError, match="^Timed-out waiting for the orchestration to start$"):
        client.wait_for_workflow_start(iid, timeout_in_seconds=0.3)


def test_async_client_round_trip(client) -> None:
    async def go() -> wf.WorkflowState:
        aclient = ledgerflow.aio.DaprWorkflowClient()
        iid = await aclient.schedule_new_workflow("wf", input={"a": 1}, instance_id="async-1")
        state = await aclient.get_workflow_state(iid)
        await aclient.close()
        return state

    state = asyncio.run(go())
    assert state.instance_id == "async-1" and state.serialized_input == '{"a": 1}'
    assert state.runtime_status == wf.WorkflowStatus.PENDING
