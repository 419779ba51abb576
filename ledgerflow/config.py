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
- LEDGERFLOW_CONFIG: a Dapr `Configuration` YAML for concurrency, pools, per-name limits and
  state retention (see `ledgerflow.workflow_config`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ledgerflow.workflow_config import WorkflowConfig


def default_database_url() -> str:
    path = Path.cwd() / ".ledgerflow" / "ledgerflow.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


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
            workflow=WorkflowConfig.load(),
        )
        return replace(settings, **{k: v for k, v in overrides.items() if v is not None})

    @property
    def embedded_broker(self) -> bool:
        return self.broker_url.startswith("memory://")
