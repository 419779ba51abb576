"""A failed activity or workflow is logged at WARNING with its error type and message."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx

from tests.fixtures.processes import ProcessGroup


def wait_for_line(procs: ProcessGroup, pattern: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(pattern, procs.by_name("dev")[0].log_text(), re.MULTILINE)
        if found:
            return found.group(0)
        time.sleep(0.05)
    raise AssertionError(f"no line matching {pattern!r} in:\n{procs.by_name('dev')[0].log_text()}")


def test_failures_are_warnings_with_type_and_message(launch, procs: ProcessGroup, tmp_path: Path) -> None:
    env = {"LEDGERFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'dev.db'}", "LEDGERFLOW_BROKER_URL": "memory://localhost/",
           "LEDGERFLOW_APP_ID": "logs"}
    base = launch("dev", ["dev", "tests/integration/api/orders.py"], env)
    httpx.post(f"{base}/v1.0/workflows/dapr/CallsBoom/start?instanceID=boom-1")
    httpx.post(f"{base}/v1.0/workflows/dapr/Fails/start?instanceID=fails-1")
    prefix = r"^\S+ \S+ WARNING "
    assert wait_for_line(procs, prefix + r"ledgerflow\.worker pid=\d+ activity failed: .*").split(" pid=")[1].split(
        " ", 1)[1] == "activity failed: RuntimeError: boom went the activity instance_id=boom-1 activity=boom task_id=0"
    line = wait_for_line(procs, prefix + r"ledgerflow\.orchestrator.* workflow failed: .*fails-1.*")
    assert line.split(" pid=")[1].split(" ", 1)[1] == (
        "workflow failed: ValueError: no stock instance_id=fails-1 workflow=Fails app_id=logs")
