"""One `ledgerflow dev` for the package's test modules, serving app.py over HTTP and gRPC with a token, for
Dapr's own clients (unmodified) to talk to."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.processes import ProcessGroup, start_ledgerflow
from tests.fixtures.redis import free_port

TOKEN = "dapr-clients-token"


@dataclass(frozen=True)
class Dev:
    http_port: int
    grpc_port: int
    token: str
    app_id: str
    env: dict[str, str]
    procs: ProcessGroup

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


@pytest.fixture(scope="package")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dev]:
    tmp = tmp_path_factory.mktemp("dapr-clients")
    app_id = f"dc{uuid.uuid4().hex[:6]}"
    env = {"LEDGERFLOW_DATABASE_URL": f"sqlite:///{tmp / 'dev.db'}", "LEDGERFLOW_BROKER_URL": "memory://localhost/",
           "LEDGERFLOW_APP_ID": app_id, "LEDGERFLOW_API_TOKEN": TOKEN, "DAPR_API_TOKEN": None}
    group = ProcessGroup(tmp / "logs")
    grpc_port = free_port()
    try:
        base = start_ledgerflow(group, "dev", ["dev", str(Path(__file__).with_name("app.py"))], env,
                                grpc_port=grpc_port)
        yield Dev(int(base.rsplit(":", 1)[1]), grpc_port, TOKEN, app_id,
                  {k: v for k, v in env.items() if v is not None}, group)
    finally:
        group.stop_all()
