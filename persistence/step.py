"""``StepTx``: one orchestration step, one transaction, the instance row locked.

Made by ``Store.step(instance_id)``; leaving the ``with`` block commits, an exception
rolls back.  Everything a step writes (history, inbox deletions, timers, outbox, status)
commits together, so publishing can happen after commit from the outbox.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from persistence import errors, ops, records, schema

_NOT_UPDATABLE = frozenset({"instance_id", "step_count"})
_UPDATABLE = frozenset(records.INSTANCE_COLUMNS) - _NOT_UPDATABLE


class StepTx:
    """The open step.  ``instance`` is ``None`` when the instance does not exist."""

    def __init__(
        self, conn: Connection, instance_id: str, instance: records.InstanceRecord | None
    ) -> None:
        self._conn: Connection | None = conn
        self.instance_id = instance_id
        self._instance = instance

    @property
    def instance(self) -> records.InstanceRecord | None:
        """The locked row as it is now, including this step's own updates."""
        return self._instance

    def close(self) -> None:
        self._conn = None

    # -- helpers -----------------------------------------------------------------------

    def _c(self) -> Connection:
        if self._conn is None:
            raise RuntimeError(
                f"the step on {self.instance_id!r} is over; open a new store.step()"
            )
        return self._conn

    def _locked(self) -> records.InstanceRecord:
        self._c()
        if self._instance is None:
            raise errors.InstanceNotFound(self.instance_id)
        return self._instance

    # -- reads -------------------------------------------------------------------------

    def visible_inbox(self, now: datetime | None = None) -> list[records.InboxRecord]:
        """Inbox messages visible at ``now`` (default: the current time), oldest first."""
        now = now or records.utcnow()
        t = schema.inbox
        stmt = (
            sa.select(t)
            .where(t.c.instance_id == self.instance_id, t.c.visible_at <= now)
            .order_by(t.c.id)
        )
        return [ops.to_inbox(r) for r in self._c().execute(stmt)]

    def history(self) -> list[records.EventRecord]:
        """The current generation's history, by sequence."""
        inst = self._locked()
        t = schema.history_events
        stmt = (
            sa.select(t)
            .where(t.c.instance_id == self.instance_id, t.c.generation == inst.generation)
            .order_by(t.c.sequence)
        )
        return [ops.to_event(r) for r in self._c().execute(stmt)]

    # -- writes ------------------------------------------------------------------------

    def append_history(self, events: Sequence[records.NewEvent]) -> None:
        """Append events to the current generation.

        Raises ``HistoryConflict`` when a sequence number is already taken; the step
        must then be abandoned (on PostgreSQL the transaction is already aborted).
        """
        inst = self._locked()
        if not events:
            return
        rows = [
            {
                "instance_id": self.instance_id, "generation": inst.generation,
                "sequence": e.sequence, "type": e.type, "payload": e.payload,
                "timestamp": e.timestamp, "signature": e.signature,
            }
            for e in events
        ]
        try:
            self._c().execute(sa.insert(schema.history_events), rows)
        except sa_exc.IntegrityError as exc:
            raise errors.HistoryConflict(
                self.instance_id, inst.generation, [e.sequence for e in events]
            ) from exc

    def delete_inbox(self, ids: Sequence[int]) -> int:
        t = schema.inbox
        total = 0
        for part in ops.chunks(list(ids)):
            total += self._c().execute(
                sa.delete(t).where(t.c.instance_id == self.instance_id, t.c.id.in_(part))
            ).rowcount
        return total

    def add_timers(self, timers: Sequence[records.NewTimer]) -> list[int]:
        inst = self._locked()
        if not timers:
            return []
        rows = [
            {
                "instance_id": self.instance_id, "app_id": inst.app_id,
                "generation": inst.generation, "timer_id": tm.timer_id,
                "fire_at": tm.fire_at,
            }
            for tm in timers
        ]
        stmt = sa.insert(schema.timers).returning(
            schema.timers.c.id, sort_by_parameter_order=True
        )
        return [r[0] for r in self._c().execute(stmt, rows)]

    def delete_timers(self, timer_ids: Sequence[int] | None = None) -> int:
        """Delete this instance's timers (all of them, or those with these timer_ids)."""
        t = schema.timers
        stmt = sa.delete(t).where(t.c.instance_id == self.instance_id)
        if timer_ids is not None:
            stmt = stmt.where(t.c.timer_id.in_(list(timer_ids)))
        return self._c().execute(stmt).rowcount

    def add_outbox(self, items: Sequence[records.NewOutbox]) -> list[int]:
        """Insert outbox rows (``instance_id`` defaults to this instance); returns ids.

        Publish them after the commit, then call ``store.mark_outbox_sent(ids, ...)``.
        """
        return ops.add_outbox(self._c(), items, records.utcnow(), self.instance_id)

    def delete_outbox(self, dedup_keys: Sequence[str]) -> int:
        """Delete this instance's outbox rows with these dedup keys (results consumed)."""
        t = schema.outbox
        total = 0
        for part in ops.chunks(list(dedup_keys)):
            total += self._c().execute(
                sa.delete(t).where(t.c.instance_id == self.instance_id, t.c.dedup_key.in_(part))
            ).rowcount
        return total

    def delete_outbox_kind(self, kind: str) -> int:
        """Delete this instance's outbox rows of one kind (open activity calls of a run
        that has finished: nothing waits for their results any more)."""
        t = schema.outbox
        return self._c().execute(
            sa.delete(t).where(t.c.instance_id == self.instance_id, t.c.kind == kind)
        ).rowcount

    def update_instance(self, **fields: Any) -> records.InstanceRecord:
        """Update columns of the locked instance; returns the new record.

        Always sets ``updated_at`` (to now unless given) and increments ``step_count``,
        the fencing counter, which therefore cannot be set directly.  Moving to a
        terminal status sets ``completed_at`` to now unless given or already set.
        """
        inst = self._locked()
        unknown = set(fields) - _UPDATABLE
        if unknown:
            raise TypeError(
                f"update_instance() cannot set {sorted(unknown)}; "
                f"settable columns: {sorted(_UPDATABLE)}"
            )
        now = records.utcnow()
        fields.setdefault("updated_at", now)
        status = fields.get("status")
        if status in records.TERMINAL_STATUSES and inst.completed_at is None:
            fields.setdefault("completed_at", now)
        for key in ("updated_at", "created_at", "start_at", "completed_at"):
            if fields.get(key) is not None:
                fields[key] = records.as_utc(fields[key])
        t = schema.instances
        self._c().execute(
            sa.update(t)
            .where(t.c.instance_id == self.instance_id)
            .values(step_count=t.c.step_count + 1, **fields)
        )
        self._instance = dataclasses.replace(inst, step_count=inst.step_count + 1, **fields)
        return self._instance

    def start_new_generation(self, input: str | None) -> records.InstanceRecord:
        """Continue-as-new: generation + 1 with a new input.

        The old generation's history and timers are deleted, and so are this instance's
        outbox rows other than ``orchestrate`` (activity requests whose results the new
        generation will drop anyway; otherwise their leases would re-send them forever).
        Inbox messages stay: they belong to the new generation.
        """
        inst = self._locked()
        conn = self._c()
        for table in (schema.history_events, schema.timers):
            conn.execute(sa.delete(table).where(table.c.instance_id == self.instance_id))
        o = schema.outbox
        conn.execute(
            sa.delete(o).where(
                o.c.instance_id == self.instance_id, o.c.kind != records.OUTBOX_ORCHESTRATE
            )
        )
        return self.update_instance(generation=inst.generation + 1, input=input)

    def create_instance(
        self, new: records.NewInstance, started: records.NewInboxMessage,
        outbox: Sequence[records.NewOutbox] = (),
    ) -> list[int]:
        """Create another instance (a child) in this transaction; same rules as the store's.

        ``InstanceAlreadyExists`` leaves this transaction usable (no failed statement).
        """
        if new.instance_id == self.instance_id:
            raise errors.InstanceAlreadyExists(
                new.instance_id, self._instance.status if self._instance else "locked"
            )
        return ops.create_instance(self._c(), new, started, outbox, records.utcnow())

    def enqueue(self, instance_id: str, messages: Sequence[records.NewInboxMessage]) -> int:
        """Insert messages into an instance's inbox (dedup by message_id); returns count.

        Unknown instance -> ``InstanceNotFound`` (the transaction stays usable).
        """
        return ops.enqueue(self._c(), instance_id, messages, records.utcnow())
