"""User values to JSON text and back, byte-compatible with Dapr's Python SDK.

`json.dumps` defaults (", " and ": " separators, keys in insertion order, ASCII escaped).
Dataclasses, namedtuples and SimpleNamespace are written as objects carrying the
`__durabletask_autoobject__` marker and read back as SimpleNamespace, as durabletask does;
pydantic-style models (anything with `model_dump`) are dumped with `mode="json"`.
"""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace
from typing import Any

AUTO_SERIALIZED = "__durabletask_autoobject__"


class SerializationError(TypeError):
    """A value that cannot be written as JSON; the message names the type and the call."""


class _Encoder(json.JSONEncoder):
    def encode(self, o: Any) -> str:
        if isinstance(o, tuple) and hasattr(o, "_fields") and hasattr(o, "_asdict"):
            o = {**o._asdict(), AUTO_SERIALIZED: True}
        return super().encode(o)

    def default(self, o: Any) -> Any:
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            return {**dataclasses.asdict(o), AUTO_SERIALIZED: True}
        if isinstance(o, SimpleNamespace):
            return {**vars(o), AUTO_SERIALIZED: True}
        model_dump = getattr(o, "model_dump", None)
        if callable(model_dump):
            return model_dump(mode="json")
        return super().default(o)


def _decode_object(d: dict[str, Any]) -> Any:
    if d.pop(AUTO_SERIALIZED, None):
        return SimpleNamespace(**d)
    return d


def to_json(value: Any, *, what: str = "value") -> str | None:
    """JSON text of `value` (None stays None). `what` names the call in the error."""
    if value is None:
        return None
    try:
        return json.dumps(value, cls=_Encoder)
    except (TypeError, ValueError) as exc:
        raise SerializationError(
            f"{what} is not JSON-serializable: {type(value).__name__} value ({exc}). "
            "Pass JSON types, dataclasses, namedtuples, SimpleNamespace or pydantic models."
        ) from exc


def from_json(text: str | None) -> Any:
    """The value behind JSON text written by `to_json` (None and "" read as None)."""
    if text is None or text == "":
        return None
    return json.loads(text, object_hook=_decode_object)
