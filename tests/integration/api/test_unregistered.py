"""An unregistered workflow ends FAILED with OrchestratorNotRegisteredError, as in Dapr's
Python SDK (durabletask fails the orchestration when no orchestrator has the name), from the
CLI of another process and over HTTP alike; it is not STALLED."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[3]
FAILED = "FAILED: OrchestratorNotRegisteredError: A 'nosuch' orchestrator was not registered."


def ledgerflow(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ledgerflow.cli", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **env, "PYTHONPATH": str(REPO)}, cwd=str(REPO))


def test_an_unregistered_workflow_fails_from_the_cli_and_over_http(launch, tmp_path: Path) -> None:
    env = {"LEDGERFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'dev.db'}", "LEDGERFLOW_BROKER_URL": "memory://localhost/",
           "LEDGERFLOW_APP_ID": "unregistered"}
    base = launch("dev", ["dev", "tests/integration/api/orders.py"], env)
    run = ledgerflow(env, "wf", "run", "nosuch", "-i", "n-1")
    assert (run.returncode, run.stdout, run.stderr) == (0, "Workflow instance started successfully: n-1\n", "")
    waited = ledgerflow(env, "wf", "wait", "n-1", "--timeout", "20s")
    assert (waited.returncode, waited.stdout) == (2, f"Workflow 'n-1' {FAILED}\n")

    assert httpx.post(f"{base}/v1.0/workflows/dapr/nosuch/start?instanceID=n-2").status_code == 202
    waited = ledgerflow(env, "wf", "wait", "n-2", "--timeout", "20s")
    assert (waited.returncode, waited.stdout) == (2, f"Workflow 'n-2' {FAILED}\n")
    body = httpx.get(f"{base}/v1.0/workflows/dapr/n-2").json()
    assert (body["runtimeStatus"], body["properties"]["dapr.workflow.failure.error_type"]) == (
        "FAILED", "OrchestratorNotRegisteredError")
