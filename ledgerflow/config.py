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
- LEDGERFLOW_MAX_HISTORY_EVENTS: a step that would take a run's history to this many events
  fails the run instead, with HistoryLimitExceeded (50,000; 0: no limit).
- LEDGERFLOW_CONFIG: a Dapr `Configuration` YAML for concurrency, pools, per-name limits and
  state retention (see `ledgerflow.workflow_config`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ledgerflow.errors import SetupError
from ledgerflow.workflow_config import WorkflowConfig
from orchestrator.rules import DEFAULT_MAX_HISTORY_EVENTS
from persistence.engine import normalize_url


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
    workflow: WorkflowConfig = field(default_factory=WorkflowConfig)

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        env = os.environ
        settings = cls(
            database_url=env.get("LEDGERFLOW_DATABASE_URL") or default_database_url(),
            broker_url=env.get("LEDGERFLOW_BROKER_URL") or "memory://localhost/",
            app_id=env.get("LEDGERFLOW_APP_ID") or env.get("APP_ID") or "default",
            activity_lease=float(env.get("LEDGERFLOW_ACTIVITY_LEASE", 3600)),
            visibility_timeout=int(env.get("LEDGERFLOW_VISIBILITY_TIMEOUT", 3600)),
            max_deliveries=int(env.get("LEDGERFLOW_MAX_DELIVERIES", 8)),
            tick_interval=float(env.get("LEDGERFLOW_TICK_INTERVAL", 0.2)),
            task_events=env.get("LEDGERFLOW_TASK_EVENTS", "off").lower() in ("on", "1", "true", "yes"),
            batch_size=max(1, int(env.get("LEDGERFLOW_BATCH_SIZE", 64))),
            batch_linger_ms=max(0.0, float(env.get("LEDGERFLOW_BATCH_LINGER_MS", 4.0))),
            max_history_events=int(env.get("LEDGERFLOW_MAX_HISTORY_EVENTS", DEFAULT_MAX_HISTORY_EVENTS) or 0),
            workflow=WorkflowConfig.load(),
        )
        return replace(settings, **{k: v for k, v in overrides.items() if v is not None})

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
        return self.broker_url.startswith("memory://")
