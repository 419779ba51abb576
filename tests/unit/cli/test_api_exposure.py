"""The HTTP API is never open beyond loopback by accident: `ledgerflow api` and `ledgerflow
dev` refuse a non-loopback address without a token; docker-compose passes one in."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from ledgerflow.api import ApiSettings
from ledgerflow.api.server import check_exposure
from ledgerflow.cli import main
from persistence.store import Store

REPO = Path(__file__).resolve().parents[3]
REFUSED = ("Error: refusing to serve the HTTP API on 0.0.0.0:3599 without a token (anyone reaching it could start, "
           "terminate and purge workflows); set LEDGERFLOW_API_TOKEN (clients send it in the dapr-api-token header), "
           "or listen on 127.0.0.1\n")


@pytest.fixture(autouse=True)
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'lf.db'}"
    store = Store(url)
    store.migrate()
    store.close()
    monkeypatch.setenv("LEDGERFLOW_DATABASE_URL", url)
    monkeypatch.setenv("LEDGERFLOW_BROKER_URL", "memory://localhost/")
    for key in ("LEDGERFLOW_API_TOKEN", "DAPR_API_TOKEN"):
        monkeypatch.delenv(key, raising=False)


@pytest.mark.parametrize("command", [["api"], ["dev", str(REPO / "examples" / "order_app.py")]])
def test_no_token_beyond_loopback_is_refused(command: list[str]) -> None:
    result = CliRunner().invoke(main, [*command, "--host", "0.0.0.0", "--port", "3599"], catch_exceptions=False)
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", REFUSED)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_needs_no_token(host: str) -> None:
    check_exposure(host, 3500, ApiSettings())


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "api.example.com"])
def test_a_token_opens_any_address(host: str) -> None:
    check_exposure(host, 3500, ApiSettings(token="s3cret"))


def test_compose_gives_the_api_a_token_from_the_environment() -> None:
    api = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["api"]
    assert api["command"][api["command"].index("--host") + 1] == "0.0.0.0"
    assert api["environment"]["LEDGERFLOW_API_TOKEN"].startswith("${LEDGERFLOW_API_TOKEN:?")
    assert api["environment"]["LEDGERFLOW_DATABASE_URL"].startswith("postgresql+psycopg://")


def test_compose_gives_the_sidecar_a_token_and_its_own_ports() -> None:
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    sidecar = services["sidecar"]
    command = sidecar["command"]
    assert command[:2] == ["ledgerflow", "sidecar"] and command[command.index("--host") + 1] == "0.0.0.0"
    assert sidecar["environment"]["LEDGERFLOW_API_TOKEN"].startswith("${LEDGERFLOW_API_TOKEN:?")
    taken = {p for s in services.values() for p in s.get("ports", []) if s is not sidecar}
    assert not taken & set(sidecar["ports"]), "the sidecar's ports clash with another service's"
