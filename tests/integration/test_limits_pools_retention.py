"""Per-name limits across processes, per-process limits, independent pools and retention."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ledgerflow as wf
from persistence.store import Store
from tests.fixtures.processes import wait_for
from tests.integration.stacks import REPO, Stack

pytestmark = pytest.mark.integration
S = wf.WorkflowStatus


def _config(tmp_path: Path, workflow_spec: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(f"apiVersion: dapr.io/v1alpha1\nkind: Configuration\nspec:\n  workflow:\n{workflow_spec}")
    return str(path)


@pytest.fixture
def stack_with(postgres_db_url: str, redis_url: str, procs: Any, tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    made: list[Stack] = []

    def make(workflow_spec: str) -> Stack:
        env = {"LEDGERFLOW_DATABASE_URL": postgres_db_url, "LEDGERFLOW_BROKER_URL": redis_url,
               "LEDGERFLOW_APP_ID": f"app{uuid.uuid4().hex[:8]}", "LEDGER_DIR": str(tmp_path),
               "PYTHONPATH": str(REPO), "LEDGERFLOW_CONFIG": _config(tmp_path, workflow_spec)}
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        stack = Stack("real", env, wf.DaprWorkflowClient(), procs)
        made.append(stack)
        return stack

    yield make
    for stack in made:
        stack.client.close()


def _intervals(tmp_path: Path) -> list[tuple[float, float]]:
    starts = {line.split()[0]: float(line.split()[2]) for line in (tmp_path / "slow-start.log").read_text().splitlines()}
    ends = {line.split()[0]: float(line.split()[2]) for line in (tmp_path / "slow-done.log").read_text().splitlines()}
    return [(starts[k], ends[k]) for k in ends]


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    points = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals], key=lambda p: (p[0], p[1]))
    level = peak = 0
    for _, delta in points:
        level += delta
        peak = max(peak, level)
    return peak


def test_activity_name_limit_holds_across_worker_processes(stack_with, tmp_path: Path) -> None:
    stack = stack_with("    limits:\n      activities: {slow: 2}\n")
    stack.start_orchestrator()
    stack.start_worker("worker-a", concurrency=3)
    stack.start_worker("worker-b", concurrency=3)
    stack.start_beat()
    iid = stack.client.schedule_new_workflow("fan_slow", input={"n": 8, "seconds": 0.6})
    state = stack.client.wait_for_workflow_completion(iid, timeout_in_seconds=90)
    assert state.runtime_status == S.COMPLETED and json.loads(state.serialized_output) == 8
    intervals = _intervals(tmp_path)
    assert len(intervals) == 8
    assert _max_overlap(intervals) == 2  # never above the limit, and the limit was reached
    pids = {line.split()[1] for line in (tmp_path / "slow-start.log").read_text().splitlines()}
    assert len(pids) >= 2, "the work did not spread over both worker processes"


def test_workflow_name_limit_keeps_excess_instances_pending(stack_with) -> None:
    stack = stack_with("    limits:\n      workflows: {sleeper: 1}\n")
    stack.start_orchestrator()
    stack.start_worker()
    stack.start_beat()
    ids = [stack.client.schedule_new_workflow("sleeper", input=1) for _ in range(3)]
    wait_for(lambda: [stack.client.get_workflow_state(i).runtime_status for i in ids].count(S.RUNNING) == 1, 30,
             message="no instance started")
    assert [stack.client.get_workflow_state(i).runtime_status for i in ids].count(S.PENDING) == 2
    for i in ids:
        assert stack.client.wait_for_workflow_completion(i, timeout_in_seconds=60).runtime_status == S.COMPLETED
    store = Store(stack.env["LEDGERFLOW_DATABASE_URL"])
    try:
        intervals = [(store.history(i)[0].timestamp.timestamp(), store.get_instance(i).completed_at.timestamp())
                     for i in ids]
    finally:
        store.close()
    assert _max_overlap(intervals) == 1


def test_a_slow_pool_does_not_delay_a_fast_pool(stack_with, tmp_path: Path) -> None:
    stack = stack_with("    pools: {slow: slowpool}\n")
    stack.start_orchestrator()
    stack.start_process("slow-worker", "worker", "tests.integration.apps.patterns", "--pool", "slowpool",
                        "--concurrency", "1")
    stack.start_worker("fast-worker", concurrency=1)
    stack.start_beat()
    busy = stack.client.schedule_new_workflow("fan_slow", input={"n": 3, "seconds": 3})
    wait_for(lambda: (tmp_path / "slow-start.log").exists(), 30, message="the slow pool never started")
    began = time.monotonic()
    fast = stack.client.schedule_new_workflow("chaining", input="f")
    state = stack.client.wait_for_workflow_completion(fast, timeout_in_seconds=30)
    elapsed = time.monotonic() - began
    assert json.loads(state.serialized_output) == "f+++"
    assert stack.client.get_workflow_state(busy).runtime_status == S.RUNNING, "the slow pool was not busy"
    assert elapsed < 3, f"the fast workflow waited {elapsed:.1f}s behind the slow pool"
    assert stack.client.wait_for_workflow_completion(busy, timeout_in_seconds=60).runtime_status == S.COMPLETED


def test_retention_purges_completed_instances_and_keeps_the_others(tmp_path: Path, monkeypatch) -> None:
    from tests.integration.apps import patterns

    monkeypatch.setenv("LEDGERFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'lf.db'}")
    monkeypatch.setenv("LEDGERFLOW_BROKER_URL", "memory://localhost/")
    monkeypatch.setenv("LEDGERFLOW_APP_ID", "retention")
    monkeypatch.setenv("LEDGERFLOW_RETENTION_COMPLETED", "1s")
    patterns.wfr.start()
    client = wf.DaprWorkflowClient()
    try:
        done = client.schedule_new_workflow("chaining", input="r")
        failed = client.schedule_new_workflow("retrying", input=9)
        assert client.wait_for_workflow_completion(done, timeout_in_seconds=30).runtime_status == S.COMPLETED
        assert client.wait_for_workflow_completion(failed, timeout_in_seconds=30).runtime_status == S.FAILED
        wait_for(lambda: client.get_workflow_state(done) is None, 10, message="the completed instance was kept")
        assert client.get_workflow_state(failed).runtime_status == S.FAILED
    finally:
        client.close()
        patterns.wfr.shutdown()


def test_per_process_activity_limit_in_process(tmp_path: Path, monkeypatch) -> None:
    from tests.integration.apps import patterns

    monkeypatch.setenv("LEDGERFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'lf.db'}")
    monkeypatch.setenv("LEDGERFLOW_BROKER_URL", "memory://localhost/")
    monkeypatch.setenv("LEDGERFLOW_APP_ID", "perprocess")
    monkeypatch.setenv("LEDGER_DIR", str(tmp_path))
    monkeypatch.setenv("LEDGERFLOW_MAX_CONCURRENT_ACTIVITY_INVOCATIONS", "2")
    patterns.wfr.start()
    client = wf.DaprWorkflowClient()
    try:
        iid = client.schedule_new_workflow("fan_slow", input={"n": 6, "seconds": 0.4})
        assert client.wait_for_workflow_completion(iid, timeout_in_seconds=60).runtime_status == S.COMPLETED
    finally:
        client.close()
        patterns.wfr.shutdown()
    assert _max_overlap(_intervals(tmp_path)) == 2


def test_process_concurrency_defaults_come_from_the_configuration(stack_with, tmp_path: Path) -> None:
    stack = stack_with("    maxConcurrentWorkflowInvocations: 3\n    maxConcurrentActivityInvocations: 3\n")
    orchestrator = stack.start_process(
        "orchestrator", "orchestrator", "tests.integration.apps.patterns")
    stack.start_process("worker", "worker", "tests.integration.apps.patterns")
    stack.start_beat()
    iid = stack.client.schedule_new_workflow("fan_slow", input={"n": 9, "seconds": 0.6})
    assert stack.client.wait_for_workflow_completion(iid, timeout_in_seconds=60).runtime_status == S.COMPLETED
    assert _max_overlap(_intervals(tmp_path)) == 3
    assert "concurrency: 3 (thread)" in orchestrator.log_text()
