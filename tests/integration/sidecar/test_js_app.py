"""A Dapr workflow app in JavaScript (`@dapr/dapr` from npm, js/app.cjs, written for Dapr only)
runs on `ledgerflow sidecar` over PostgreSQL and Redis: a chain, a fan-out, a timer and an
external event; its workflows are then listed and read through Ledgerflow's HTTP API like
any other."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx

from tests.integration.dapr_clients.test_js_sdk import _installed
from tests.integration.sidecar.conftest import Sidecar

APP = Path(__file__).with_name("js") / "app.cjs"


def test_a_javascript_dapr_app_runs_unmodified(sidecar: Sidecar, tmp_path: Path) -> None:
    modules = _installed()
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "NODE_PATH": str(modules),
           "DAPR_GRPC_PORT": str(sidecar.grpc_port), "DAPR_HTTP_PORT": str(sidecar.http_port)}
    done = subprocess.run(["node", str(APP)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    runs = {r["workflow"]: r for r in map(json.loads, (line for line in done.stdout.splitlines()
                                                       if line.startswith('{"workflow"')))}
    outputs = {name: (run["status"], json.loads(run["output"])) for name, run in runs.items()}
    assert outputs == {"chain": ("COMPLETED", [2, 4, 8]), "fanOut": ("COMPLETED", 110), "timer": ("COMPLETED", True),
                       "approval": ("COMPLETED", {"greeting": "Hello, JS!", "approvedBy": "reviewer"})}

    base = f"http://127.0.0.1:{sidecar.http_port}/v1.0/workflows/dapr"
    listed = {w["instanceID"]: w for w in httpx.get(base, timeout=10).json()["workflows"]}
    assert {listed[r["id"]]["workflowName"] for r in runs.values()} == set(runs)
    assert {listed[r["id"]]["appID"] for r in runs.values()} == {sidecar.app_id}
    history = httpx.get(f"{base}/{runs['fanOut']['id']}/history", timeout=10).json()
    kinds = [e["type"] for e in history["events"]]
    assert kinds.count("TaskScheduled") == 10 and kinds.count("TaskCompleted") == 10, kinds
