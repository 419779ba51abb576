"""Workflow configuration: Dapr's `Configuration` resource (spec.workflow) plus Ledgerflow's
pools and per-name limits, from one YAML file (`LEDGERFLOW_CONFIG`) or environment variables.

```yaml
apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata: {name: ledgerflow}
spec:
  workflow:
    maxConcurrentWorkflowInvocations: 16     # per process
    maxConcurrentActivityInvocations: 16     # per process
    stateRetentionPolicy:                    # purge terminal instances after these durations
      anyTerminal: 720h
      completed: 24h
      failed: 168h
      terminated: 168h
    pools:                                   # activity name -> pool (ledgerflow.<app>.activities.<pool>)
      resize_image: media
    limits:                                  # enforced across all processes
      activities: {charge_card: 2}           # at most 2 running at once
      workflows: {nightly_report: 1}         # at most 1 instance running at once
```

Environment variables override the file: LEDGERFLOW_MAX_CONCURRENT_WORKFLOW_INVOCATIONS,
LEDGERFLOW_MAX_CONCURRENT_ACTIVITY_INVOCATIONS, LEDGERFLOW_RETENTION_ANY_TERMINAL /
_COMPLETED / _FAILED / _TERMINATED, LEDGERFLOW_POOLS ("name=pool,name=pool"),
LEDGERFLOW_ACTIVITY_LIMITS and LEDGERFLOW_WORKFLOW_LIMITS ("name=N,name=N").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s|d)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_RETENTION_KEYS = {"anyTerminal": "ANY_TERMINAL", "completed": "COMPLETED", "failed": "FAILED",
                   "terminated": "TERMINATED"}


class ConfigurationError(ValueError):
    pass


def parse_duration(text: str | int | float) -> timedelta:
    """Go-style durations as Dapr writes them: `720h`, `1h30m`, `45s`, `500ms` (a bare number is seconds)."""
    if isinstance(text, (int, float)):
        return timedelta(seconds=text)
    value = str(text).strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return timedelta(seconds=float(value))
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise ConfigurationError(f"Invalid duration {text!r}: use forms like 720h, 1h30m, 45s or 500ms.")
    return timedelta(seconds=sum(float(n) * _UNITS[u] for n, u in parts))


@dataclass(frozen=True)
class WorkflowConfig:
    max_concurrent_workflow_invocations: int | None = None
    max_concurrent_activity_invocations: int | None = None
    retention: dict[str, timedelta] = field(default_factory=dict)  # status (or "anyTerminal") -> age
    pools: dict[str, str] = field(default_factory=dict)
    activity_limits: dict[str, int] = field(default_factory=dict)
    workflow_limits: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | None = None, env: Mapping[str, str] | None = None) -> WorkflowConfig:
        """From the YAML at `path` (else env's LEDGERFLOW_CONFIG) and the variables of `env`
        (`ledgerflow.config.Settings.from_env` passes the environment; None: no variables)."""
        env = {} if env is None else env
        path = path or env.get("LEDGERFLOW_CONFIG")
        spec: dict[str, Any] = {}
        if path:
            spec = _workflow_spec(Path(path))
        retention = {key: parse_duration(v) for key, v in (spec.get("stateRetentionPolicy") or {}).items()}
        unknown = set(retention) - set(_RETENTION_KEYS)
        if unknown:
            raise ConfigurationError(f"Unknown stateRetentionPolicy keys {sorted(unknown)}; use {sorted(_RETENTION_KEYS)}.")
        for key, suffix in _RETENTION_KEYS.items():
            if env.get(f"LEDGERFLOW_RETENTION_{suffix}"):
                retention[key] = parse_duration(env[f"LEDGERFLOW_RETENTION_{suffix}"])
        limits = spec.get("limits") or {}
        return cls(
            max_concurrent_workflow_invocations=_int(env.get("LEDGERFLOW_MAX_CONCURRENT_WORKFLOW_INVOCATIONS"),
                                                     spec.get("maxConcurrentWorkflowInvocations")),
            max_concurrent_activity_invocations=_int(env.get("LEDGERFLOW_MAX_CONCURRENT_ACTIVITY_INVOCATIONS"),
                                                     spec.get("maxConcurrentActivityInvocations")),
            retention=retention,
            pools={**{str(k): str(v) for k, v in (spec.get("pools") or {}).items()}, **_pairs(env.get("LEDGERFLOW_POOLS"))},
            activity_limits={**_limits(limits.get("activities")), **_limits(_pairs(env.get("LEDGERFLOW_ACTIVITY_LIMITS")))},
            workflow_limits={**_limits(limits.get("workflows")), **_limits(_pairs(env.get("LEDGERFLOW_WORKFLOW_LIMITS")))},
        )


def _workflow_spec(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"Cannot read the configuration file {path}: {exc}") from exc
    if document.get("kind", "Configuration") != "Configuration":
        raise ConfigurationError(f"{path}: kind must be Configuration, not {document.get('kind')!r}.")
    return (document.get("spec") or {}).get("workflow") or {}


def _int(env_value: str | None, file_value: Any) -> int | None:
    value = env_value if env_value else file_value
    if value is None:
        return None
    number = int(value)
    if number < 1:
        raise ConfigurationError(f"Concurrency limits must be at least 1, got {number}.")
    return number


def _pairs(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    pairs = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ConfigurationError(f"Expected name=value pairs separated by commas, got {text!r}.")
        pairs[name.strip()] = value.strip()
    return pairs


def _limits(raw: dict[str, Any] | None) -> dict[str, int]:
    limits = {}
    for name, value in (raw or {}).items():
        limit = int(value)
        if limit < 1:
            raise ConfigurationError(f"The limit for '{name}' must be at least 1, got {limit}.")
        limits[str(name)] = limit
    return limits
