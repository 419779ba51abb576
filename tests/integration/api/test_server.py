"""Auth and limits against a real `ledgerflow api` process (uvicorn), with raw sockets where
HTTP clients would hide what the server does."""

from __future__ import annotations

import socket
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ledgerflow.api import ApiSettings
from persistence.store import Store
from tests.fixtures.processes import ProcessGroup
from tests.fixtures.processes import start_ledgerflow, wait_for

TOKEN = "t0ken-" + uuid.uuid4().hex
AUTH = {"dapr-api-token": TOKEN}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ProcessGroup]]:
    tmp = tmp_path_factory.mktemp("api-server")
    group = ProcessGroup(tmp / "logs")
    env = {
        "LEDGERFLOW_DATABASE_URL": f"sqlite:///{tmp / 'lf.db'}",
        "LEDGERFLOW_BROKER_URL": "memory://localhost/",
        "LEDGERFLOW_APP_ID": "apiserver",
        "LEDGERFLOW_API_TOKEN": TOKEN,
        "LEDGERFLOW_API_MAX_BODY_BYTES": "1024",
        "LEDGERFLOW_API_BODY_TIMEOUT": "1",
    }
    create_database(env["LEDGERFLOW_DATABASE_URL"])
    try:
        base = start_ledgerflow(group, "api", ["api", "--header-timeout", "1", "--keep-alive-timeout", "1"], env)
        yield base, group
    finally:
        group.stop_all()


def create_database(url: str) -> None:
    """`ledgerflow api` serves an existing database only (it never creates one)."""
    store = Store(url)
    store.migrate()
    store.close()


