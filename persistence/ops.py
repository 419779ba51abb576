"""SQL operations on an open connection, shared by ``Store`` and ``StepTx``.

Nothing here begins or commits: the caller owns the transaction.  Row locks use
``FOR NO KEY UPDATE`` on PostgreSQL where the row is only updated, so that inserting an
inbox row for a locked instance (its foreign key takes ``FOR KEY SHARE``) does not wait
for the step that holds the lock.  SQLite ignores the locking clauses: there,
``BEGIN IMMEDIATE`` has already taken the single write lock.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection

from persistence import errors, records, schema

T = TypeVar("T")
CHUNK = 500  # ids per IN (...) list


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# -- rows to records -------------------------------------------------------------------

def to_instance(row: sa.Row[Any]) -> records.InstanceRecord:
    m = row._mapping
    values = {name: m[name] for name in records.INSTANCE_COLUMNS}
    if values["signature_head"] is not None:
        values["signature_head"] = bytes(values["signature_head"])
    return records.InstanceRecord(**values)


def to_signature(row: sa.Row[Any]) -> records.SignatureRecord:
    m = row._mapping
    return records.SignatureRecord(
        generation=m["generation"], start_sequence=m["start_sequence"], event_count=m["event_count"],
        previous_digest=bytes(m["previous_digest"]), events_digest=bytes(m["events_digest"]),
        cert_id=m["cert_id"], signed_at=m["signed_at"], signature=bytes(m["signature"]),
    )


def history(conn: Connection, instance_id: str, generation: int, from_sequence: int = 0) -> list[records.EventRecord]:
    """One generation's events from `from_sequence` on, by sequence."""
    t = schema.history_events
    stmt = (
        sa.select(t)
        .where(t.c.instance_id == instance_id, t.c.generation == generation, t.c.sequence >= from_sequence)
        .order_by(t.c.sequence)
    )
    return [to_event(r) for r in conn.execute(stmt)]


def signatures(conn: Connection, instance_id: str, generation: int) -> list[records.SignatureRecord]:
    t = schema.history_signatures
    stmt = (
        sa.select(t).where(t.c.instance_id == instance_id, t.c.generation == generation)
        .order_by(t.c.start_sequence)
    )
    return [to_signature(r) for r in conn.execute(stmt)]


def certificates(conn: Connection, ids: Iterable[int]) -> dict[int, bytes]:
    wanted = sorted(set(ids))
    t = schema.history_certificates
    out: dict[int, bytes] = {}
    for part in chunks(wanted):
        for r in conn.execute(sa.select(t.c.id, t.c.der).where(t.c.id.in_(part))):
            out[r.id] = bytes(r.der)
    return out


def certificate_id(conn: Connection, fingerprint: bytes, der: bytes, now: datetime) -> int:
    """The id of the certificate with this fingerprint, inserted if new."""
    t = schema.history_certificates
    insert_ignore(conn, t, {"fingerprint": fingerprint, "der": der, "created_at": now}, ("fingerprint",))
    return conn.execute(sa.select(t.c.id).where(t.c.fingerprint == fingerprint)).scalar_one()


def to_event(row: sa.Row[Any]) -> records.EventRecord:
    m = row._mapping
    return records.EventRecord(
        generation=m["generation"], sequence=m["sequence"], type=m["type"],
        payload=m["payload"], timestamp=m["timestamp"],
    )


def to_inbox(row: sa.Row[Any]) -> records.InboxRecord:
    m = row._mapping
    return records.InboxRecord(
        id=m["id"], instance_id=m["instance_id"], message_id=m["message_id"], type=m["type"],
        payload=m["payload"], visible_at=m["visible_at"], created_at=m["created_at"],
    )


def to_timer(row: sa.Row[Any]) -> records.TimerRecord:
    m = row._mapping
    return records.TimerRecord(
        id=m["id"], instance_id=m["instance_id"], app_id=m["app_id"],
        generation=m["generation"], timer_id=m["timer_id"], fire_at=m["fire_at"],
    )


