"""Dapr's JavaScript SDK (`@dapr/dapr`, unmodified, from npm) against `ledgerflow dev`: its
DaprWorkflowClient over gRPC (built on `@dapr/durabletask-js`) and DaprClient's workflow API
over HTTP, which first waits for the sidecar through `GET /v1.0/metadata`.

The packages are installed once into `.cache/dapr-clients-js/` (ignored by git), and again only
when js/package.json changes; js/clients.cjs runs the calls and prints one JSON line per check.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.dapr_clients.conftest import Dev

JS = Path(__file__).with_name("js")
CACHE = Path(__file__).resolve().parents[3] / ".cache" / "dapr-clients-js"



def _installed() -> Path:
    """node_modules with the versions js/package.json pins (installed if missing or stale)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("needs node and npm: scripts/test.sh installs them (apt-get install nodejs npm)")
    wanted = (JS / "package.json").read_text()
    marker = CACHE / "package.json"
    if not marker.exists() or marker.read_text() != wanted or not (CACHE / "node_modules" / "@dapr").is_dir():
        CACHE.mkdir(parents=True, exist_ok=True)
        marker.write_text(wanted)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--no-package-lock", "--loglevel=error"],
                       cwd=CACHE, check=True, timeout=300)
    return CACHE / "node_modules"


def test_dapr_javascript_sdk_over_grpc_and_http(dev: Dev) -> None:
    modules = _installed()
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "NODE_PATH": str(modules), "DAPR_GRPC_PORT": str(dev.grpc_port),
           "DAPR_HTTP_PORT": str(dev.http_port), "DAPR_API_TOKEN": dev.token}
    done = subprocess.run(["node", str(JS / "clients.cjs")], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    checks = {c["check"]: c["value"] for c in map(json.loads, (line for line in done.stdout.splitlines()
                                                               if line.startswith('{"check"')))}
    assert checks["grpc.hello"] == {"id": "js-hello", "status": "COMPLETED", "output": '"Hello, JS!"',
                                    "custom": '"greeting"'}
    assert checks["grpc.suspended"] == "SUSPENDED"
    assert json.loads(checks["grpc.approved"]) == {"approved": {"by": "js"}}
    assert checks["grpc.terminated"] == {"status": "TERMINATED", "output": '"stopped"'}
    assert (checks["grpc.purged"], checks["grpc.gone"]) == (True, True)
    assert checks["grpc.unknown"]["code"] == 5 and "no such instance exists" in checks["grpc.unknown"]["details"]
    assert checks["grpc.duplicate"] == {"code": 6}
    assert checks["http.metadata"] == {"id": dev.app_id}
    assert checks["http.hello"] == {"status": "COMPLETED", "output": '"Hello, HTTP!"'}
    assert (checks["http.paused"], checks["http.purged"], checks["done"]) == ("SUSPENDED", "gone", True)
