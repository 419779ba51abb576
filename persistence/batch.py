"""``BatchTx``: the steps of many instances in one transaction, written with bulk statements.

Made by ``Store.step_batch(instance_ids)``. The instance rows are locked at once (on
PostgreSQL with ``SKIP LOCKED``: a row another orchestrator holds is left to it and
reported in ``skipped``) and their visible inboxes are read in one query. Each instance's
step runs on a ``DeferredStepTx``: its plain writes (history, inbox and outbox deletions,
timers, the instance's columns) are only recorded, and ``BatchTx.write()`` sends those of
every step together, a handful of statements for the whole batch. A step that reads, or
does something rarer (creating a child, continuing as new, signing), first writes what it
recorded so far, so it sees its own writes. Leaving the ``with`` block commits; any error
rolls the whole batch back, and the caller runs its instances again one by one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.engine import Connection

from persistence import errors, ops, records, schema
from persistence.step import StepTx, history_rows, update_params

_n, _i, _t, _o = schema.instances, schema.inbox, schema.timers, schema.outbox

INSERT_TIMER = sa.insert(_t)
DELETE_TIMERS_OF = sa.delete(_t).where(_t.c.instance_id == sa.bindparam("iid"))
DELETE_OUTBOX_KEY = sa.delete(_o).where(_o.c.instance_id == sa.bindparam("iid"),
                                        _o.c.dedup_key == sa.bindparam("key"))
DELETE_OUTBOX_KIND = sa.delete(_o).where(_o.c.instance_id == sa.bindparam("iid"), _o.c.kind == sa.bindparam("kind"))


class _Statements:
    """Statements over a list of IDs, built once per dialect. PostgreSQL gets ``= ANY(:ids)``
    with one array parameter, so the SQL text is the same for any number of IDs (cached by
    SQLAlchemy, prepared by psycopg); SQLite gets ``IN (...)``."""

    def __init__(self, dialect: str) -> None:
        def ids(column: sa.Column[Any], name: str = "ids") -> sa.ColumnElement[bool]:
            if dialect == "postgresql":
                return column == sa.any_(sa.bindparam(name, type_=pg.ARRAY(column.type)))
            return column.in_(sa.bindparam(name, expanding=True))

        self.lock = sa.select(_n).where(ids(_n.c.instance_id)).order_by(_n.c.instance_id).with_for_update(
            key_share=True)
        self.lock_skip = self.lock.with_for_update(key_share=True, skip_locked=True)
        self.select = sa.select(_n).where(ids(_n.c.instance_id))
        # Read after the rows are locked, in a statement of its own: a statement that waited for
        # a lock sees the locked row as now committed but every other table as it was when the
        # statement began (inbox rows another step has consumed since).
        self.inboxes = (sa.select(_i).where(ids(_i.c.instance_id), _i.c.visible_at <= sa.bindparam("now"))
                        .order_by(_i.c.instance_id, _i.c.id))
        self.delete_inbox = sa.delete(_i).where(ids(_i.c.id))
        _h = schema.history_events
        self.histories = (sa.select(_h).select_from(_h.join(_n, sa.and_(
            _n.c.instance_id == _h.c.instance_id, _n.c.generation == _h.c.generation)))
            .where(ids(_h.c.instance_id)).order_by(_h.c.instance_id, _h.c.sequence))
        self.delete_timers = sa.delete(_t).where(ids(_t.c.instance_id))


_STATEMENTS: dict[str, _Statements] = {}


def _statements(conn: Connection) -> _Statements:
    name = conn.dialect.name
    if name not in _STATEMENTS:
        _STATEMENTS[name] = _Statements(name)
    return _STATEMENTS[name]


class DeferredStepTx(StepTx):
    """A step in a batch: plain writes are recorded for the batch's bulk statements; any
    other use of the connection (a read, a rarer write) first writes what was recorded.
    ``add_timers`` returns no ids here (the rows are written later)."""

    def __init__(self, conn: Connection, instance_id: str, instance: records.InstanceRecord,
                 inbox: list[records.InboxRecord], write_batch: Callable[[], None]) -> None:
        super().__init__(conn, instance_id, instance, inbox)
        self._write_batch = write_batch
        #: the current generation's history, when the batch read it for this step
        self.preloaded_history: list[records.EventRecord] | None = None
        #: ids of the batch's arrivals (negative) this step consumed
        self.consumed_arrivals: set[int] = set()
        self._reset()

    def _reset(self) -> None:
        self.new_events: list[records.NewEvent] = []
        self.inbox_ids: list[int] = []
        self.outbox_keys: list[str] = []
        self.outbox_kinds: list[str] = []
        self.clear_timers = False
        self.timers: list[records.NewTimer] = []
        self.update: dict[str, Any] | None = None

    @property
    def pending(self) -> bool:
        return bool(self.new_events or self.inbox_ids or self.outbox_keys or self.outbox_kinds or self.clear_timers
                    or self.timers or self.update is not None)

    def _c(self) -> Connection:
        conn = super()._c()
        if self.pending:
            self._write_now()
        return conn

    def _write_now(self) -> None:
        history, inbox_ids, keys, kinds = self.new_events, self.inbox_ids, self.outbox_keys, self.outbox_kinds
        clear, timers, update = self.clear_timers, self.timers, self.update
        self._reset()
        if clear:
            StepTx.delete_timers(self)
        StepTx.add_timers(self, timers)
        StepTx.delete_outbox(self, keys)
        for kind in kinds:
            StepTx.delete_outbox_kind(self, kind)
        StepTx.delete_inbox(self, inbox_ids)
        StepTx.append_history(self, history)
        if update is not None:
            self._c().execute(ops.update_instance_statement(tuple(update)), update_params(self.instance_id, update))

    @property
    def instance_record(self) -> records.InstanceRecord:
        """The row as this step left it (its generation may have moved on: continue-as-new)."""
        assert self._instance is not None
        return self._instance

    # -- the recorded writes ---------------------------------------------------------------

    def append_history(self, events: Sequence[records.NewEvent]) -> None:
        self.new_events.extend(events)

    def delete_inbox(self, ids: Sequence[int]) -> int:
        self.consumed_arrivals.update(i for i in ids if i < 0)
        self.inbox_ids.extend(i for i in ids if i > 0)
        return len(ids)

    def delete_outbox(self, dedup_keys: Sequence[str]) -> int:
        self.outbox_keys.extend(dedup_keys)
        return len(dedup_keys)

    def delete_outbox_kind(self, kind: str) -> int:
        self.outbox_kinds.append(kind)
        return 0

    def add_timers(self, timers: Sequence[records.NewTimer]) -> list[int]:
        self.timers.extend(timers)
        return []

    def delete_timers(self, timer_ids: Sequence[int] | None = None) -> int:
        if timer_ids is not None:  # rare: written at once, in order
            return StepTx.delete_timers(self, timer_ids)
        self.clear_timers = True
        self.timers = []  # timers this step added are gone too
        return 0

    def history(self) -> list[records.EventRecord]:
        if self.preloaded_history is not None and not self.pending:
            return list(self.preloaded_history)
        return super().history()

    def admit(self, limit: int) -> bool:
        """Counts running instances: the steps before this one in the batch are written first."""
        self._write_batch()
        return super().admit(limit)

    def update_instance(self, **fields: Any) -> records.InstanceRecord:
        fields = self._update_fields(fields)
        first = self.update is None
        self.update = {**(self.update or {}), **fields}
        return self._updated(fields, bump=first)  # one fencing increment per step


class BatchTx:
    """The open batch. ``locked`` maps each instance this batch holds to its row; ``skipped``
    lists the existing instances another transaction held (PostgreSQL only); IDs that name
    no instance are in neither. ``now``: the time the inboxes were read as of."""

    def __init__(self, conn: Connection, locked: dict[str, records.InstanceRecord],
                 inboxes: dict[str, list[records.InboxRecord]], skipped: list[str], now: datetime) -> None:
        self._conn = conn
        self.now = now
        self._sql = _statements(conn)
        self.locked = locked
        self.skipped = skipped
        #: each locked instance's visible inbox (stored messages, then arrivals)
        self.inboxes = inboxes
        self._arrivals = 0
        self._arrived_at: datetime | None = None
        self._steps: list[DeferredStepTx] = []
        self._histories: dict[str, list[records.EventRecord]] = {}

    def instances(self, instance_ids: Sequence[str]) -> dict[str, records.InstanceRecord]:
        """Rows of instances this batch did not lock (read as committed, no lock)."""
        return _select(self._conn, self._sql.select, instance_ids)

    def arrive(self, instance_id: str, message: records.NewInboxMessage, now: datetime) -> bool:
        """A message for a locked instance that came with this batch (an activity result):
        its step sees it in the inbox without it being stored first. It gets a negative id;
        ``write()`` stores it only if the step did not consume it (a stalled instance, say).
        False when the inbox already has that message id."""
        inbox = self.inboxes.setdefault(instance_id, [])
        if any(m.message_id == message.message_id for m in inbox):
            return False
        self._arrivals += 1
        self._arrived_at = now
        inbox.append(records.InboxRecord(-self._arrivals, instance_id, message.message_id, message.type,
                                         message.payload, message.visible_at or now, now))
        return True

    def enqueue(self, instance_id: str, messages: Sequence[records.NewInboxMessage], now: datetime) -> int:
        """Insert inbox messages of an instance this batch does not hold (``InstanceNotFound``
        when it does not exist; the transaction stays usable)."""
        return ops.enqueue(self._conn, instance_id, messages, now)

    def preload_histories(self, instance_ids: Sequence[str]) -> None:
        """Read the current history of these locked instances in one query (those whose
        steps must replay it: not in the orchestrator's cache)."""
        self._histories = {iid: [] for iid in instance_ids}
        for part in ops.chunks(list(instance_ids)):
            for row in self._conn.execute(self._sql.histories, {"ids": list(part)}):
                event = ops.to_event(row)
                self._histories[row._mapping["instance_id"]].append(event)

    def step(self, instance_id: str) -> DeferredStepTx:
        """The step of one locked instance; its recorded writes go out with ``write()``."""
        tx = DeferredStepTx(self._conn, instance_id, self.locked[instance_id], self.inboxes.get(instance_id, []),
                            self._write_steps)
        tx.preloaded_history = self._histories.get(instance_id)
        self._steps.append(tx)
        return tx

    def write(self) -> None:
        """Send every step's recorded writes: one statement per kind for the whole batch
        (``HistoryConflict`` if a history sequence number is taken), and store the arrivals
        no step consumed."""
        self._write_steps()
        consumed = {i for tx in self._steps for i in tx.consumed_arrivals}
        kept = [(m.instance_id, records.NewInboxMessage(m.message_id, m.type, m.payload, m.visible_at))
                for inbox in self.inboxes.values() for m in inbox if m.id < 0 and m.id not in consumed]
        if kept and self._arrived_at is not None:
            ops.insert_messages_many(self._conn, kept, self._arrived_at)

    def _write_steps(self) -> None:
        steps = [tx for tx in self._steps if tx.pending]
        conn, sql = self._conn, self._sql
        cleared = [tx.instance_id for tx in steps if tx.clear_timers]
        if cleared:
            conn.execute(sql.delete_timers, {"ids": cleared})
        timers = [{"instance_id": tx.instance_id, "app_id": tx.instance_record.app_id,
                   "generation": tx.instance_record.generation, "timer_id": tm.timer_id, "fire_at": tm.fire_at}
                  for tx in steps for tm in tx.timers]
        _many(conn, INSERT_TIMER, timers)
        _many(conn, DELETE_OUTBOX_KEY, [{"iid": tx.instance_id, "key": k} for tx in steps for k in tx.outbox_keys])
        _many(conn, DELETE_OUTBOX_KIND, [{"iid": tx.instance_id, "kind": k} for tx in steps for k in tx.outbox_kinds])
        inbox_ids = [i for tx in steps for i in tx.inbox_ids if i > 0]
        for part in ops.chunks(inbox_ids):
            conn.execute(sql.delete_inbox, {"ids": list(part)})
        history = [row for tx in steps if tx.new_events
                   for row in history_rows(tx.instance_id, tx.instance_record.generation, tx.new_events)]
        try:
            _many(conn, ops.INSERT_HISTORY, history)
        except sa_exc.IntegrityError as exc:
            appending = [tx for tx in steps if tx.new_events]
            first = appending[0]
            raise errors.HistoryConflict(", ".join(tx.instance_id for tx in appending), first.instance_record.generation,
                                         [e.sequence for e in first.new_events]) from exc
        updates: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for tx in steps:
            if tx.update is not None:
                updates.setdefault(tuple(tx.update), []).append(update_params(tx.instance_id, tx.update))
        for columns, params in updates.items():
            _many(conn, ops.update_instance_statement(columns), params)
        for tx in steps:
            tx._reset()

    def add_outbox(self, items: Sequence[records.NewOutbox], now: datetime) -> list[int]:
        """Insert the outbox rows of every step in the batch (each names its instance)."""
        return ops.add_outbox(self._conn, items, now)


def lock(conn: Connection, instance_ids: Sequence[str], clock: Callable[[], datetime], *,
         skip_locked: bool) -> BatchTx:
    """Lock the rows of ``instance_ids`` in ID order (so two batches never deadlock on them),
    then read their inboxes' messages visible at ``clock()`` read once the locks are held (a
    suspend that committed while we waited must be seen with the status it wrote)."""
    wanted = sorted(set(instance_ids))
    sql = _statements(conn)
    locked = _select(conn, sql.lock_skip if skip_locked and conn.dialect.name == "postgresql" else sql.lock, wanted)
    now = clock()
    inboxes: dict[str, list[records.InboxRecord]] = {}
    for part in ops.chunks(list(locked)):
        for row in conn.execute(sql.inboxes, {"ids": list(part), "now": now}):
            message = ops.to_inbox(row)
            inboxes.setdefault(message.instance_id, []).append(message)
    missing = [iid for iid in wanted if iid not in locked]
    skipped = sorted(_select(conn, sql.select, missing)) if missing else []
    return BatchTx(conn, locked, inboxes, skipped, now)


def _select(conn: Connection, stmt: Any, instance_ids: Sequence[str]) -> dict[str, records.InstanceRecord]:
    found: dict[str, records.InstanceRecord] = {}
    for part in ops.chunks(list(instance_ids)):
        for row in conn.execute(stmt, {"ids": list(part)}):
            record = ops.to_instance(row)
            found[record.instance_id] = record
    return found


def _many(conn: Connection, stmt: Any, params: list[dict[str, Any]]) -> None:
    if len(params) == 1:
        conn.execute(stmt, params[0])  # executemany's pipeline costs more for one row
    elif params:
        conn.execute(stmt, params)
