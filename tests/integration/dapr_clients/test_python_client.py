"""Dapr's Python workflow client, unmodified (`import dapr.ext.workflow`, sync and aio), against
`ledgerflow dev`'s gRPC API: every call, the errors Dapr's sidecar gives, the token; then the
calls its client does not wrap (rerun, history, instance IDs, purge by filter) through the
protocol's generated stub, and rerun through the HTTP API, the CLI and Ledgerflow's client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import grpc
import httpx
import pytest
from click.testing import CliRunner
from dapr.conf import settings as dapr_settings
from dapr.ext.workflow import DaprWorkflowClient, WorkflowStatus
from dapr.ext.workflow import aio as wf_aio
from dapr.ext.workflow._durabletask.internal import orchestration_pb2 as orchestration_pb
from dapr.ext.workflow._durabletask.internal import orchestrator_service_pb2 as pb
from dapr.ext.workflow._durabletask.internal import orchestrator_service_pb2_grpc as pb_grpc
from google.protobuf import wrappers_pb2

from ledgerflow.cli import main

from tests.fixtures.processes import start_ledgerflow
from tests.fixtures.redis import free_port
from tests.integration.dapr_clients.conftest import Dev

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")
WAIT = 30


@pytest.fixture
def client(dev: Dev, monkeypatch: pytest.MonkeyPatch) -> Iterator[DaprWorkflowClient]:
    """The client as a Dapr user configures it: DAPR_API_TOKEN (read into dapr.conf.settings)."""
    monkeypatch.setattr(dapr_settings, "DAPR_API_TOKEN", dev.token)
    c = DaprWorkflowClient(host="127.0.0.1", port=str(dev.grpc_port))
    yield c
    c.close()


@pytest.fixture
def stub(dev: Dev) -> Iterator[tuple[pb_grpc.TaskHubSidecarServiceStub, tuple[tuple[str, str], ...]]]:
    channel = grpc.insecure_channel(f"127.0.0.1:{dev.grpc_port}")
    yield pb_grpc.TaskHubSidecarServiceStub(channel), (("dapr-api-token", dev.token),)
    channel.close()


def _code(call, *args, **kwargs) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call(*args, **kwargs)
    return info.value.code(), info.value.details()


def test_bad_messages_are_invalid_argument_never_internal(stub, dev: Dev) -> None:
    service, auth = stub
    raw = grpc.insecure_channel(f"127.0.0.1:{dev.grpc_port}")
    try:
        get = raw.unary_unary("/TaskHubSidecarService/GetInstance", request_serializer=bytes, response_deserializer=bytes)
        for payload in (b"\x0a\x02\xff\xfe", b"\xff\xff\xff"):  # a non-UTF-8 instance ID; cut bytes
            assert _code(get, payload, metadata=auth)[0] == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        raw.close()
    for text in ("{not json", "NaN", '"\\u0000"'):
        code, details = _code(service.StartInstance, pb.CreateInstanceRequest(
            name="hello", instanceId="py-bad-input", input=wrappers_pb2.StringValue(value=text)), metadata=auth)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "input" in details, (text, details)
    big = wrappers_pb2.StringValue(value='"' + "x" * (4 * 1024 * 1024) + '"')
    assert _code(service.StartInstance, pb.CreateInstanceRequest(name="hello", instanceId="py-big", input=big),
                 metadata=auth)[0] == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert _code(lambda: list(service.GetWorkItems(pb.GetWorkItemsRequest(), metadata=auth)))[0] == \
        grpc.StatusCode.UNIMPLEMENTED


def test_every_call_of_the_sync_client(client: DaprWorkflowClient) -> None:
    assert client.schedule_new_workflow("hello", input="Ada", instance_id="py-hello") == "py-hello"
    assert client.wait_for_workflow_start("py-hello", timeout_in_seconds=WAIT).runtime_status != WorkflowStatus.PENDING
    done = client.wait_for_workflow_completion("py-hello", timeout_in_seconds=WAIT)
    assert (done.runtime_status, done.serialized_output, done.serialized_custom_status) == (
        WorkflowStatus.COMPLETED, '"Hello, Ada!"', '"greeting"')
    assert (done.serialized_input, done.name, done.instance_id) == ('"Ada"', "hello", "py-hello")
    bare = client.get_workflow_state("py-hello", fetch_payloads=False)
    assert (bare.runtime_status, bare.serialized_input, bare.serialized_output) == (WorkflowStatus.COMPLETED, None, None)
    assert client.get_workflow_state("py-unknown") is None

    generated = client.schedule_new_workflow("approval")
    assert len(generated) == 32  # the client's own uuid4().hex
    client.wait_for_workflow_start(generated, timeout_in_seconds=WAIT)
    client.pause_workflow(generated)
    assert client.get_workflow_state(generated).runtime_status == WorkflowStatus.SUSPENDED
    client.resume_workflow(generated)
    assert client.get_workflow_state(generated).runtime_status == WorkflowStatus.RUNNING
    client.raise_workflow_event(generated, "approve", data={"by": "py"})
    approved = client.wait_for_workflow_completion(generated, timeout_in_seconds=WAIT)
    assert json.loads(approved.serialized_output) == {"approved": {"by": "py"}}

    client.schedule_new_workflow("sleeper", instance_id="py-sleeper")
    client.wait_for_workflow_start("py-sleeper", timeout_in_seconds=WAIT)
    with pytest.raises(TimeoutError):
        client.wait_for_workflow_completion("py-sleeper", timeout_in_seconds=1)
    client.terminate_workflow("py-sleeper", output="stopped")  # returns once terminated, as Dapr's does
    terminated = client.get_workflow_state("py-sleeper")
    assert (terminated.runtime_status, terminated.serialized_output) == (WorkflowStatus.TERMINATED, '"stopped"')
    client.purge_workflow("py-sleeper")
    assert client.get_workflow_state("py-sleeper") is None

    client.schedule_new_workflow("fails", instance_id="py-fails")
    failed = client.wait_for_workflow_completion("py-fails", timeout_in_seconds=WAIT)
    assert failed.runtime_status == WorkflowStatus.FAILED
    assert (failed.failure_details.error_type, "no stock" in failed.failure_details.message) == ("ValueError", True)

    later = datetime.now(timezone.utc) + timedelta(hours=1)
    client.schedule_new_workflow("hello", input="later", instance_id="py-later", start_at=later)
    assert client.get_workflow_state("py-later").runtime_status == WorkflowStatus.PENDING
    with pytest.raises(TimeoutError):
        client.wait_for_workflow_start("py-later", timeout_in_seconds=1)


def test_errors_as_dapr_gives_them(client: DaprWorkflowClient, dev: Dev, monkeypatch: pytest.MonkeyPatch) -> None:
    client.schedule_new_workflow("approval", instance_id="py-active")
    code, details = _code(client.schedule_new_workflow, "approval", instance_id="py-active")
    assert code == grpc.StatusCode.ALREADY_EXISTS and "py-active" in details
    code, details = _code(client.purge_workflow, "py-active")
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    for call in (lambda: client.raise_workflow_event("py-nobody", "approve"),
                 lambda: client.terminate_workflow("py-nobody"), lambda: client.pause_workflow("py-nobody"),
                 lambda: client.resume_workflow("py-nobody"), lambda: client.purge_workflow("py-nobody")):
        code, details = _code(call)
        assert code == grpc.StatusCode.NOT_FOUND and "no such instance exists" in details
    assert _code(client.schedule_new_workflow, "hello", instance_id="bad id!")[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert _code(client.schedule_new_workflow, "hello", instance_id="x" * 65)[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert _code(client.get_workflow_state, "bad/id")[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert _code(client.raise_workflow_event, "py-active", "")[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert _code(client.schedule_new_workflow, "")[0] == grpc.StatusCode.INVALID_ARGUMENT
    client.terminate_workflow("py-active")

    for token in ("wrong", None):
        monkeypatch.setattr(dapr_settings, "DAPR_API_TOKEN", token)
        other = DaprWorkflowClient(host="127.0.0.1", port=str(dev.grpc_port))
        try:
            assert _code(other.get_workflow_state, "py-hello")[0] == grpc.StatusCode.UNAUTHENTICATED
        finally:
            other.close()


def test_the_aio_client(dev: Dev, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dapr_settings, "DAPR_API_TOKEN", dev.token)

    async def run() -> None:
        client = wf_aio.DaprWorkflowClient(host="127.0.0.1", port=str(dev.grpc_port))  # (it has no close())
        await client.schedule_new_workflow("approval", instance_id="aio-approval")
        await client.wait_for_workflow_start("aio-approval", timeout_in_seconds=WAIT)
        await client.pause_workflow("aio-approval")
        assert (await client.get_workflow_state("aio-approval")).runtime_status == WorkflowStatus.SUSPENDED
        await client.resume_workflow("aio-approval")
        await client.raise_workflow_event("aio-approval", "approve", data="yes")
        done = await client.wait_for_workflow_completion("aio-approval", timeout_in_seconds=WAIT)
        assert json.loads(done.serialized_output) == {"approved": "yes"}
        await client.schedule_new_workflow("sleeper", instance_id="aio-sleeper")
        await client.wait_for_workflow_start("aio-sleeper", timeout_in_seconds=WAIT)
        await client.terminate_workflow("aio-sleeper")
        assert (await client.get_workflow_state("aio-sleeper")).runtime_status == WorkflowStatus.TERMINATED
        await client.purge_workflow("aio-sleeper")
        assert await client.get_workflow_state("aio-sleeper") is None
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await client.raise_workflow_event("aio-nobody", "approve")
        assert info.value.code() == grpc.StatusCode.NOT_FOUND

    asyncio.run(run())


def test_rerun_history_instance_ids_and_purge_by_filter(client: DaprWorkflowClient, stub) -> None:
    service, auth = stub
    client.schedule_new_workflow("pipeline", input="book", instance_id="py-pipeline")
    failed = client.wait_for_workflow_completion("py-pipeline", timeout_in_seconds=WAIT)
    assert failed.runtime_status == WorkflowStatus.FAILED and "carrier is down" in failed.failure_details.message

    events = service.GetInstanceHistory(pb.GetInstanceHistoryRequest(instanceId="py-pipeline"), metadata=auth).events
    kinds = [(e.eventId, e.WhichOneof("eventType")) for e in events]
    assert (0, "taskScheduled") in kinds and (1, "taskScheduled") in kinds
    assert kinds[-1] == (-1, "executionCompleted")
    assert events[-1].executionCompleted.workflowStatus == orchestration_pb.ORCHESTRATION_STATUS_FAILED

    # From event 1 (ship): prepare's result is kept (not run again), ship runs again and succeeds.
    rerun = service.RerunWorkflowFromEvent(pb.RerunWorkflowFromEventRequest(
        sourceInstanceID="py-pipeline", eventID=1, newInstanceID="py-pipeline-2"), metadata=auth)
    assert rerun.newInstanceID == "py-pipeline-2"
    done = client.wait_for_workflow_completion("py-pipeline-2", timeout_in_seconds=WAIT)
    assert (done.runtime_status, done.serialized_output) == (WorkflowStatus.COMPLETED, '"shipped book#1"')
    # From event 0 with a new input: a new ID is made up, everything after the start runs again.
    again = service.RerunWorkflowFromEvent(pb.RerunWorkflowFromEventRequest(
        sourceInstanceID="py-pipeline", eventID=0, input=wrappers_pb2.StringValue(value='"pen"'),
        overwriteInput=True), metadata=auth).newInstanceID
    done = client.wait_for_workflow_completion(again, timeout_in_seconds=WAIT)
    assert (done.serialized_input, done.serialized_output) == ('"pen"', '"shipped pen#2"')

    def rerun_error(**fields) -> grpc.StatusCode:
        return _code(service.RerunWorkflowFromEvent, pb.RerunWorkflowFromEventRequest(**fields), metadata=auth)[0]

    assert rerun_error(sourceInstanceID="py-pipeline", eventID=9) == grpc.StatusCode.INVALID_ARGUMENT
    assert rerun_error(sourceInstanceID="py-nobody", eventID=0) == grpc.StatusCode.NOT_FOUND
    assert rerun_error(sourceInstanceID="py-pipeline", eventID=0, newInstanceID="bad id") == \
        grpc.StatusCode.INVALID_ARGUMENT
    client.schedule_new_workflow("approval", instance_id="py-waiting")
    client.wait_for_workflow_start("py-waiting", timeout_in_seconds=WAIT)
    assert rerun_error(sourceInstanceID="py-waiting", eventID=0) == grpc.StatusCode.FAILED_PRECONDITION

    ids, token = [], ""
    while True:
        page = service.ListInstanceIDs(pb.ListInstanceIDsRequest(pageSize=2, continuationToken=token), metadata=auth)
        ids += page.instanceIds
        token = page.continuationToken
        if not token:
            break
    assert {"py-pipeline", "py-pipeline-2", again, "py-waiting"} <= set(ids) and len(ids) == len(set(ids))
    assert _code(service.ListInstanceIDs, pb.ListInstanceIDsRequest(continuationToken="x"),
                 metadata=auth)[0] == grpc.StatusCode.INVALID_ARGUMENT

    purged = service.PurgeInstances(pb.PurgeInstancesRequest(purgeInstanceFilter=pb.PurgeInstanceFilter(
        runtimeStatus=[orchestration_pb.ORCHESTRATION_STATUS_FAILED])), metadata=auth)
    assert purged.deletedInstanceCount >= 1
    assert client.get_workflow_state("py-pipeline") is None
    assert client.get_workflow_state("py-pipeline-2").runtime_status == WorkflowStatus.COMPLETED
    assert client.get_workflow_state("py-waiting").runtime_status == WorkflowStatus.RUNNING
    client.terminate_workflow("py-waiting")


def test_rerun_over_http_the_cli_and_ledgerflows_client(client: DaprWorkflowClient, dev: Dev,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    client.schedule_new_workflow("pipeline", input="cup", instance_id="re-source")
    assert client.wait_for_workflow_completion("re-source", timeout_in_seconds=WAIT).runtime_status in (
        WorkflowStatus.FAILED, WorkflowStatus.COMPLETED)  # ship fails on its first call in the process only
    auth = {"dapr-api-token": dev.token}

    r = httpx.post(f"{dev.base}/v1.0/workflows/dapr/re-source/rerun?eventID=0&newInstanceID=re-http",
                   content=b'"mug"', headers=auth)
    assert (r.status_code, r.json()) == (202, {"instanceID": "re-http"})
    done = client.wait_for_workflow_completion("re-http", timeout_in_seconds=WAIT)
    assert (done.runtime_status, done.serialized_input) == (WorkflowStatus.COMPLETED, '"mug"')
    r = httpx.post(f"{dev.base}/v1.0/workflows/dapr/re-source/rerun?eventID=7", headers=auth)
    assert (r.status_code, r.json()["errorCode"]) == (404, "ERR_RERUN_EVENT")
    r = httpx.post(f"{dev.base}/v1.0/workflows/dapr/re-source/rerun", headers=auth)
    assert (r.status_code, r.json()["errorCode"]) == (400, "ERR_MALFORMED_REQUEST")
    r = httpx.post(f"{dev.base}/v1.0/workflows/dapr/re-nobody/rerun?eventID=0", headers=auth)
    assert r.status_code == 404

    cli = CliRunner().invoke(main, ["wf", "rerun", "re-source", "--event-id", "1", "--new-instance-id", "re-cli",
                                    "--input", '"jug"'], env=dev.env)
    assert cli.exit_code == 0, cli.output
    assert cli.stdout.strip() == "Workflow instance 're-source' rerun from event 1 as: re-cli"
    done = client.wait_for_workflow_completion("re-cli", timeout_in_seconds=WAIT)
    assert (done.runtime_status, done.serialized_input) == (WorkflowStatus.COMPLETED, '"jug"')

    for key, value in dev.env.items():
        monkeypatch.setenv(key, value)
    import ledgerflow

    with ledgerflow.DaprWorkflowClient() as ours:
        new_id = ours.rerun_workflow_from_event("re-source", 0, new_instance_id="re-sdk")
        assert new_id == "re-sdk"
        assert ours.wait_for_workflow_completion("re-sdk", timeout_in_seconds=WAIT).serialized_input == '"cup"'


def test_sidecar_probes(dev: Dev) -> None:
    metadata = httpx.get(f"{dev.base}/v1.0/metadata", headers={"dapr-api-token": dev.token})
    assert metadata.status_code == 200
    body = metadata.json()
    assert body["id"] == dev.app_id and body["runtimeVersion"]
    assert (body["actors"], body["components"], body["subscriptions"], body["enabledFeatures"]) == ([], [], [], [])
    assert httpx.get(f"{dev.base}/v1.0/metadata").status_code == 401
    assert httpx.get(f"{dev.base}/v1.0/healthz/outbound").status_code == 204


def test_ledgerflow_api_serves_grpc_too(dev: Dev, procs, monkeypatch: pytest.MonkeyPatch) -> None:
    """`ledgerflow api` over the same database as the dev server: the same calls answer."""
    port = free_port()
    start_ledgerflow(procs, "api", ["api"], dev.env, grpc_port=port)
    monkeypatch.setattr(dapr_settings, "DAPR_API_TOKEN", dev.token)
    client = DaprWorkflowClient(host="127.0.0.1", port=str(port))
    try:
        client.schedule_new_workflow("hello", input="api", instance_id="via-api")
        done = client.wait_for_workflow_completion("via-api", timeout_in_seconds=WAIT)  # run by the dev server
        assert (done.runtime_status, done.serialized_output) == (WorkflowStatus.COMPLETED, '"Hello, api!"')
    finally:
        client.close()
