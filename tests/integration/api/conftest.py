"""Fixtures for the HTTP API tests: an API over a fresh SQLite database, in-process
(Starlette's TestClient) or as a real `ledgerflow` process."""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ledgerflow.api import ApiSettings, create_app
from ledgerflow.config import Settings
from ledgerflow.management import WorkflowManager
from tests.fixtures.processes import ProcessGroup, start_ledgerflow

warnings.filterwarnings("ignore", message=".*httpx.*starlette.testclient.*")


@pytest.fixture
def sqlite_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {
        "LEDGERFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'lf.db'}",
        "LEDGERFLOW_BROKER_URL": "memory://localhost/",
        "LEDGERFLOW_APP_ID": f"api{uuid.uuid4().hex[:6]}",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in ("LEDGERFLOW_API_TOKEN", "DAPR_API_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    return env


@pytest.fixture
def manager(sqlite_env: dict[str, str]) -> Iterator[WorkflowManager]:
    m = WorkflowManager(Settings.from_env())
    yield m
    m.close()


@pytest.fixture
def api(manager: WorkflowManager) -> Iterator[Any]:
    from starlette.testclient import TestClient

    with TestClient(create_app(manager, ApiSettings()), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def launch(procs: ProcessGroup) -> Callable[..., str]:
    """Start a `ledgerflow` server process (killed at teardown with the `procs` group)."""

    def _launch(name: str, args: list[str], env: dict[str, str]) -> str:
        return start_ledgerflow(procs, name, args, env)

    return _launch
