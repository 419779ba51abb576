"""What travels through the broker between orchestrators and workers: activity requests,
result messages, and the message IDs that make results idempotent.

Celery carries them as JSON objects; both sides build and read them only through these
types, so a field is named in one place. Message IDs scoped to one generation of a run carry
that generation (`task:<gen>:<id>`, `timer:<gen>:<id>`): a late result from before a
continue-as-new is recognised and dropped instead of being taken for a task of the new one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any

#: The W3C trace context of the orchestrator's client span for a call.
TRACEPARENT = "traceparent"


def task_message_id(generation: int, task_id: int) -> str:
    """An activity call's result (and its outbox row's dedup key): one per task, so a
    redelivered result is dropped, not applied twice."""
    return f"task:{generation}:{task_id}"


def timer_message_id(generation: int, timer_id: int) -> str:
    return f"timer:{generation}:{timer_id}"


def child_message_id(task_id: int, child_instance_id: str, child_run: str) -> str:
    """A child run's report to its parent: one per run of the child."""
    return f"child:{task_id}:{child_instance_id}:{child_run}"


def message_generation(message_id: str) -> int | None:
    """The generation a generation-scoped message belongs to, else None."""
    kind, _, rest = message_id.partition(":")
    if kind in ("task", "timer"):
        generation, _, _ = rest.partition(":")
        if generation.isdigit():
            return int(generation)
    return None


def is_task_result(message_id: str) -> bool:
    return message_id.startswith("task:")


@dataclass(frozen=True)
class ActivityRequest:
    """One activity call, as the orchestrator sends it to the called app's pool."""

    instance_id: str
    #: the calling workflow's app (results go back to it)
    app_id: str
    #: the app whose workers run the call
    target_app_id: str
    pool: str | None
    generation: int
    #: the calling run (`orchestrator.inbox.run_token`); None in requests of older versions
    run: str | None
    task_id: int
    name: str
    input: str | None
    #: stable over retries of one call: `<instance>:<run>:<generation>:<first task id>`
    execution_id: str
    attempt: int = 1
    traceparent: str | None = None
    #: the caller's history, when the call propagates it (JSON text, signed when signing)
    propagated: str | None = None
    #: the caller's attestation of `canonical()` (signing on)
    caller: dict[str, Any] | None = None

    _OPTIONAL = ("traceparent", "propagated", "caller")

    def to_wire(self) -> dict[str, Any]:
        """The JSON object sent; optional fields appear only when set."""
        data = asdict(self)
        for name in self._OPTIONAL:
            if data[name] is None:
                del data[name]
        return data

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> ActivityRequest:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def canonical(self) -> str:
        """The text the caller's attestation signs: every sent field but the attestation."""
        data = self.to_wire()
        data.pop("caller", None)
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @property
    def result_message_id(self) -> str:
        return task_message_id(self.generation, self.task_id)

    @property
    def delivery_key(self) -> str:
        """One delivery of one attempt of the call (counts redeliveries of the same message)."""
        return f"{self.execution_id}:{self.attempt}"


@dataclass(frozen=True)
class ResultMessage:
    """A message for a workflow's inbox from outside its step: an activity's result."""

    message_id: str
    #: the history event's type and its codec payload
    type: str
    payload: str
    generation: int | None = None
    run: str | None = None

    def to_wire(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> ResultMessage:
        return cls(str(data["message_id"]), str(data["type"]), str(data["payload"]), data.get("generation"),
                   data.get("run"))
