"""Settings from the environment; the embedded default needs none of them.

- LEDGERFLOW_DATABASE_URL: default a SQLite file under `.ledgerflow/` in the working directory.
- LEDGERFLOW_BROKER_URL: default Celery's in-memory transport (`memory://`).
- LEDGERFLOW_APP_ID, else APP_ID, else `default`.
- LEDGERFLOW_ACTIVITY_LEASE: seconds before a sent activity call that no live worker holds and
  that has no result is dispatched again (3600): the last resort; a dead worker's calls and
  calls the broker lost are re-sent within seconds by liveness (`brokers.liveness`).
- LEDGERFLOW_VISIBILITY_TIMEOUT: Redis visibility timeout in seconds (3600): a received,
  unacknowledged message is given to another worker after this long; a copy of a call a live
  worker still runs is not run (`brokers.liveness`).
- LEDGERFLOW_TICK_INTERVAL: seconds between timer/reconcile ticks in-process (0.2).
- LEDGERFLOW_TASK_EVENTS: `on` makes workers send Celery task events from the start; `off`
  (default) saves a broker round trip per task state change. Flower turns events on at the
  running workers by remote control when it starts, so it works either way.
- LEDGERFLOW_BATCH_SIZE: most instances an orchestrator steps in one transaction (64); also
  the most wake-up and result messages it takes into one batch.
- LEDGERFLOW_BATCH_LINGER_MS: how long a batch waits for more messages before it runs (4).
- LEDGERFLOW_CONFIG: a Dapr `Configuration` YAML for concurrency, pools, per-name limits and
  state retention (see `ledgerflow.workflow_config`; its LEDGERFLOW_MAX_CONCURRENT_*,
  LEDGERFLOW_POOLS, LEDGERFLOW_*_LIMITS and LEDGERFLOW_RETENTION_* variables too).
- LEDGERFLOW_MAX_HISTORY_EVENTS: a step that would take a run's history to this many events
  fails the run instead, with HistoryLimitExceeded (50,000; 0: no limit).
- LEDGERFLOW_MAX_PAYLOAD_BYTES: largest activity input or output in bytes of JSON (4 MiB; 0:
  no limit; see `workers.activity`).
- LEDGERFLOW_DB_IDLE_IN_TRANSACTION_TIMEOUT (60) and LEDGERFLOW_DB_LOCK_TIMEOUT (5): PostgreSQL
  session limits in seconds, 0 off (see `persistence.engine`).
- LEDGERFLOW_SIGNING, LEDGERFLOW_SIGNING_VERIFY, LEDGERFLOW_CERTS_DIR, LEDGERFLOW_CERT_FILE,
  LEDGERFLOW_KEY_FILE, LEDGERFLOW_CA_FILE, LEDGERFLOW_RESOURCES_DIR: history signing and access
  policies (`security.context.SecurityConfig`).
- LEDGERFLOW_API_TOKEN (else DAPR_API_TOKEN) and LEDGERFLOW_API_*: the HTTP API (`ApiSettings`).

This is the only module that reads the environment for Ledgerflow's own variables; everything
else takes its configuration as arguments. (The OpenTelemetry SDK's OTEL_* variables and
prometheus_client's PROMETHEUS_MULTIPROC_DIR are read by `telemetry.environment`, as those
libraries define them; LEDGERFLOW_FAULT_* are test-only hooks in `orchestrator.faults`.)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from brokers import urls as broker_urls
from ledgerflow.errors import SetupError
from ledgerflow.workflow_config import WorkflowConfig
from orchestrator.rules import DEFAULT_MAX_HISTORY_EVENTS
from persistence import engine as engine_mod
from persistence.engine import normalize_url
from security import context as sec_context
from workers import activity

#: Values that turn a LEDGERFLOW_* switch on.
ON_VALUES = ("on", "1", "true", "yes")


def app_id_from_env(env: Mapping[str, str] | None = None) -> str:
    """LEDGERFLOW_APP_ID, else APP_ID, else `default`."""
    env = os.environ if env is None else env
    return env.get("LEDGERFLOW_APP_ID") or env.get("APP_ID") or "default"


def security_from_env(env: Mapping[str, str] | None = None) -> sec_context.SecurityConfig:
    """History signing and access policies: LEDGERFLOW_SIGNING and friends (see `security.context`)."""
    env = os.environ if env is None else env

    def path(name: str) -> Path | None:
        return Path(env[name]) if env.get(name) else None

    return sec_context.SecurityConfig(
        signing=env.get("LEDGERFLOW_SIGNING", "off").strip().lower() in ON_VALUES,
        certs_dir=path("LEDGERFLOW_CERTS_DIR"), cert_file=path("LEDGERFLOW_CERT_FILE"),
        key_file=path("LEDGERFLOW_KEY_FILE"), ca_file=path("LEDGERFLOW_CA_FILE"),
        resources_dir=path("LEDGERFLOW_RESOURCES_DIR"),
        verify_mode=env.get("LEDGERFLOW_SIGNING_VERIFY", "head").strip().lower(),
    )


def default_database_url() -> str:
    """The embedded default's SQLite file in the working directory (created by the runtime
    when it first opens it, never by a management command)."""
    return f"sqlite:///{Path.cwd() / '.ledgerflow' / 'ledgerflow.db'}"


@dataclass(frozen=True)
class Settings:
    database_url: str
    broker_url: str
    app_id: str
    activity_lease: float = 3600.0
    visibility_timeout: int = 3600
    max_deliveries: int = 8
    tick_interval: float = 0.2
    task_events: bool = False
    batch_size: int = 64
    batch_linger_ms: float = 4.0
    max_history_events: int = DEFAULT_MAX_HISTORY_EVENTS
    max_payload_bytes: int = activity.DEFAULT_MAX_PAYLOAD_BYTES
    db_idle_in_transaction_timeout: float = engine_mod.IDLE_IN_TRANSACTION_TIMEOUT_SECONDS
    db_lock_timeout: float = engine_mod.LOCK_TIMEOUT_SECONDS
    security: sec_context.SecurityConfig = field(default_factory=sec_context.SecurityConfig)
    workflow: WorkflowConfig = field(default_factory=WorkflowConfig)

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        env = os.environ
        settings = cls(
            database_url=env.get("LEDGERFLOW_DATABASE_URL") or default_database_url(),
            broker_url=env.get("LEDGERFLOW_BROKER_URL") or "memory://localhost/",
            app_id=app_id_from_env(env),
            activity_lease=float(env.get("LEDGERFLOW_ACTIVITY_LEASE", 3600)),
            visibility_timeout=int(env.get("LEDGERFLOW_VISIBILITY_TIMEOUT", 3600)),
            max_deliveries=int(env.get("LEDGERFLOW_MAX_DELIVERIES", 8)),
            tick_interval=float(env.get("LEDGERFLOW_TICK_INTERVAL", 0.2)),
            task_events=env.get("LEDGERFLOW_TASK_EVENTS", "off").lower() in ON_VALUES,
            batch_size=max(1, int(env.get("LEDGERFLOW_BATCH_SIZE", 64))),
            batch_linger_ms=max(0.0, float(env.get("LEDGERFLOW_BATCH_LINGER_MS", 4.0))),
            max_history_events=int(env.get("LEDGERFLOW_MAX_HISTORY_EVENTS", DEFAULT_MAX_HISTORY_EVENTS) or 0),
            max_payload_bytes=int(env.get("LEDGERFLOW_MAX_PAYLOAD_BYTES", activity.DEFAULT_MAX_PAYLOAD_BYTES) or 0),
            db_idle_in_transaction_timeout=float(env.get("LEDGERFLOW_DB_IDLE_IN_TRANSACTION_TIMEOUT",
                                                         engine_mod.IDLE_IN_TRANSACTION_TIMEOUT_SECONDS)),
            db_lock_timeout=float(env.get("LEDGERFLOW_DB_LOCK_TIMEOUT", engine_mod.LOCK_TIMEOUT_SECONDS)),
            security=security_from_env(env),
            workflow=WorkflowConfig.load(env=env),
        )
        return replace(settings, **{k: v for k, v in overrides.items() if v is not None})

    @property
    def activity_config(self) -> activity.ActivityConfig:
        """What activity workers are told (`workers.activity.ActivityConfig`)."""
        return activity.ActivityConfig(self.app_id, self.max_payload_bytes, self.security)

    @property
    def store_options(self) -> dict[str, float]:
        """Keyword arguments of `persistence.store.Store` (its engine's session limits)."""
        return {"idle_in_transaction_timeout": self.db_idle_in_transaction_timeout,
                "lock_timeout": self.db_lock_timeout}

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite database file; None when the database is not SQLite."""
        url = normalize_url(self.database_url)
        return Path(url.database or "") if url.get_backend_name() == "sqlite" else None

    def require_database(self) -> None:
        """Management commands act on an existing database and never create one: a SQLite
        file that is not there means the command runs in the wrong directory."""
        path = self.sqlite_path
        if path is not None and not path.exists():
            raise SetupError(f"no Ledgerflow database at {path.resolve()}; run this from the directory of "
                             "`ledgerflow dev` (its database is ./.ledgerflow/ledgerflow.db there), or set "
                             "LEDGERFLOW_DATABASE_URL to the database your runtime uses")

    @property
    def embedded_broker(self) -> bool:
        return broker_urls.is_memory(self.broker_url)


@dataclass(frozen=True)
class ApiSettings:
    """HTTP settings; `from_env` reads LEDGERFLOW_API_TOKEN (else DAPR_API_TOKEN) and the
    LEDGERFLOW_API_* limits."""

    token: str | None = field(default=None, repr=False)
    max_body_bytes: int = 4 * 1024 * 1024
    body_timeout: float = 30.0
    header_timeout: float = 10.0
    keep_alive_timeout: int = 5
    max_header_bytes: int = 16 * 1024

    @classmethod
    def from_env(cls, **overrides: Any) -> ApiSettings:
        env = os.environ
        settings = cls(
            token=env.get("LEDGERFLOW_API_TOKEN") or env.get("DAPR_API_TOKEN") or None,
            max_body_bytes=int(env.get("LEDGERFLOW_API_MAX_BODY_BYTES", cls.max_body_bytes)),
            body_timeout=float(env.get("LEDGERFLOW_API_BODY_TIMEOUT", cls.body_timeout)),
            header_timeout=float(env.get("LEDGERFLOW_API_HEADER_TIMEOUT", cls.header_timeout)),
            keep_alive_timeout=int(env.get("LEDGERFLOW_API_KEEP_ALIVE_TIMEOUT", cls.keep_alive_timeout)),
        )
        return replace(settings, **{k: v for k, v in overrides.items() if v is not None})