def to_outbox(row: sa.Row[Any]) -> records.OutboxRecord:
    m = row._mapping
    return records.OutboxRecord(
        id=m["id"], instance_id=m["instance_id"], app_id=m["app_id"], kind=m["kind"],
        dedup_key=m["dedup_key"], payload=m["payload"], created_at=m["created_at"],
        sent_at=m["sent_at"], lease_until=m["lease_until"], attempts=m["attempts"],
    )


# -- statements built once -------------------------------------------------------------
# The hot path of a step runs these thousands of times: built once, with bind parameters,
# they skip SQLAlchemy's per-call construction and cache-key work (a third of a step's CPU).

_i, _n, _o = schema.inbox, schema.instances, schema.outbox
_IID = sa.bindparam("iid")

SELECT_INSTANCE = sa.select(_n).where(_n.c.instance_id == _IID)
LOCK_INSTANCE = SELECT_INSTANCE.with_for_update(key_share=True)
LOCK_INSTANCE_FOR_DELETE = SELECT_INSTANCE.with_for_update()
SHARE_INSTANCE = sa.select(_n.c.instance_id).where(_n.c.instance_id == _IID).with_for_update(
    read=True, key_share=True)
VISIBLE_INBOX = (sa.select(_i).where(_i.c.instance_id == _IID, _i.c.visible_at <= sa.bindparam("now"))
                 .order_by(_i.c.id))
DELETE_INBOX = sa.delete(_i).where(_i.c.instance_id == _IID, _i.c.id.in_(sa.bindparam("ids", expanding=True)))
DELETE_OUTBOX_KEYS = sa.delete(_o).where(
    _o.c.instance_id == _IID, _o.c.dedup_key.in_(sa.bindparam("keys", expanding=True)))
INSERT_HISTORY = sa.insert(schema.history_events)
INSERT_OUTBOX = sa.insert(_o).returning(_o.c.id, sort_by_parameter_order=True)
_OUTBOX_IDS = _o.c.id.in_(sa.bindparam("ids", expanding=True))
DELETE_SENT_ORCHESTRATE = sa.delete(_o).where(_OUTBOX_IDS, _o.c.kind == records.OUTBOX_ORCHESTRATE)
MARK_SENT = (sa.update(_o).where(_OUTBOX_IDS, _o.c.kind != records.OUTBOX_ORCHESTRATE)
             .values(sent_at=sa.bindparam("sent_at"), lease_until=sa.bindparam("lease_until"),
                     attempts=_o.c.attempts + 1))


_UPDATE_INSTANCE: dict[tuple[str, ...], Any] = {}


def update_instance_statement(columns: tuple[str, ...]) -> Any:
    """``UPDATE instances SET step_count = step_count + 1, <col> = :v_<col>... WHERE
    instance_id = :iid``, built once per set of columns (a step sets the same few)."""
    stmt = _UPDATE_INSTANCE.get(columns)
    if stmt is None:
        values = {name: sa.bindparam(f"v_{name}") for name in columns}
        stmt = _UPDATE_INSTANCE[columns] = (
            sa.update(_n).where(_n.c.instance_id == _IID).values(step_count=_n.c.step_count + 1, **values)
        )
    return stmt


# -- building blocks -------------------------------------------------------------------

def insert_ignore(
    conn: Connection, table: sa.Table, values: Mapping[str, Any], keys: Sequence[str]
) -> int:
    """INSERT ... ON CONFLICT (keys) DO NOTHING; returns 1 if a row was inserted.

    Counted from RETURNING: ``rowcount`` is not reliable here on every driver.
    """
    cache_key = (conn.dialect.name, table.name, tuple(keys), tuple(values))
    stmt = _INSERT_IGNORE.get(cache_key)
    if stmt is None:
        insert = pg_dialect.insert if conn.dialect.name == "postgresql" else sqlite_dialect.insert
        pk = list(table.primary_key.columns)[0]
        stmt = _INSERT_IGNORE[cache_key] = (
            insert(table).values({name: sa.bindparam(f"v_{name}") for name in values})
            .on_conflict_do_nothing(index_elements=list(keys))
            .returning(pk)
        )
    return len(conn.execute(stmt, {f"v_{name}": value for name, value in values.items()}).all())


