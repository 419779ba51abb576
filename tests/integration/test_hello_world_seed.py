"""The seed's `hello_world_wf` (Dapr docs, Python SDK) in one process via WorkflowRuntime().start(),
with only its import line changed: the example file's own asserts must hold."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_dapr_hello_world_runs_unchanged_but_for_the_import(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "examples" / "hello_world.py")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": str(tmp_path)},
    )
    out = done.stdout
    assert done.returncode == 0, done.stdout + done.stderr
    assert "New counter value is: 11!" in out
    assert "Retry count value is: 1! This print statement verifies retry" in out
    assert "Get response from hello_world_wf after pause call: SUSPENDED" in out
    assert "Get response from hello_world_wf after resume call: RUNNING" in out
    assert "New counter value is: 1111!" in out
    assert "Workflow completed! Result: Completed" in out
    assert "Instance Successfully Purged" in out
    assert (tmp_path / ".ledgerflow" / "ledgerflow.db").exists()
