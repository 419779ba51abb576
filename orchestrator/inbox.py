"""Inbox messages: history events waiting to be applied, with IDs that make them
idempotent (the IDs of results are built in `brokers.wire`)."""

from __future__ import annotations

import uuid
from datetime import datetime

from orchestrator.engine import codec
from orchestrator.engine import events as ev
from persistence.records import InstanceRecord, NewInboxMessage, as_utc


def run_token(instance: InstanceRecord) -> str:
    """Tells two runs under one instance ID apart (a terminal ID can be started again)."""
    return format(int(as_utc(instance.created_at).timestamp() * 1_000_000), "x")


def message(message_id: str, event: ev.HistoryEvent, visible_at: datetime | None = None) -> NewInboxMessage:
    type_name, payload = codec.encode(event)
    return NewInboxMessage(message_id=message_id, type=type_name, payload=payload, visible_at=visible_at)


def unique_message(event: ev.HistoryEvent, visible_at: datetime | None = None) -> NewInboxMessage:
    return message(f"msg:{uuid.uuid4().hex}", event, visible_at)

