"""Plain records that cross the persistence boundary.

Every datetime here is timezone-aware UTC: the store normalises on the way in (a naive
datetime is taken to be UTC) and on the way out (SQLite keeps naive text).  Payloads are
opaque strings (JSON text made by the engine's codec); persistence never parses them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timezone

# The engine's status names (orchestrator/engine/status.py), copied because persistence
# cannot import the engine; tests/unit/persistence/test_status_names.py proves them equal.
PENDING = "PENDING"
RUNNING = "RUNNING"
SUSPENDED = "SUSPENDED"
STALLED = "STALLED"
COMPLETED = "COMPLETED"
FAILED = "FAILED"
TERMINATED = "TERMINATED"

STATUSES: frozenset[str] = frozenset(
    {PENDING, RUNNING, SUSPENDED, STALLED, COMPLETED, FAILED, TERMINATED}
)
TERMINAL_STATUSES: frozenset[str] = frozenset({COMPLETED, FAILED, TERMINATED})

# Outbox kinds the store treats specially; any other string is allowed.
OUTBOX_ORCHESTRATE = "orchestrate"
OUTBOX_ACTIVITY = "activity"


def utcnow() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(timezone.utc)


def as_utc(value: datetime) -> datetime:
    """Return ``value`` as aware UTC; a naive datetime is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def is_terminal(status: str) -> bool:
    return status in TERMINAL_STATUSES


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    instance_id: str
    app_id: str
    name: str
    status: str
    input: str | None
    output: str | None
    custom_status: str | None
    failure: str | None
    generation: int
    parent_instance_id: str | None
    parent_app_id: str | None
    parent_task_id: int | None
    created_at: datetime
    updated_at: datetime
    start_at: datetime | None
    completed_at: datetime | None
    step_count: int
    signed: bool
    signature_head: bytes | None = None
    signed_events: int = 0
    trace_context: str | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


# Columns a step may change with StepTx.update_instance().
INSTANCE_COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(InstanceRecord))


@dataclass(frozen=True, slots=True)
class NewInstance:
    instance_id: str
    app_id: str
    name: str
    input: str | None = None
    status: str = PENDING
    parent_instance_id: str | None = None
    parent_app_id: str | None = None
    parent_task_id: int | None = None
    start_at: datetime | None = None
    created_at: datetime | None = None  # None: now
    trace_context: str | None = None  # the creating span's W3C traceparent


@dataclass(frozen=True, slots=True)
class EventRecord:
    generation: int
    sequence: int
    type: str
    payload: str
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class NewEvent:
    sequence: int
    type: str
    payload: str
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class SignatureRecord:
    """A signed batch of history events (see security/chain.py)."""

    generation: int
    start_sequence: int
    event_count: int
    previous_digest: bytes
    events_digest: bytes
    cert_id: int
    signed_at: datetime
    signature: bytes


@dataclass(frozen=True, slots=True)
class NewSignature:
    start_sequence: int
    event_count: int
    previous_digest: bytes
    events_digest: bytes
    cert_id: int
    signed_at: datetime
    signature: bytes


@dataclass(frozen=True, slots=True)
class InboxRecord:
    """A message in an instance's inbox. In a batch, a negative ``id`` marks a message that
    came with the batch and is not stored (see ``persistence.batch.BatchTx.arrive``)."""

    id: int
    instance_id: str
    message_id: str
    type: str
    payload: str
    visible_at: datetime
    created_at: datetime


@dataclass(frozen=True, slots=True)
class NewInboxMessage:
    message_id: str
    type: str
    payload: str
    visible_at: datetime | None = None  # None: now (for a start message: start_at or now)


@dataclass(frozen=True, slots=True)
class TimerRecord:
    id: int
    instance_id: str
    app_id: str
    generation: int
    timer_id: int
    fire_at: datetime


@dataclass(frozen=True, slots=True)
class NewTimer:
    """A timer of the locked instance; app_id and generation come from that instance."""

    timer_id: int
    fire_at: datetime


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    id: int
    instance_id: str | None
    app_id: str
    kind: str
    dedup_key: str | None
    payload: str
    created_at: datetime
    sent_at: datetime | None
    lease_until: datetime | None
    attempts: int


@dataclass(frozen=True, slots=True)
class NewOutbox:
    app_id: str
    kind: str
    payload: str
    instance_id: str | None = None
    dedup_key: str | None = None
