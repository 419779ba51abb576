"""Crash tests on the real stack: processes killed with SIGKILL, Redis flushed, everything
restarted. Each asserts that its fault really happened before asserting recovery."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

import ledgerflow as wf
from persistence.store import Store
from tests.fixtures.processes import wait_for
from tests.integration.stacks import Stack, real_stack  # noqa: F401

pytestmark = pytest.mark.integration
S = wf.WorkflowStatus


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _completed(stack: Stack, iid: str, timeout: float = 90) -> object:
    state = stack.client.wait_for_workflow_completion(iid, timeout_in_seconds=timeout)
    assert state.runtime_status == S.COMPLETED, state.failure_details
    return json.loads(state.serialized_output)


def _no_rows_left(store: Store, iid: str) -> None:
    from sqlalchemy import text

    with store.engine.connect() as conn:
        for table in ("inbox", "timers", "outbox"):
            count = conn.execute(text(f"SELECT count(*) FROM {table} WHERE instance_id = :i"), {"i": iid}).scalar()
            assert count == 0, f"{count} {table} row(s) left for finished instance {iid}"


def _history_is_clean(store: Store, iid: str) -> None:
    events = store.history(iid)
    sequences = [e.sequence for e in events]
    assert sequences == list(range(len(events))), "history sequence numbers are not contiguous"
    scheduled = [json.loads(e.payload)["event_id"] for e in events if e.type == "TaskScheduled"]
    assert len(scheduled) == len(set(scheduled)), "a task was scheduled twice"
    results = [json.loads(e.payload)["task_id"] for e in events if e.type in ("TaskCompleted", "TaskFailed")]
    assert len(results) == len(set(results)), "a task has two results in history"


def test_activity_worker_killed_mid_activity_reruns_it(real_stack: Stack, tmp_path: Path) -> None:
    iid = real_stack.client.schedule_new_workflow("slow_chain", input=3.0)
    started = tmp_path / "slow-start.log"
    wait_for(lambda: _lines(started), 30, message="the slow activity never started")
    real_stack.processes["worker"].kill9()
    assert not real_stack.processes["worker"].is_alive()
    assert not _lines(tmp_path / "slow-done.log"), "the activity finished before the kill"
    real_stack.start_worker("worker-2")
    assert _completed(real_stack, iid) == 3.0
    starts = _lines(started)
    assert len(starts) >= 2, "the killed activity was not run again"
    assert len({line.split()[0] for line in starts}) == 1, "task_execution_id changed across the redelivery"


def test_orchestrator_killed_right_after_commit_leaves_no_duplicate_history(real_stack: Stack) -> None:
    real_stack.processes["orchestrator"].kill9()
    real_stack.env["LEDGERFLOW_FAULT_EXIT_AFTER_COMMIT"] = "3"
    crashing = real_stack.start_process("orchestrator-crashing", "orchestrator", "tests.integration.apps.patterns")
    ids = [real_stack.client.schedule_new_workflow("chaining", input=str(i)) for i in range(5)]
    wait_for(lambda: not crashing.is_alive(), 60, message="the orchestrator never hit its fault point")
    assert crashing.returncode == 137
    del real_stack.env["LEDGERFLOW_FAULT_EXIT_AFTER_COMMIT"]
    real_stack.start_process("orchestrator-2", "orchestrator", "tests.integration.apps.patterns")
    for i, iid in enumerate(ids):
        assert _completed(real_stack, iid) == f"{i}+++"
    store = Store(real_stack.env["LEDGERFLOW_DATABASE_URL"])
    try:
        for iid in ids:
            _history_is_clean(store, iid)
            _no_rows_left(store, iid)
    finally:
        store.close()


def test_timer_pending_across_a_restart_of_every_process_fires_once(real_stack: Stack) -> None:
    iid = real_stack.client.schedule_new_workflow("sleeper", input=4)
    real_stack.client.wait_for_workflow_start(iid, timeout_in_seconds=30)
    scheduled_at = time.time()
    for proc in list(real_stack.processes.values()):
        proc.kill9()
    assert all(not p.is_alive() for p in real_stack.processes.values())
    time.sleep(5)  # the timer falls due while nothing runs
    assert real_stack.client.get_workflow_state(iid).runtime_status == S.RUNNING
    real_stack.start_process("orchestrator-2", "orchestrator", "tests.integration.apps.patterns")
    real_stack.start_worker("worker-2")
    real_stack.start_process("beat-2", "beat", "--interval", "0.5")
    _completed(real_stack, iid)
    assert time.time() - scheduled_at >= 4
    store = Store(real_stack.env["LEDGERFLOW_DATABASE_URL"])
    try:
        fired = [e for e in store.history(iid) if e.type == "TimerFired"]
        assert len(fired) == 1
    finally:
        store.close()


def test_flushing_redis_while_50_workflows_run_loses_none(real_stack: Stack, redis_server) -> None:
    ids = [real_stack.client.schedule_new_workflow("chaining", input=str(i)) for i in range(25)]
    ids += [real_stack.client.schedule_new_workflow("slow_chain", input=0.5) for _ in range(25)]
    wait_for(lambda: int(redis_server.command("DBSIZE")) > 0, 10, message="nothing was queued in Redis")
    assert redis_server.command("FLUSHALL") in ("OK", b"OK")
    for i, iid in enumerate(ids[:25]):
        assert _completed(real_stack, iid, timeout=120) == f"{i}+++"
    for iid in ids[25:]:
        assert _completed(real_stack, iid, timeout=120) == 0.5
