"""History events to (type name, JSON payload) and back: the only format persistence sees.

Field names are the dataclass field names; datetimes are ISO 8601 text (naive UTC, as the
engine keeps time); nested failure and parent records are objects; carried-over events are
nested encoded events. Decoding an unknown type or a malformed payload raises CodecError.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from datetime import datetime
from functools import lru_cache
from typing import Any

from orchestrator.engine import events as ev

_BY_NAME: dict[str, type[ev.HistoryEvent]] = {cls.__name__: cls for cls in ev.EVENT_TYPES}
_NESTED = {"FailureDetails": ev.FailureDetails, "ParentInfo": ev.ParentInfo}


class CodecError(ValueError):
    """A stored event that cannot be read back."""


#: Fields added after histories were first stored: left out while None, so events without
#: them encode exactly as before.
_OMIT_IF_NONE = frozenset({"propagated", "caller"})


def encode(event: ev.HistoryEvent) -> tuple[str, str]:
    """(type name, JSON payload) for a history event."""
    fields = _fields(event)
    for name in _OMIT_IF_NONE.intersection(fields):
        if fields[name] is None:
            del fields[name]
    return type(event).__name__, json.dumps(fields, separators=(",", ":"))


def decode(type_name: str, payload: str) -> ev.HistoryEvent:
    """The history event stored as (type name, JSON payload)."""
    cls = _BY_NAME.get(type_name)
    if cls is None:
        raise CodecError(f"Unknown history event type '{type_name}'.")
    try:
        return _from_plain(cls, json.loads(payload))
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise CodecError(f"Malformed {type_name} payload: {exc}") from exc


def _fields(value: Any) -> dict[str, Any]:
    return {f.name: _to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}


def _to_plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, ev.HistoryEvent):
        type_name, payload = encode(value)
        return {"type": type_name, "payload": payload}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _fields(value)
    if isinstance(value, (tuple, list)):
        return [_to_plain(v) for v in value]
    return value


@lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, vars(ev))


def _from_plain(cls: type, data: dict[str, Any]) -> Any:
    if not isinstance(data, dict):
        raise TypeError(f"expected an object for {cls.__name__}, got {type(data).__name__}")
    hints = _hints(cls)
    kwargs = {name: _field_value(hints[name], raw) for name, raw in data.items() if name in hints}
    return cls(**kwargs)


def _field_value(hint: Any, raw: Any) -> Any:
    if raw is None:
        return None
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    target = args[0] if typing.get_origin(hint) in (typing.Union, types.UnionType) else hint
    if target is datetime:
        return datetime.fromisoformat(raw)
    if isinstance(target, type) and target.__name__ in _NESTED:
        return _from_plain(target, raw)
    if typing.get_origin(target) is tuple:
        item = typing.get_args(target)[0]
        if item is ev.EventRaised:
            return tuple(decode(e["type"], e["payload"]) for e in raw)
        return tuple(raw)
    return raw
