"""Waiting without polling the database: a waiter reads the instance once, then only when a
change notification arrives, and wakes within 100 ms of a change made by another process
(PostgreSQL LISTEN/NOTIFY, Redis pub/sub); the backstop re-read covers a lost notification."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from ledgerflow import changes
from ledgerflow.client import DaprWorkflowClient
from tests.fixtures.processes import wait_for
from tests.integration.stacks import REPO

WAKE_BUDGET = 0.1  # seconds from the other process's commit to the waiter's return


class CountingWaiter:
    """Waits for `instance_id` to start in a thread, counting the database reads of it."""

    def __init__(self, client: DaprWorkflowClient, instance_id: str) -> None:
        self.reads = 0
        manager = client._manager
        original = manager.state

        def counted(*args: Any, **kwargs: Any) -> Any:
            if (args[0] if args else kwargs.get("instance_id")) == instance_id:
                self.reads += 1
            return original(*args, **kwargs)

        manager.state = counted  # type: ignore[method-assign]
        self.state: Any = None
        self.woke_at = self.woke_wall = 0.0
        self.thread = threading.Thread(target=self._run, args=(client, instance_id))
        self.thread.start()

    def _run(self, client: DaprWorkflowClient, instance_id: str) -> None:
        self.state = client.wait_for_workflow_start(instance_id, timeout_in_seconds=30)
        self.woke_at = time.monotonic()
        self.woke_wall = time.time()


def _suspend_from_another_process(env: dict[str, str], instance_id: str) -> None:
    """`ledgerflow wf suspend` in a subprocess (it commits, then publishes the change)."""
    done = subprocess.run([sys.executable, "-m", "ledgerflow.cli", "--log-level", "WARNING", "wf", "suspend",
                           instance_id], capture_output=True, text=True, timeout=60, cwd=str(REPO),
                          env={**env, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr


def _check_wake(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with DaprWorkflowClient() as client:
        iid = client.schedule_new_workflow("nobody_runs_this", instance_id="wait-1")
        waiter = CountingWaiter(client, iid)
        time.sleep(1.5)
        assert waiter.thread.is_alive()
        assert waiter.reads <= 2, f"{waiter.reads} reads in 1.5 s: the waiter polls"
        _suspend_from_another_process(env, iid)
        waiter.thread.join(10)
        assert waiter.state is not None and waiter.state.runtime_status.name == "SUSPENDED"
        lag = waiter.woke_wall - waiter.state.last_updated_at.timestamp()  # the suspend's commit, give or take
        print(f"woke {lag * 1000:.1f} ms after the other process's commit, {waiter.reads} reads")
        assert lag < WAKE_BUDGET, f"woke {lag * 1000:.0f} ms after the other process's commit"
        assert waiter.reads <= 4


@pytest.mark.integration
def test_postgres_listen_notify_wakes_a_waiter_in_another_process(postgres_db_url, monkeypatch) -> None:
    _check_wake({"LEDGERFLOW_DATABASE_URL": postgres_db_url, "LEDGERFLOW_BROKER_URL": "memory://localhost/",
                 "LEDGERFLOW_APP_ID": "pgwait"}, monkeypatch)


@pytest.mark.integration
def test_redis_pubsub_wakes_a_waiter_in_another_process(redis_url, tmp_path: Path, monkeypatch) -> None:
    _check_wake({"LEDGERFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'lf.db'}", "LEDGERFLOW_BROKER_URL": redis_url,
                 "LEDGERFLOW_APP_ID": "rediswait"}, monkeypatch)


def test_a_lost_notification_is_caught_by_the_backstop(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LEDGERFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'lf.db'}")
    monkeypatch.setenv("LEDGERFLOW_BROKER_URL", "memory://localhost/")
    monkeypatch.setattr(changes, "FALLBACK_POLL_SECONDS", 0.2)
    with DaprWorkflowClient() as client:
        iid = client.schedule_new_workflow("nobody_runs_this")
        waiter = CountingWaiter(client, iid)
        wait_for(lambda: waiter.reads >= 1, 10, message="the waiter's first read")  # now it waits
        with client._manager.store.step(iid) as tx:  # a change nobody announces
            tx.update_instance(status="RUNNING")
        waiter.thread.join(5)
        assert waiter.state is not None and waiter.state.runtime_status.name == "RUNNING"


def test_in_process_commits_wake_waiters_at_once_and_only_theirs(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LEDGERFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'lf.db'}")
    monkeypatch.setenv("LEDGERFLOW_BROKER_URL", "memory://localhost/")
    monkeypatch.setattr(changes, "FALLBACK_POLL_SECONDS", 30)
    with DaprWorkflowClient() as client:
        a, b = client.schedule_new_workflow("x"), client.schedule_new_workflow("x")
        waiter_a, waiter_b = CountingWaiter(client, a), CountingWaiter(client, b)
        for waiter in (waiter_a, waiter_b):  # both wait now
            wait_for(lambda w=waiter: w.reads >= 1, 10, message="the waiter's first read")
        reads_before = waiter_a.reads
        with client._manager.store.step(b) as tx:
            tx.update_instance(status="RUNNING")
        changes.notify(b, None)
        waiter_b.thread.join(5)  # b's change was delivered: its waiter woke, read and returned
        assert waiter_b.state is not None and waiter_b.state.runtime_status.name == "RUNNING"
        assert waiter_a.thread.is_alive() and waiter_a.reads == reads_before  # b's change did not wake a's waiter
        with client._manager.store.step(a) as tx:
            tx.update_instance(status="RUNNING")
        started = time.monotonic()
        changes.notify(a, None)
        waiter_a.thread.join(5)
        assert waiter_a.woke_at - started < WAKE_BUDGET
