"""`ledgerflow sidecar` on the real stack (PostgreSQL + Redis), and Dapr apps run against it as
they are, as subprocesses pointed at it by DAPR_GRPC_PORT / DAPR_HTTP_PORT."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.processes import ManagedProcess, ProcessGroup, start_ledgerflow
from tests.fixtures.redis import free_port

REPO = Path(__file__).resolve().parents[3]


@dataclass
class Sidecar:
    name: str
    app_id: str
    http_port: int
    grpc_port: int
    env: dict[str, str]
    procs: ProcessGroup

    def app_env(self) -> dict[str, str]:
        """The environment of a Dapr app talking to this sidecar (and to nothing of Ledgerflow's)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DAPR_", "LEDGERFLOW_"))}
        env.pop("PYTHONPATH", None)
        return {**env, "DAPR_GRPC_PORT": str(self.grpc_port), "DAPR_HTTP_PORT": str(self.http_port),
                "PYTHONUNBUFFERED": "1"}

    def run_app(self, argv: Sequence[str], cwd: Path, timeout: float, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(argv), env={**self.app_env(), **extra}, cwd=cwd, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def start_app(self, name: str, argv: Sequence[str], cwd: Path, **extra: str) -> ManagedProcess:
        """A Dapr app as a background process, with `extra` variables on top of `app_env()`."""
        env: dict[str, str | None] = {k: None for k in os.environ if k.startswith(("DAPR_", "LEDGERFLOW_"))}
        env.update({"PYTHONPATH": None, **self.app_env(), **extra})
        return self.procs.start(name, list(argv), env=env, cwd=cwd)

    @property
    def process(self) -> ManagedProcess:
        return self.procs.by_name(self.name)[-1]

    def connections(self) -> int:
        """SDK streams this sidecar has accepted so far (from its log)."""
        return self.process.log_text().count("app SDK connected")

    def start_another(self, name: str = "sidecar2", *extra: str) -> Sidecar:
        """A second sidecar for the same app, on the same database and broker."""
        return start_sidecar(self.procs, self.app_id, self.env, name, *extra)


def start_sidecar(procs: ProcessGroup, app_id: str, env: dict[str, str], name: str = "sidecar",
                  *extra: str) -> Sidecar:
    grpc_port = free_port()
    base = start_ledgerflow(procs, name, ["sidecar", "--app-id", app_id, *extra], env, grpc_port=grpc_port)
    return Sidecar(name, app_id, int(base.rsplit(":", 1)[1]), grpc_port, env, procs)


@pytest.fixture
def sidecar_env(postgres_db_url: str, redis_url: str) -> dict[str, str]:
    return {"LEDGERFLOW_DATABASE_URL": postgres_db_url, "LEDGERFLOW_BROKER_URL": redis_url,
            "PYTHONPATH": str(REPO)}


@pytest.fixture
def sidecar(procs: ProcessGroup, sidecar_env: dict[str, str]) -> Sidecar:
    return start_sidecar(procs, f"sc{uuid.uuid4().hex[:8]}", sidecar_env)


PYTHON = sys.executable
