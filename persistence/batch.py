"""``BatchTx``: the steps of many instances in one transaction.

Made by ``Store.step_batch(instance_ids)``. The instance rows are locked at once (on
PostgreSQL with ``SKIP LOCKED``: a row another orchestrator holds is left to it and
reported in ``skipped``), their visible inboxes are read in one query, and each
instance's step runs inside its own savepoint (``instance_step``), so a step that fails
rolls back alone while the others commit together. Leaving the ``with`` block commits.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from persistence import ops, records, schema
from persistence.step import StepTx

_n, _i = schema.instances, schema.inbox
_IDS = sa.bindparam("ids", expanding=True)

LOCK_MANY = (sa.select(_n).where(_n.c.instance_id.in_(_IDS)).order_by(_n.c.instance_id)
             .with_for_update(key_share=True))
LOCK_MANY_SKIP = LOCK_MANY.with_for_update(key_share=True, skip_locked=True)
SELECT_MANY = sa.select(_n).where(_n.c.instance_id.in_(_IDS))
VISIBLE_INBOXES = (sa.select(_i).where(_i.c.instance_id.in_(_IDS), _i.c.visible_at <= sa.bindparam("now"))
                   .order_by(_i.c.instance_id, _i.c.id))
WITH_VISIBLE_INBOX = (sa.select(_i.c.instance_id).where(_i.c.instance_id.in_(_IDS),
                                                         _i.c.visible_at <= sa.bindparam("now")).distinct())


class BatchTx:
    """The open batch. ``locked`` maps each instance this batch holds to its row; ``skipped``
    lists the existing instances another transaction held (PostgreSQL only); IDs that name
    no instance are in neither."""

    def __init__(self, conn: Connection, locked: dict[str, records.InstanceRecord], skipped: list[str]) -> None:
        self._conn = conn
        self.locked = locked
        self.skipped = skipped
        self._inboxes: dict[str, list[records.InboxRecord]] = {}

    def instances(self, instance_ids: Sequence[str]) -> dict[str, records.InstanceRecord]:
        """Rows of instances this batch did not lock (read as committed, no lock)."""
        return _select(self._conn, SELECT_MANY, instance_ids)

    def enqueue_locked(self, rows: Sequence[tuple[str, records.NewInboxMessage]], now: datetime) -> int:
        """Insert inbox messages of locked instances (dedup by message id), multi-row."""
        return ops.insert_messages_many(self._conn, rows, now) if rows else 0

    def enqueue(self, instance_id: str, messages: Sequence[records.NewInboxMessage], now: datetime) -> int:
        """Insert inbox messages of an instance this batch does not hold (``InstanceNotFound``
        when it does not exist; the transaction stays usable)."""
        return ops.enqueue(self._conn, instance_id, messages, now)

    def load_inboxes(self, now: datetime) -> dict[str, list[records.InboxRecord]]:
        """The visible inbox of every locked instance, oldest first, in one query per chunk."""
        inboxes: dict[str, list[records.InboxRecord]] = {}
        for part in ops.chunks(list(self.locked)):
            for row in self._conn.execute(VISIBLE_INBOXES, {"ids": list(part), "now": now}):
                message = ops.to_inbox(row)
                inboxes.setdefault(message.instance_id, []).append(message)
        self._inboxes = inboxes
        return inboxes

    @contextmanager
    def instance_step(self, instance_id: str) -> Iterator[StepTx]:
        """One instance's step inside a savepoint: an exception rolls back this step only
        (and propagates); the row stays locked by the batch."""
        tx = StepTx(self._conn, instance_id, self.locked[instance_id], inbox=self._inboxes.get(instance_id, []))
        try:
            with self._conn.begin_nested():
                yield tx
            if tx.instance is not None:
                self.locked[instance_id] = tx.instance
        finally:
            tx.close()

    @property
    def usable(self) -> bool:
        """False once the connection is lost: the batch cannot commit and must be given up."""
        return not self._conn.invalidated

    def add_outbox(self, items: Sequence[records.NewOutbox], now: datetime) -> list[int]:
        """Insert the outbox rows of every step in the batch (each names its instance)."""
        return ops.add_outbox(self._conn, items, now)

    def with_visible_inbox(self, instance_ids: Sequence[str], now: datetime) -> set[str]:
        """Which of these instances have inbox messages visible at ``now`` (arrived mid-batch)."""
        found: set[str] = set()
        for part in ops.chunks(list(instance_ids)):
            found.update(r[0] for r in self._conn.execute(WITH_VISIBLE_INBOX, {"ids": list(part), "now": now}))
        return found


def lock(conn: Connection, instance_ids: Sequence[str], *, skip_locked: bool) -> BatchTx:
    """Lock the rows of ``instance_ids`` in ID order (so two batches never deadlock on them)."""
    wanted = sorted(set(instance_ids))
    stmt = LOCK_MANY_SKIP if skip_locked and conn.dialect.name == "postgresql" else LOCK_MANY
    locked = _select(conn, stmt, wanted)
    missing = [iid for iid in wanted if iid not in locked]
    skipped = sorted(_select(conn, SELECT_MANY, missing)) if missing else []
    return BatchTx(conn, locked, skipped)


def _select(conn: Connection, stmt: sa.Select[Any], instance_ids: Sequence[str]) -> dict[str, records.InstanceRecord]:
    found: dict[str, records.InstanceRecord] = {}
    for part in ops.chunks(list(instance_ids)):
        for row in conn.execute(stmt, {"ids": list(part)}):
            record = ops.to_instance(row)
            found[record.instance_id] = record
    return found
