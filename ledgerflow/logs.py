"""Structured logs: every record that concerns an instance carries its ID, workflow and app,
so one instance can be followed through the orchestrator, workers and beat."""

from __future__ import annotations

import logging

_FIELDS = ("instance_id", "workflow", "app_id", "activity", "task_id")


class _KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = " ".join(f"{k}={getattr(record, k)}" for k in _FIELDS if getattr(record, k, None) is not None)
        return f"{line} {extras}" if extras else line


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(_KeyValueFormatter("%(asctime)s %(levelname)s %(name)s pid=%(process)d %(message)s"))
    root = logging.getLogger("ledgerflow")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
