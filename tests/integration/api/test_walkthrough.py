"""The seed's asynchronous request-reply walk-through, with the calls its curl commands make,
against `ledgerflow dev` (the API mounted in the embedded runtime's process):

    curl -X POST http://localhost:3500/v1.0/workflows/dapr/OrderProcessingWorkflow/start?instanceID=12345678 \\
         -d '{"Name":"Paperclips","Quantity":1,"TotalCost":9.95}'
    curl http://localhost:3500/v1.0/workflows/dapr/12345678      # until COMPLETED, then read the output
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

ORDER = b'{"Name":"Paperclips","Quantity":1,"TotalCost":9.95}'


def _poll_until(base: str, instance_id: str, statuses: set[str], timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = httpx.get(f"{base}/v1.0/workflows/dapr/{instance_id}").json()
        if body["runtimeStatus"] in statuses or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


def test_async_request_reply_against_ledgerflow_dev(launch, tmp_path: Path) -> None:
    env = {"LEDGERFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'dev.db'}", "LEDGERFLOW_BROKER_URL": "memory://localhost/",
           "LEDGERFLOW_APP_ID": "walkthrough"}
    base = launch("dev", ["dev", "tests/integration/api/orders.py"], env)

    r = httpx.post(f"{base}/v1.0/workflows/dapr/OrderProcessingWorkflow/start?instanceID=12345678", content=ORDER)
    assert (r.status_code, r.json()) == (202, {"instanceID": "12345678"})

    body = _poll_until(base, "12345678", {"COMPLETED", "FAILED", "TERMINATED"})
    assert body["runtimeStatus"] == "COMPLETED", body
    assert body["workflowName"] == "OrderProcessingWorkflow"
    assert json.loads(body["properties"]["dapr.workflow.input"]) == json.loads(ORDER)
    assert json.loads(body["properties"]["dapr.workflow.output"]) == {"Processed": True}
    assert body["properties"]["dapr.workflow.custom_status"] == '"paying"'

    # The rest of the management surface, through the same server.
    r = httpx.post(f"{base}/v1.0-beta1/workflows/dapr/WaitForApproval/start?instanceID=approval-1")
    assert r.status_code == 202
    assert _poll_until(base, "approval-1", {"RUNNING"})["runtimeStatus"] == "RUNNING"
    assert httpx.post(f"{base}/v1.0-beta1/workflows/dapr/approval-1/pause").status_code == 202
    assert httpx.get(f"{base}/v1.0/workflows/dapr/approval-1").json()["runtimeStatus"] == "SUSPENDED"
    assert httpx.post(f"{base}/v1.0-beta1/workflows/dapr/approval-1/resume").status_code == 202
    assert httpx.post(f"{base}/v1.0-alpha1/workflows/dapr/approval-1/raiseEvent/approval",
                      content=b'{"by": "ops"}').status_code == 202
    done = _poll_until(base, "approval-1", {"COMPLETED"})
    assert json.loads(done["properties"]["dapr.workflow.output"]) == {"approved": {"by": "ops"}}
    types = [e["type"] for e in httpx.get(f"{base}/v1.0/workflows/dapr/approval-1/history").json()["events"]]
    assert {"ExecutionSuspended", "ExecutionResumed", "EventRaised", "ExecutionCompleted"} <= set(types)

    httpx.post(f"{base}/v1.0/workflows/dapr/Fails/start?instanceID=fails-1")
    failed = _poll_until(base, "fails-1", {"FAILED"})
    assert failed["properties"]["dapr.workflow.failure.error_type"] == "ValueError"
    assert "dapr.workflow.output" not in failed["properties"]

    listed = httpx.get(f"{base}/v1.0/workflows/dapr?status=COMPLETED").json()["workflows"]
    assert {w["instanceID"] for w in listed} == {"12345678", "approval-1"}
    assert httpx.post(f"{base}/v1.0/workflows/dapr/12345678/purge").status_code == 202
    assert httpx.get(f"{base}/v1.0/workflows/dapr/12345678").status_code == 404
