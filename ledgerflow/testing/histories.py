"""Recorded histories as the replayer reads them.

Three JSON shapes are read, each a run's events in stored order:

* what `ledgerflow wf history ID -o json` prints: a list of entries, each with the event's
  `type` and its stored fields under `event` (the instance ID is the file's name, without
  `.json`);
* the HTTP history endpoint's body: `{"instanceID": ..., "events": [entries]}`;
* a list of `{"type", "payload"}` pairs, `payload` the stored JSON text (the golden
  histories under `tests/golden/`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.engine import codec
from orchestrator.engine import events as ev
from persistence.records import EventRecord


class HistoryFormatError(ValueError):
    """A file or JSON value that is not a recorded history."""


@dataclass(frozen=True)
class RecordedHistory:
    instance_id: str
    events: Sequence[ev.HistoryEvent]


def parse(data: Any, instance_id: str | None = None) -> RecordedHistory:
    """A history from parsed JSON; `instance_id` names it when the JSON does not."""
    if isinstance(data, dict) and isinstance(data.get("events"), list):
        instance_id = data.get("instanceID") or instance_id
        data = data["events"]
    if not isinstance(data, list):
        raise HistoryFormatError("expected a list of history entries or an object with 'events'")
    if not instance_id:
        raise HistoryFormatError("the history does not name its instance")
    return RecordedHistory(instance_id, [_event(entry, index) for index, entry in enumerate(data)])


def load_file(path: Path) -> RecordedHistory:
    """The history in a JSON file; a list without an instance ID is named after the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise HistoryFormatError(f"cannot read it as JSON ({exc})") from exc
    return parse(data, path.stem)


def files(paths: Iterable[Path]) -> Iterator[Path]:
    """Each path, a directory standing for its `*.json` files (sorted, not recursive)."""
    for path in paths:
        if path.is_dir():
            yield from sorted(path.glob("*.json"))
        else:
            yield path


def from_records(instance_id: str, records: Sequence[EventRecord]) -> RecordedHistory:
    """A history as the store holds it."""
    return RecordedHistory(instance_id, [_decode(r.type, r.payload, r.sequence) for r in records])


def _event(entry: Any, index: int) -> ev.HistoryEvent:
    if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
        raise HistoryFormatError(f"entry {index} has no event type")
    if isinstance(entry.get("payload"), str):
        return _decode(entry["type"], entry["payload"], index)
    if isinstance(entry.get("event"), dict):
        return _decode(entry["type"], json.dumps(entry["event"]), index)
    raise HistoryFormatError(f"entry {index} ({entry['type']}) has neither 'event' nor 'payload'")


def _decode(type_name: str, payload: str, index: int) -> ev.HistoryEvent:
    try:
        return codec.decode(type_name, payload)
    except codec.CodecError as exc:
        raise HistoryFormatError(f"event #{index}: {exc}") from exc
