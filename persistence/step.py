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
        self, conn: Connection, instance_id: str, instance: records.InstanceRecord | None,
        inbox: list[records.InboxRecord] | None = None,
    ) -> None:
        self._conn: Connection | None = conn
        self.instance_id = instance_id
        self._instance = instance
        #: the visible inbox when the batch read it for this step (None: read on demand)
        self._inbox = inbox

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
        """Inbox messages visible at ``now`` (default: the current time), oldest first; in a
        batch, those the batch read for this step."""
        if self._inbox is not None:
            return list(self._inbox)
        rows = self._c().execute(ops.VISIBLE_INBOX, {"iid": self.instance_id, "now": now or records.utcnow()})
        return [ops.to_inbox(r) for r in rows]

    def history(self) -> list[records.EventRecord]:
        """The current generation's history, by sequence."""
        return ops.history(self._c(), self.instance_id, self._locked().generation)

    # -- writes ------------------------------------------------------------------------

    def append_history(self, events: Sequence[records.NewEvent]) -> None:
        """Append events to the current generation.

        Raises ``HistoryConflict`` when a sequence number is already taken; the step
        must then be abandoned (on PostgreSQL the transaction is already aborted).
        """
        inst = self._locked()
        if not events:
            return
        try:
            self._c().execute(ops.INSERT_HISTORY, history_rows(self.instance_id, inst.generation, events))
        except sa_exc.IntegrityError as exc:
            raise errors.HistoryConflict(
                self.instance_id, inst.generation, [e.sequence for e in events]
            ) from exc

    def delete_inbox(self, ids: Sequence[int]) -> int:
        total = 0
        for part in ops.chunks(list(ids)):
            total += self._c().execute(ops.DELETE_INBOX, {"iid": self.instance_id, "ids": list(part)}).rowcount
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
        total = 0
        for part in ops.chunks(list(dedup_keys)):
            params = {"iid": self.instance_id, "keys": list(part)}
            total += self._c().execute(ops.DELETE_OUTBOX_KEYS, params).rowcount
        return total

    def delete_outbox_kind(self, kind: str) -> int:
        """Delete this instance's outbox rows of one kind (open activity calls of a run
        that has finished: nothing waits for their results any more)."""
        t = schema.outbox
        return self._c().execute(
            sa.delete(t).where(t.c.instance_id == self.instance_id, t.c.kind == kind)
        ).rowcount

    def admit(self, limit: int) -> bool:
        """Whether this PENDING instance may start under a per-name limit: fewer than
        ``limit`` instances of the same app and workflow name are running or suspended.

        Admissions of one name are serialised (a transaction-scoped advisory lock on
        PostgreSQL; SQLite has one writer), so two orchestrators cannot both take the
        last slot."""
        inst = self._locked()
        conn = self._c()
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                         {"k": f"ledgerflow-admit:{inst.app_id}:{inst.name}"})
        t = schema.instances
        active = conn.execute(
            sa.select(sa.func.count()).select_from(t).where(
                t.c.app_id == inst.app_id, t.c.name == inst.name,
                t.c.status.in_([records.RUNNING, records.SUSPENDED]),
            )
        ).scalar_one()
        return active < limit

    def update_instance(self, **fields: Any) -> records.InstanceRecord:
        """Update columns of the locked instance; returns the new record.

        Always sets ``updated_at`` (to now unless given) and increments ``step_count``,
        the fencing counter, which therefore cannot be set directly.  Moving to a
        terminal status sets ``completed_at`` to now unless given or already set.
        """
        self._locked()
        fields = self._update_fields(fields)
        self._c().execute(ops.update_instance_statement(tuple(fields)), update_params(self.instance_id, fields))
        return self._updated(fields, bump=True)

    def _update_fields(self, fields: dict[str, Any]) -> dict[str, Any]:
        """The columns an update sets: checked, with the implied timestamps, all in UTC."""
        inst = self._instance
        if inst is None:
            raise errors.InstanceNotFound(self.instance_id)
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
        return fields

    def _updated(self, fields: dict[str, Any], *, bump: bool) -> records.InstanceRecord:
        inst = self._instance
        assert inst is not None
        self._instance = dataclasses.replace(inst, step_count=inst.step_count + (1 if bump else 0), **fields)
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
        for table in (schema.history_events, schema.history_signatures, schema.timers):
            conn.execute(sa.delete(table).where(table.c.instance_id == self.instance_id))
        o = schema.outbox
        conn.execute(
            sa.delete(o).where(
                o.c.instance_id == self.instance_id, o.c.kind != records.OUTBOX_ORCHESTRATE
            )
        )
        return self.update_instance(generation=inst.generation + 1, input=input,
                                    signature_head=None, signed_events=0)

    # -- history signing -----------------------------------------------------------------

    def signatures(self) -> list[records.SignatureRecord]:
        """The current generation's batch signatures, by first sequence."""
        inst = self._locked()
        return ops.signatures(self._c(), self.instance_id, inst.generation)

    def add_signature(self, sig: records.NewSignature) -> None:
        """Store the signature of a batch this step appends (same transaction)."""
        inst = self._locked()
        self._c().execute(sa.insert(schema.history_signatures), [{
            "instance_id": self.instance_id, "generation": inst.generation,
            "start_sequence": sig.start_sequence, "event_count": sig.event_count,
            "previous_digest": sig.previous_digest, "events_digest": sig.events_digest,
            "cert_id": sig.cert_id, "signed_at": sig.signed_at, "signature": sig.signature,
        }])

    def last_signature(self) -> records.SignatureRecord | None:
        """The current generation's last batch signature (the chain head), if any."""
        inst = self._locked()
        t = schema.history_signatures
        row = self._c().execute(
            sa.select(t).where(t.c.instance_id == self.instance_id, t.c.generation == inst.generation)
            .order_by(t.c.start_sequence.desc()).limit(1)
        ).first()
        return ops.to_signature(row) if row is not None else None

    def history_from(self, sequence: int) -> list[records.EventRecord]:
        """The current generation's events from ``sequence`` on, by sequence."""
        return ops.history(self._c(), self.instance_id, self._locked().generation, sequence)

    def max_sequence(self) -> int | None:
        inst = self._locked()
        t = schema.history_events
        return self._c().execute(
            sa.select(sa.func.max(t.c.sequence))
            .where(t.c.instance_id == self.instance_id, t.c.generation == inst.generation)
        ).scalar_one()

    def certificate_id(self, fingerprint: bytes, der: bytes) -> int:
        return ops.certificate_id(self._c(), fingerprint, der, records.utcnow())

    def certificates(self, ids: Sequence[int]) -> dict[int, bytes]:
        return ops.certificates(self._c(), ids)

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


def history_rows(instance_id: str, generation: int, events: Sequence[records.NewEvent]) -> list[dict[str, Any]]:
    """Parameters of ``ops.INSERT_HISTORY`` for these events."""
    return [
        {
            "instance_id": instance_id, "generation": generation, "sequence": e.sequence,
            "type": e.type, "payload": e.payload, "timestamp": e.timestamp,
        }
        for e in events
    ]


def update_params(instance_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Parameters of ``ops.update_instance_statement(tuple(fields))``."""
    return {"iid": instance_id, **{f"v_{name}": value for name, value in fields.items()}}
