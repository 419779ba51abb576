"""The two ways to run Ledgerflow, as fixtures: the embedded default in this process, and
the real stack (PostgreSQL + Redis + orchestrator, worker and beat as separate processes)."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import ledgerflow as wf

REPO = Path(__file__).resolve().parents[2]
APP_MODULE = "tests.integration.apps.patterns"


@dataclass
class Stack:
    kind: str
    env: dict[str, str]
    client: wf.DaprWorkflowClient
    procs: Any = None
    processes: dict[str, Any] = field(default_factory=dict)

    def start_process(self, name: str, *args: str) -> Any:
        proc = self.procs.start(name, [sys.executable, "-m", "ledgerflow.cli", *args], env=self.env, cwd=str(REPO))
        self.processes[name] = proc
        return proc

    def start_orchestrator(self) -> Any:
        return self.start_process("orchestrator", "orchestrator", APP_MODULE, "--concurrency", "4")

    def start_worker(self, name: str = "worker", concurrency: int = 2) -> Any:
        return self.start_process(name, "worker", APP_MODULE, "--concurrency", str(concurrency))

    def start_beat(self) -> Any:
        return self.start_process("beat", "beat", "--interval", "0.5")


def _set_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def embedded_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    from tests.integration.apps import patterns

    env = {
        "LEDGERFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'lf.db'}",
        "LEDGERFLOW_BROKER_URL": "memory://localhost/",
        "LEDGERFLOW_APP_ID": f"emb{uuid.uuid4().hex[:8]}",
        "LEDGER_DIR": str(tmp_path),
    }
    _set_env(monkeypatch, env)
    patterns.wfr.start()
    client = wf.DaprWorkflowClient()
    try:
        yield Stack("embedded", env, client)
    finally:
        client.close()
        patterns.wfr.shutdown()


@pytest.fixture
def real_stack(postgres_db_url: str, redis_url: str, procs: Any, tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    env = {
        "LEDGERFLOW_DATABASE_URL": postgres_db_url,
        "LEDGERFLOW_BROKER_URL": redis_url,
        "LEDGERFLOW_APP_ID": f"app{uuid.uuid4().hex[:8]}",
        "LEDGER_DIR": str(tmp_path),
        "PYTHONPATH": str(REPO),
    }
    for knob in ("LEDGERFLOW_ACTIVITY_LEASE", "LEDGERFLOW_VISIBILITY_TIMEOUT"):  # the defaults, as users run
        monkeypatch.delenv(knob, raising=False)
    _set_env(monkeypatch, env)
    client = wf.DaprWorkflowClient()
    stack = Stack("real", env, client, procs)
    stack.start_orchestrator()
    stack.start_worker()
    stack.start_beat()
    try:
        yield stack
    finally:
        client.close()


@pytest.fixture(params=["embedded", "real"])
def stack(request: pytest.FixtureRequest) -> Stack:
    return request.getfixturevalue(f"{request.param}_stack")