def _connect(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    return sock


def _read_until_closed(sock: socket.socket, timeout: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection; and how long that took."""
    sock.settimeout(timeout)
    started, data = time.monotonic(), b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data, time.monotonic() - started


# -- auth ---------------------------------------------------------------------------------------


def test_every_route_but_health_needs_the_token_header(server) -> None:
    base, _ = server
    assert httpx.get(f"{base}/v1.0/healthz").status_code == 204
    assert httpx.get(f"{base}/v1.0-alpha1/healthz").status_code == 204
    for url, headers in [
        (f"{base}/v1.0/workflows/dapr/x1", {}),
        (f"{base}/v1.0/workflows/dapr/x1", {"dapr-api-token": "wrong"}),
        (f"{base}/v1.0/workflows/dapr/x1", {"dapr-api-token": TOKEN[:-1]}),
        (f"{base}/v1.0/workflows/dapr/x1?dapr-api-token={TOKEN}", {}),
        (f"{base}/v1.0/workflows/dapr/x1?token={TOKEN}", {"authorization": f"Bearer {TOKEN}"}),
        (f"{base}/openapi.json", {}),
    ]:
        r = httpx.get(url, headers=headers)
        assert (r.status_code, r.text) == (401, "invalid api token"), url
    r = httpx.post(f"{base}/v1.0/workflows/dapr/wf/start?instanceID=auth-1", content=b"{}")
    assert r.status_code == 401
    r = httpx.post(f"{base}/v1.0/workflows/dapr/wf/start?instanceID=auth-1", content=b"{}",
                   headers={"Dapr-Api-Token": TOKEN})
    assert r.status_code == 202
    assert httpx.get(f"{base}/v1.0/workflows/dapr/auth-1", headers=AUTH).json()["runtimeStatus"] == "PENDING"
    assert httpx.get(f"{base}/openapi.json", headers=AUTH).status_code == 200


def test_the_token_is_never_logged(server) -> None:
    base, group = server
    httpx.get(f"{base}/v1.0/workflows/dapr/x2?dapr-api-token={TOKEN}")
    httpx.get(f"{base}/v1.0/workflows/dapr/x2", headers=AUTH)
    api = group.by_name("api")[0]

    def logged() -> str:
        text = api.log_text()
        return text if "dapr/x2 401" in text and "dapr/x2 404" in text else ""

    log = wait_for(logged, 10, message="both requests in the access log")
    assert "GET /v1.0/workflows/dapr/x2 401" in log and "GET /v1.0/workflows/dapr/x2 404" in log
    assert TOKEN not in log


def test_the_token_comes_from_ledgerflow_or_dapr_variables(monkeypatch) -> None:
    monkeypatch.delenv("LEDGERFLOW_API_TOKEN", raising=False)
    monkeypatch.setenv("DAPR_API_TOKEN", "from-dapr")
    assert ApiSettings.from_env().token == "from-dapr"
    monkeypatch.setenv("LEDGERFLOW_API_TOKEN", "from-ledgerflow")
    assert ApiSettings.from_env().token == "from-ledgerflow"
    monkeypatch.delenv("LEDGERFLOW_API_TOKEN")
    monkeypatch.delenv("DAPR_API_TOKEN")
    assert ApiSettings.from_env().token is None


# -- limits -------------------------------------------------------------------------------------


def test_a_body_over_the_cap_is_413_with_content_length(server) -> None:
    base, _ = server
    ok = httpx.post(f"{base}/v1.0/workflows/dapr/wf/start?instanceID=small", content=b'"' + b"x" * 1000 + b'"',
                    headers=AUTH)
    assert ok.status_code == 202
    r = httpx.post(f"{base}/v1.0/workflows/dapr/wf/start?instanceID=big", content=b'"' + b"x" * 2000 + b'"',
                   headers=AUTH)
    assert r.status_code == 413 and r.json()["errorCode"] == "ERR_BODY_TOO_LARGE"
    assert httpx.get(f"{base}/v1.0/workflows/dapr/big", headers=AUTH).status_code == 404


def test_a_chunked_body_over_the_cap_is_413_without_content_length(server) -> None:
    base, _ = server

    def chunks() -> Iterator[bytes]:
        yield b'"'
        for _ in range(8):
            yield b"y" * 256
        yield b'"'

    r = httpx.post(f"{base}/v1.0/workflows/dapr/wf/start?instanceID=chunky", content=chunks(), headers=AUTH)
    assert r.status_code == 413 and r.json()["errorCode"] == "ERR_BODY_TOO_LARGE"
    sock = _connect(base)
    head = (f"POST /v1.0/workflows/dapr/wf/start?instanceID=raw HTTP/1.1\r\nHost: x\r\ndapr-api-token: {TOKEN}\r\n"
            "Transfer-Encoding: chunked\r\n\r\n").encode()
    body = b"".join(b"%x\r\n%s\r\n" % (300, b"z" * 300) for _ in range(5))
    sock.sendall(head + body)
    data, _ = _read_until_closed(sock, 5)
    assert data.startswith(b"HTTP/1.1 413 ") and b"ERR_BODY_TOO_LARGE" in data


def test_a_body_that_never_finishes_gets_408(server) -> None:
    base, _ = server
    sock = _connect(base)
    sock.sendall((f"POST /v1.0/workflows/dapr/wf/start HTTP/1.1\r\nHost: x\r\ndapr-api-token: {TOKEN}\r\n"
                  "Content-Length: 100\r\n\r\n\"abc").encode())
    data, took = _read_until_closed(sock, 10)
    assert data.startswith(b"HTTP/1.1 408 ") and b"ERR_REQUEST_TIMEOUT" in data
    assert took < 5


def test_headers_must_arrive_within_the_header_timeout(server) -> None:
    base, _ = server
    silent = _connect(base)
    slow = _connect(base)
    slow.sendall(b"GET /v1.0/healthz HTTP/1.1\r\nHost: x\r\n")  # never finishes its headers
    for sock in (silent, slow):
        data, took = _read_until_closed(sock, 10)
        assert data == b"" and took < 5


def test_an_idle_keep_alive_connection_is_closed(server) -> None:
    base, _ = server
    sock = _connect(base)
    sock.sendall(b"GET /v1.0/healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    data, took = _read_until_closed(sock, 10)
    assert data.startswith(b"HTTP/1.1 204 ") and 0.5 < took < 5


def test_oversized_headers_are_431_and_non_ascii_targets_400(server) -> None:
    base, _ = server
    sock = _connect(base)
    sock.sendall(b"GET /v1.0/healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
    data, _ = _read_until_closed(sock, 5)
    assert data.startswith(b"HTTP/1.1 431 ")
    sock = _connect(base)
    for _ in range(3):  # the same, arriving in pieces
        sock.sendall(b"GET /v1.0/healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 7000)
    data, _ = _read_until_closed(sock, 5)
    assert data.startswith(b"HTTP/1.1 431 ")
    sock = _connect(base)
    sock.sendall("GET /v1.0/workflows/dapr/caf\u00e9 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    data, _ = _read_until_closed(sock, 5)
    assert data.startswith(b"HTTP/1.1 400 ")
    assert httpx.get(f"{base}/v1.0/healthz").status_code == 204  # still serving


def test_a_port_in_use_is_a_clear_error(server, tmp_path: Path) -> None:
    import subprocess

    base, _ = server
    port = base.rsplit(":", 1)[1]
    create_database(f"sqlite:///{tmp_path / 'x.db'}")
    done = subprocess.run([sys.executable, "-m", "ledgerflow.cli", "api", "--port", port], capture_output=True,
                          text=True, timeout=60, cwd=str(tmp_path),
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parents[3]),
                               "LEDGERFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"})
    assert done.returncode != 0 and "pick another with --port" in done.stderr
