"""An instance's history as people and tools read it: one entry per stored event, with the
name, event ID, status and a short description that `ledgerflow workflow history` and the
HTTP history endpoint show."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from orchestrator.engine import codec
from orchestrator.engine import events as ev
from orchestrator.engine.status import COMPLETED, CONTINUED_AS_NEW, FAILED, RUNNING, SUSPENDED, TERMINATED
from persistence.records import EventRecord

DETAILS_WIDTH = 80


@dataclass(frozen=True)
class HistoryEntry:
    generation: int
    sequence: int
    timestamp: datetime
    type: str
    name: str | None
    event_id: int | None
    elapsed: timedelta
    status: str | None
    details: str | None
    event: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "sequence": self.sequence,
            "timestamp": rfc3339(self.timestamp),
            "type": self.type,
            "name": self.name,
            "eventId": self.event_id,
            "elapsed": human_elapsed(self.elapsed),
            "status": self.status,
            "details": self.details,
            "event": self.event,
        }


def describe(records: Sequence[EventRecord]) -> list[HistoryEntry]:
    """Entries in order of sequence; `elapsed` is the time since the latest earlier event.

    An event from outside (raised, suspended, a result) carries the time it was sent, just
    before the OrchestratorStarted that applied it: measuring from the latest timestamp so
    far keeps ELAPSED from going negative or counting a stretch twice."""
    names: dict[int, str] = {}
    entries: list[HistoryEntry] = []
    latest: datetime | None = None
    for r in sorted(records, key=lambda r: (r.generation, r.sequence)):
        try:
            raw = json.loads(r.payload)
        except ValueError:
            raw = {"payload": r.payload}
        try:
            event: ev.HistoryEvent | None = codec.decode(r.type, r.payload)
        except Exception:  # an event this version cannot read is still shown
            event = None
        name, event_id, status, details = _describe(event, names) if event is not None else (None, None, None, None)
        elapsed = timedelta(0) if latest is None else max(r.timestamp - latest, timedelta(0))
        latest = r.timestamp if latest is None else max(latest, r.timestamp)
        entries.append(HistoryEntry(r.generation, r.sequence, r.timestamp, r.type, name, event_id, elapsed,
                                    status, details, raw if isinstance(raw, dict) else {"payload": raw}))
    return entries


def _describe(e: ev.HistoryEvent, names: dict[int, str]) -> tuple[str | None, int | None, str | None, str | None]:
    """(name, event id, status, details) of one event; remembers scheduled names by task id."""
    if isinstance(e, ev.ExecutionStarted):
        return e.name, None, RUNNING, _data("input", e.input)
    if isinstance(e, ev.OrchestratorStarted):
        return None, None, None, f"version={e.version}" if e.version else None
    if isinstance(e, ev.TaskScheduled):
        names[e.event_id] = e.name
        extra = f"app={e.app_id} " if e.app_id else ""
        extra += f"attempt={e.attempt} " if e.attempt > 1 else ""
        return e.name, e.event_id, None, (extra + (_data("input", e.input) or "")).strip() or None
    if isinstance(e, ev.SubOrchestrationInstanceCreated):
        names[e.event_id] = e.name
        return e.name, e.event_id, None, f"instanceID={e.instance_id}"
    if isinstance(e, (ev.TaskCompleted, ev.SubOrchestrationInstanceCompleted)):
        return names.get(e.task_id), e.task_id, COMPLETED, _data("result", e.result)
    if isinstance(e, (ev.TaskFailed, ev.SubOrchestrationInstanceFailed)):
        return names.get(e.task_id), e.task_id, FAILED, _failure(e.failure)
    if isinstance(e, ev.TimerCreated):
        return None, e.event_id, None, f"fireAt={rfc3339(e.fire_at)}"
    if isinstance(e, ev.TimerFired):
        return None, e.timer_id, None, f"fireAt={rfc3339(e.fire_at)}"
    if isinstance(e, ev.EventRaised):
        return e.name, None, None, _data("data", e.input)
    if isinstance(e, ev.ExecutionSuspended):
        return None, None, SUSPENDED, f"reason={e.reason}" if e.reason else None
    if isinstance(e, ev.ExecutionResumed):
        return None, None, RUNNING, f"reason={e.reason}" if e.reason else None
    if isinstance(e, ev.ExecutionTerminated):
        return None, None, TERMINATED, _data("output", e.output)
    if isinstance(e, ev.ExecutionCompleted):
        if e.failure is not None:
            return None, None, e.status, _failure(e.failure)
        return None, None, e.status, _data("output", e.result)
    if isinstance(e, ev.ContinuedAsNew):
        return None, None, CONTINUED_AS_NEW, _data("input", e.input)
    return None, None, None, None


def _data(label: str, text: str | None) -> str | None:
    return None if text is None else f"{label}={text}"


def _failure(failure: ev.FailureDetails) -> str:
    return f"{failure.error_type}: {failure.message}" if failure.error_type else failure.message


def truncate(text: str | None, width: int = DETAILS_WIDTH) -> str:
    if not text:
        return ""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def rfc3339(value: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, fractional seconds only when there are some (as protojson)."""
    value = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    micros = value.microsecond
    if micros:
        text += f".{micros:06d}" if micros % 1000 else f".{micros // 1000:03d}"
    return text + "Z"


def human_elapsed(delta: timedelta) -> str:
    """`0s`, `15ms`, `1.25s`, `3m4s`, `2h5m`, `3d4h`."""
    seconds = delta.total_seconds()
    if seconds < 1:
        return f"{round(seconds * 1000)}ms" if seconds > 0 else "0s"
    if seconds < 60:
        return f"{seconds:.2f}".rstrip("0").rstrip(".") + "s"
    return human_age(delta)


def human_age(delta: timedelta) -> str:
    """kubectl's short ages: `45s`, `5m30s`, `45m`, `5h30m`, `30h`, `3d5h`, `40d`, `2y30d`."""
    seconds = int(delta.total_seconds())
    if seconds < 0:
        return "0s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 120:
        return f"{seconds}s"
    if minutes < 10:
        return f"{minutes}m" + (f"{seconds % 60}s" if seconds % 60 else "")
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h" + (f"{minutes % 60}m" if minutes % 60 else "")
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{days}d" + (f"{hours % 24}h" if hours % 24 else "")
    if days < 365 * 2:
        return f"{days}d"
    if days < 365 * 8:
        return f"{days // 365}y" + (f"{days % 365}d" if days % 365 else "")
    return f"{days // 365}y"