_INSERT_IGNORE: dict[tuple[Any, ...], Any] = {}  # built once per dialect, table and column set


def lock_instance(
    conn: Connection, instance_id: str, *, for_delete: bool = False
) -> records.InstanceRecord | None:
    """Select the instance row with a row lock (strong enough to delete it if asked)."""
    stmt = LOCK_INSTANCE_FOR_DELETE if for_delete else LOCK_INSTANCE
    row = conn.execute(stmt, {"iid": instance_id}).first()
    return to_instance(row) if row is not None else None


def get_instance(conn: Connection, instance_id: str) -> records.InstanceRecord | None:
    row = conn.execute(SELECT_INSTANCE, {"iid": instance_id}).first()
    return to_instance(row) if row is not None else None


def delete_instance_rows(conn: Connection, instance_ids: Sequence[str]) -> int:
    """Delete every row of these instances from every table; returns the row count."""
    total = 0
    for table in schema.INSTANCE_TABLES:
        for part in chunks(instance_ids):
            total += conn.execute(
                sa.delete(table).where(table.c.instance_id.in_(part))
            ).rowcount
    return total


def add_outbox(
    conn: Connection, items: Sequence[records.NewOutbox], now: datetime,
    default_instance_id: str | None = None,
) -> list[int]:
    if not items:
        return []
    rows = [
        {
            "instance_id": item.instance_id if item.instance_id is not None
            else default_instance_id,
            "app_id": item.app_id, "kind": item.kind, "dedup_key": item.dedup_key,
            "payload": item.payload, "created_at": now, "sent_at": None,
            "lease_until": None, "attempts": 0,
        }
        for item in items
    ]
    return [row[0] for row in conn.execute(INSERT_OUTBOX, rows)]


def insert_messages(
    conn: Connection, instance_id: str, messages: Iterable[records.NewInboxMessage],
    now: datetime, default_visible_at: datetime | None = None,
) -> int:
    """Insert inbox messages, skipping message ids the instance already has."""
    inserted = 0
    for msg in messages:
        visible_at = msg.visible_at or default_visible_at or now
        inserted += insert_ignore(
            conn, schema.inbox,
            {
                "instance_id": instance_id, "message_id": msg.message_id, "type": msg.type,
                "payload": msg.payload, "visible_at": visible_at, "created_at": now,
            },
            ("instance_id", "message_id"),
        )
    return inserted


def insert_messages_many(
    conn: Connection, rows: Sequence[tuple[str, records.NewInboxMessage]], now: datetime,
) -> None:
    """Insert ``(instance_id, message)`` pairs (a message id an instance already has is
    skipped) with one statement built once, sent for all rows (SQLAlchemy packs them into
    multi-row inserts)."""
    params = [{"instance_id": instance_id, "message_id": msg.message_id, "type": msg.type, "payload": msg.payload,
               "visible_at": msg.visible_at or now, "created_at": now} for instance_id, msg in rows]
    if params:
        conn.execute(INSERT_MESSAGE[conn.dialect.name], params)


INSERT_MESSAGE = {
    name: dialect.insert(_i).values(
        {c: sa.bindparam(c) for c in ("instance_id", "message_id", "type", "payload", "visible_at", "created_at")}
    ).on_conflict_do_nothing(index_elements=["instance_id", "message_id"])
    for name, dialect in (("postgresql", pg_dialect), ("sqlite", sqlite_dialect))
}


# -- composite operations --------------------------------------------------------------

