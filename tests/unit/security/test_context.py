"""The security context is built from explicit values (`SecurityConfig`), never from the
environment; `ledgerflow.config` reads the variables into it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ledgerflow.config import Settings, security_from_env
from security import context as sec_context
from security.certs import init_certs


def test_the_variables_become_a_config_with_the_documented_defaults() -> None:
    assert security_from_env({}) == sec_context.SecurityConfig()
    config = security_from_env({"LEDGERFLOW_SIGNING": "Yes", "LEDGERFLOW_CERTS_DIR": "/c",
                                "LEDGERFLOW_CA_FILE": "/x/ca.pem", "LEDGERFLOW_RESOURCES_DIR": "/r",
                                "LEDGERFLOW_SIGNING_VERIFY": " FULL "})
    assert config == sec_context.SecurityConfig(signing=True, certs_dir=Path("/c"), ca_file=Path("/x/ca.pem"),
                                                resources_dir=Path("/r"), verify_mode="full")
    assert config.identity_files("orders") == (Path("/c/orders.crt"), Path("/c/orders.key"), Path("/x/ca.pem"))


def test_settings_carry_every_value_with_its_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LEDGERFLOW_MAX_HISTORY_EVENTS", "LEDGERFLOW_MAX_PAYLOAD_BYTES", "LEDGERFLOW_DB_LOCK_TIMEOUT",
                 "LEDGERFLOW_DB_IDLE_IN_TRANSACTION_TIMEOUT", "LEDGERFLOW_APP_ID", "APP_ID"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings.from_env()
    assert (settings.max_history_events, settings.max_payload_bytes) == (50_000, 4 * 1024 * 1024)
    assert settings.store_options == {"idle_in_transaction_timeout": 60.0, "lock_timeout": 5.0}
    monkeypatch.setenv("APP_ID", "orders")
    monkeypatch.setenv("LEDGERFLOW_MAX_HISTORY_EVENTS", "0")
    monkeypatch.setenv("LEDGERFLOW_MAX_PAYLOAD_BYTES", "1000")
    monkeypatch.setenv("LEDGERFLOW_DB_LOCK_TIMEOUT", "0")
    settings = Settings.from_env()
    assert (settings.app_id, settings.max_history_events, settings.store_options["lock_timeout"]) == ("orders", 0, 0)
    assert settings.activity_config.app_id == "orders" and settings.activity_config.max_payload_bytes == 1000


def test_current_builds_lazily_and_picks_up_a_certificate_written_later(tmp_path: Path) -> None:
    sec_context.reset_cache()
    config = sec_context.SecurityConfig(signing=True, certs_dir=tmp_path)
    with pytest.raises(sec_context.SigningConfigurationError, match="ledgerflow certs init --app-id orders"):
        sec_context.current("orders", config)
    init_certs(tmp_path, "orders")
    sec_context.reset_cache()
    ctx = sec_context.current("orders", config)
    assert ctx.signing and ctx.identity is not None and ctx.identity.app_id == "orders"
    assert sec_context.current("orders", config) is ctx  # cached
    assert not sec_context.current("orders", sec_context.SecurityConfig()).signing  # another config, another context
    sec_context.reset_cache()


def test_nothing_here_reads_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    sec_context.reset_cache()
    monkeypatch.setenv("LEDGERFLOW_SIGNING", "on")
    monkeypatch.setenv("LEDGERFLOW_CERTS_DIR", str(tmp_path / "nowhere"))
    assert not sec_context.current("orders", sec_context.SecurityConfig()).signing
    assert "LEDGERFLOW_SIGNING" in os.environ  # the variable is there; only config.py reads it
    sec_context.reset_cache()


def test_the_payload_limit_is_an_argument() -> None:
    from workers.activity import PayloadTooLargeError, check_payload

    assert check_payload("x" * 100, "Input", 0) == "x" * 100  # 0: no limit
    assert check_payload("x" * 100, "Input", 100) == "x" * 100
    with pytest.raises(PayloadTooLargeError, match="101 bytes of JSON, over the limit of 100 bytes"):
        check_payload("x" * 101, "Input", 100)
