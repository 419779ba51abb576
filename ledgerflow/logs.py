"""Structured logs: every record that concerns an instance carries its ID, workflow and app,
so one instance can be followed through the orchestrator, workers and beat.

Two formats: `text` (the default, `key=value` extras after the message) and `json`
(`LEDGERFLOW_LOG_FORMAT=json`): one JSON object per line with time, level, logger, message,
the instance fields, and `trace_id`/`span_id` while a span is active (or, on the
orchestrator, the trace of the instance the line is about).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

from opentelemetry import trace

_FIELDS = ("instance_id", "workflow", "app_id", "activity", "task_id")
FORMATS = ("text", "json")


class _KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = " ".join(f"{k}={getattr(record, k)}" for k in _FIELDS if getattr(record, k, None) is not None)
        return f"{line} {extras}" if extras else line


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        for key in _FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            entry["trace_id"], entry["span_id"] = f"{span.trace_id:032x}", f"{span.span_id:016x}"
        elif getattr(record, "trace_id", None):
            entry["trace_id"] = record.trace_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def formatter(log_format: str = "text") -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter()
    return _KeyValueFormatter("%(asctime)s %(levelname)s %(name)s pid=%(process)d %(message)s")


def configure_logging(level: str = "INFO", log_format: str = "text") -> None:
    """Ledgerflow's loggers at `level` in `log_format`; in JSON every other logger of the
    process (Celery's, uvicorn's) writes JSON lines too, through the root logger."""
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(log_format))
    root = logging.getLogger("ledgerflow")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
    if log_format == "json":
        everything = logging.getLogger()
        everything.handlers[:] = [handler]
        everything.setLevel(level.upper())
        logging.captureWarnings(True)  # warnings (Celery's about root, for one) as JSON lines too
