"""The HTTP API and the CLI against PostgreSQL + Redis, with the orchestrator, worker and
beat as separate processes, and a waiter in this process woken through Redis pub/sub."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from datetime import timezone

import httpx
import pytest

from tests.integration.stacks import REPO, real_stack  # noqa: F401  (a fixture)

pytestmark = pytest.mark.integration


def test_api_cli_and_waiting_on_the_real_stack(real_stack, launch) -> None:
    stack = real_stack
    app = stack.env["LEDGERFLOW_APP_ID"]
    base = launch("api", ["api"], stack.env)
    client = stack.client

    # Start over HTTP; the client in this process waits, woken by the orchestrator's notification.
    r = httpx.post(f"{base}/v1.0/workflows/dapr/chaining/start?instanceID=chain-1", content=b'"x"')
    assert r.status_code == 202
    state = client.wait_for_workflow_completion("chain-1", timeout_in_seconds=30)
    assert state.runtime_status.name == "COMPLETED" and state.serialized_output == '"x+++"'
    body = httpx.get(f"{base}/v1.0/workflows/dapr/chain-1").json()
    assert body["properties"]["dapr.workflow.output"] == '"x+++"'

    # A waiter blocked on an event-driven workflow wakes within moments of the final commit.
    assert httpx.post(f"{base}/v1.0/workflows/dapr/approval/start?instanceID=appr-1", content=b"30").status_code == 202
    client.wait_for_workflow_start("appr-1", timeout_in_seconds=30)
    woke: dict[str, float] = {}

    def wait() -> None:
        woke["state"] = client.wait_for_workflow_completion("appr-1", timeout_in_seconds=30)
        woke["at"] = time.time()

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.3)
    assert httpx.post(f"{base}/v1.0/workflows/dapr/appr-1/pause").status_code == 202
    assert httpx.get(f"{base}/v1.0/workflows/dapr/appr-1").json()["runtimeStatus"] == "SUSPENDED"
    assert httpx.post(f"{base}/v1.0/workflows/dapr/appr-1/resume").status_code == 202
    r = httpx.post(f"{base}/v1.0/workflows/dapr/appr-1/raiseEvent/approval", content=b'{"by": "ops"}')
    assert r.status_code == 202
    waiter.join(30)
    final = woke["state"]
    assert final.serialized_output == '"approved by ops"'
    lag = woke["at"] - final.last_updated_at.replace(tzinfo=timezone.utc).timestamp()
    assert lag < 0.5, f"woke {lag * 1000:.0f} ms after the commit"  # the backstop alone would take 5 s

    # Errors, list and history against PostgreSQL.
    r = httpx.post(f"{base}/v1.0/workflows/dapr/waiter/start?instanceID=w-1")
    assert r.status_code == 202
    dup = httpx.post(f"{base}/v1.0/workflows/dapr/waiter/start?instanceID=w-1")
    assert (dup.status_code, dup.json()["errorCode"]) == (500, "ERR_START_WORKFLOW")
    busy = httpx.post(f"{base}/v1.0/workflows/dapr/w-1/purge")
    assert (busy.status_code, busy.json()["errorCode"]) == (500, "ERR_PURGE_WORKFLOW")
    assert httpx.post(f"{base}/v1.0/workflows/dapr/w-1/terminate").status_code == 202
    assert client.wait_for_workflow_completion("w-1", timeout_in_seconds=30).runtime_status.name == "TERMINATED"
    listed = httpx.get(f"{base}/v1.0/workflows/dapr?status=COMPLETED,TERMINATED").json()["workflows"]
    assert [w["instanceID"] for w in listed] == ["chain-1", "appr-1", "w-1"]
    history = httpx.get(f"{base}/v1.0/workflows/dapr/appr-1/history").json()["events"]
    assert [e["name"] for e in history if e["type"] == "EventRaised"] == ["approval"]

    # The CLI, configured like the runtime (same environment), sees the same instances.
    cli = [sys.executable, "-m", "ledgerflow.cli", "--log-level", "WARNING", "wf"]
    env = {**stack.env, "PATH": "/usr/bin:/bin"}
    out = subprocess.run([*cli, "list", "-a", app, "-o", "json"], capture_output=True, text=True, env=env,
                         cwd=str(REPO), timeout=60)
    assert out.returncode == 0, out.stderr
    assert {w["instanceID"]: w["runtimeStatus"] for w in json.loads(out.stdout)} == {
        "chain-1": "COMPLETED", "appr-1": "COMPLETED", "w-1": "TERMINATED"}
    out = subprocess.run([*cli, "purge", "--all-older-than", "0s", "-a", app], capture_output=True, text=True,
                         env=env, cwd=str(REPO), timeout=60)
    assert out.returncode == 0, out.stderr
    assert sorted(out.stdout.splitlines()) == sorted(f"Workflow '{i}' purged successfully"
                                                     for i in ("chain-1", "appr-1", "w-1"))
    assert httpx.get(f"{base}/v1.0/workflows/dapr?appID={app}").json()["workflows"] == []
