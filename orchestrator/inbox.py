"""Inbox messages: history events waiting to be applied, with ids that make them idempotent.

Message ids that belong to one generation of one run carry that generation
(`task:<gen>:<id>`, `timer:<gen>:<id>`), so a late result from before a continue-as-new is
recognised and dropped instead of being mistaken for a task of the new generation.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from orchestrator.engine import codec
from orchestrator.engine import events as ev
from persistence.records import InstanceRecord, NewInboxMessage


def naive_utc(value: datetime) -> datetime:
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def aware_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def run_token(instance: InstanceRecord) -> str:
    """Tells two runs under one instance ID apart (a terminal ID can be started again)."""
    return format(int(aware_utc(instance.created_at).timestamp() * 1_000_000), "x")


def message(message_id: str, event: ev.HistoryEvent, visible_at: datetime | None = None) -> NewInboxMessage:
    type_name, payload = codec.encode(event)
    return NewInboxMessage(message_id=message_id, type=type_name, payload=payload, visible_at=visible_at)


def unique_message(event: ev.HistoryEvent, visible_at: datetime | None = None) -> NewInboxMessage:
    return message(f"msg:{uuid.uuid4().hex}", event, visible_at)


def timer_message_id(generation: int, timer_id: int) -> str:
    return f"timer:{generation}:{timer_id}"


def message_generation(message_id: str) -> int | None:
    """The generation a generation-scoped message belongs to, else None."""
    kind, _, rest = message_id.partition(":")
    if kind in ("task", "timer"):
        generation, _, _ = rest.partition(":")
        if generation.isdigit():
            return int(generation)
    return None