def create_instance(
    conn: Connection, new: records.NewInstance, started: records.NewInboxMessage,
    outbox: Sequence[records.NewOutbox], now: datetime,
) -> list[int]:
    """Insert the instance, its start message and outbox rows; replace a terminal run.

    The replacement keeps ``step_count`` growing (old + 1) so that it stays a fencing
    counter across runs with the same instance ID.
    """
    step_count = 0
    for attempt in range(4):
        # First try the insert alone (a new ID, the common case: one statement less); a
        # conflict makes the next rounds lock and look at the row that is there.
        existing = lock_instance(conn, new.instance_id, for_delete=True) if attempt else None
        if existing is not None:
            if not existing.is_terminal:
                raise errors.InstanceAlreadyExists(new.instance_id, existing.status)
            delete_instance_rows(conn, [new.instance_id])
            step_count = existing.step_count + 1
        created_at = new.created_at or now
        values = {
            "instance_id": new.instance_id, "app_id": new.app_id, "name": new.name,
            "status": new.status, "input": new.input,
            "output": None, "custom_status": None, "failure": None, "generation": 0,
            "parent_instance_id": new.parent_instance_id,
            "parent_app_id": new.parent_app_id, "parent_task_id": new.parent_task_id,
            "created_at": created_at, "updated_at": created_at, "start_at": new.start_at,
            "completed_at": None, "step_count": step_count, "signed": False,
            "signature_head": None, "signed_events": 0, "trace_context": new.trace_context,
        }
        if attempt == 0 and conn.dialect.name == "postgresql":
            # The common case, a new ID, in one round trip: the row and its start message.
            message = {"message_id": started.message_id, "type": started.type, "payload": started.payload,
                       "visible_at": started.visible_at or new.start_at or now, "created_at": now}
            if conn.execute(_INSERT_WITH_START, {**values, **{f"m_{k}": v for k, v in message.items()}}).first():
                return add_outbox(conn, outbox, now, new.instance_id)
            continue
        # ON CONFLICT DO NOTHING: a concurrent creator makes us loop and see its row,
        # instead of aborting this (possibly step) transaction with an IntegrityError.
        if insert_ignore(conn, schema.instances, values, ("instance_id",)):
            break
    else:  # pragma: no cover - needs three lost races in a row
        current = get_instance(conn, new.instance_id)
        raise errors.InstanceAlreadyExists(
            new.instance_id, current.status if current else "being created"
        )
    insert_messages(conn, new.instance_id, [started], now, default_visible_at=new.start_at)
    return add_outbox(conn, outbox, now, new.instance_id)


def _insert_with_start_statement() -> Any:
    """PostgreSQL: ``WITH new AS (INSERT INTO instances ... ON CONFLICT DO NOTHING RETURNING
    instance_id) INSERT INTO inbox SELECT ... FROM new RETURNING id``: no row back means
    the ID was taken (and nothing was written)."""
    n, i = schema.instances, schema.inbox
    created = (pg_dialect.insert(n).values({c.name: sa.bindparam(c.name) for c in n.c})
               .on_conflict_do_nothing(index_elements=["instance_id"]).returning(n.c.instance_id).cte("new"))
    columns = ["message_id", "type", "payload", "visible_at", "created_at"]
    rows = sa.select(created.c.instance_id, *[sa.bindparam(f"m_{c}", type_=i.c[c].type) for c in columns])
    return sa.insert(i).from_select(["instance_id", *columns], rows).returning(i.c.id)


_INSERT_WITH_START = _insert_with_start_statement()


def enqueue(
    conn: Connection, instance_id: str, messages: Sequence[records.NewInboxMessage],
    now: datetime,
) -> int:
    # FOR KEY SHARE: the instance cannot be purged under us, and a step holding the
    # instance (FOR NO KEY UPDATE) does not block the delivery.
    if conn.execute(SHARE_INSTANCE, {"iid": instance_id}).first() is None:
        raise errors.InstanceNotFound(instance_id)
    return insert_messages(conn, instance_id, messages, now)
