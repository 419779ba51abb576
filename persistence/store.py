"""``Store``: the one persistence entry point, for SQLite and PostgreSQL alike.

Every public method is one transaction.  Write transactions on SQLite begin with
``BEGIN IMMEDIATE``; reads use a plain ``BEGIN`` so that they never queue behind
writers (WAL).  On PostgreSQL pollers claim rows with ``FOR UPDATE SKIP LOCKED``.
Database errors that mean "cannot reach / cannot get in now" become ``StoreUnavailable``.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Engine

from persistence import batch as batch_mod
from persistence import engine as engine_mod
from persistence import errors, listing, migrator, ops, records, schema
from persistence.batch import BatchTx
from persistence import step as step_mod
from persistence.step import StepTx

__all__ = ["BatchTx", "Store", "StepTx"]


#: A transaction PostgreSQL aborted to break a deadlock (or a serialization failure) is run
#: again this many times before the error reaches the caller.
CONFLICT_ATTEMPTS = 5
_CONFLICT_SQLSTATES = frozenset({"40P01", "40001"})

_F = TypeVar("_F", bound=Callable[..., Any])


def _retry_on_conflict(method: _F) -> _F:
    """Re-run a one-transaction method that PostgreSQL aborted as a deadlock victim.

    Concurrent starts, events and purges on one instance ID can deadlock on the instance
    row (a key-share lock carried along its update chain against a start's FOR UPDATE);
    the aborted transaction changed nothing, so running it again is safe. Found by the
    reliability row R3 (50 clients on one ID)."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        for attempt in range(1, CONFLICT_ATTEMPTS + 1):
            try:
                return method(self, *args, **kwargs)
            except errors.StoreUnavailable as exc:
                if attempt == CONFLICT_ATTEMPTS or not _is_conflict(exc):
                    raise
                time.sleep(random.uniform(0.002, 0.02) * attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    return wrapper  # type: ignore[return-value]


def _due_outbox_query(now: datetime, limit: int, unsent_grace_seconds: float) -> sa.Select[Any]:
    o = schema.outbox
    cutoff = now - timedelta(seconds=unsent_grace_seconds)
    return (
        sa.select(o)
        .where(
            sa.or_(
                sa.and_(o.c.sent_at.is_(None), o.c.created_at <= cutoff),
                sa.and_(o.c.lease_until.is_not(None), o.c.lease_until < now),
            )
        )
        .order_by(o.c.id)
        .limit(limit)
    )


#: The server ended the session (psycopg raises some of these as InternalError, not OperationalError):
#: idle-in-transaction timeout, admin/crash/immediate shutdown, connection exceptions.
_SESSION_ENDED_SQLSTATES = frozenset({"25P03", "57P01", "57P02", "57P03"})


def _session_ended(exc: sa_exc.DBAPIError) -> bool:
    state = getattr(exc.orig, "sqlstate", None) or ""
    return state in _SESSION_ENDED_SQLSTATES or state.startswith("08")


def _is_conflict(exc: BaseException) -> bool:
    cause = exc.__cause__
    orig = getattr(cause, "orig", None)
    return getattr(orig, "sqlstate", None) in _CONFLICT_SQLSTATES


class Store:
    """Workflow state in a SQL database chosen by URL (``sqlite:///`` or ``postgresql://``)."""

    def __init__(self, url: str | URL, **engine_kwargs: Any) -> None:
        self._url = engine_mod.normalize_url(url)
        self.dialect: str = engine_mod.dialect_of(self._url)
        self.engine: Engine = engine_mod.create_engine(self._url, **engine_kwargs)

    @property
    def url(self) -> str:
        """The URL with the password hidden (safe to log)."""
        return self._url.render_as_string(hide_password=True)

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def migrate(self) -> None:
        """Run the migrations to head: idempotent, safe when processes race."""
        with self._guard():
            migrator.upgrade(self.engine)

    # -- transactions ------------------------------------------------------------------

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except sa_exc.TimeoutError as exc:  # connection pool exhausted
            raise errors.StoreUnavailable(self.url, f"no free connection: {exc}") from exc
        except sa_exc.DBAPIError as exc:
            if isinstance(exc, sa_exc.OperationalError) or exc.connection_invalidated or _session_ended(exc):
                raise errors.StoreUnavailable(self.url, _reason(exc)) from exc
            raise

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._guard(), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._guard(), self.engine.connect() as conn:
            conn.execution_options(**{engine_mod.READ_ONLY: True})
            with conn.begin():
                yield conn

    @contextmanager
    def step(self, instance_id: str) -> Iterator[StepTx]:
        """Open a step: one transaction with the instance row locked.

        Leaving the block commits; an exception rolls back.  ``tx.instance`` is ``None``
        when the instance does not exist.
        """
        with self._write() as conn:
            tx = StepTx(conn, instance_id, ops.lock_instance(conn, instance_id))
            try:
                yield tx
            finally:
                tx.close()

    @contextmanager
    def step_batch(self, instance_ids: Sequence[str], clock: Callable[[], datetime] = records.utcnow, *,
                   skip_locked: bool = True) -> Iterator[BatchTx]:
        """Open the steps of many instances: one transaction, their rows locked in ID order
        and their inboxes read as visible at ``clock()`` once the locks are held (``batch.now``;
        ``skip_locked``: on PostgreSQL, rows another transaction holds are skipped and listed
        in ``batch.skipped`` instead of waited for). Leaving the block commits."""
        with self._write() as conn:
            yield batch_mod.lock(conn, instance_ids, clock, skip_locked=skip_locked)

    # -- writes outside a step ---------------------------------------------------------

    @_retry_on_conflict
    def create_instance(
        self, new: records.NewInstance, started: records.NewInboxMessage,
        outbox: Sequence[records.NewOutbox] = (),
    ) -> list[int]:
        """Create an instance with its first inbox message and outbox rows; returns the
        outbox ids.  An active instance with this ID -> ``InstanceAlreadyExists``; a
        terminal one is replaced (all its rows are deleted first).  The start message is
        visible at ``started.visible_at``, else ``new.start_at``, else now; outbox rows
        without an ``instance_id`` belong to the new instance."""
        with self._write() as conn:
            return ops.create_instance(conn, new, started, outbox, records.utcnow())

    @_retry_on_conflict
    def create_instance_with_history(
        self, new: records.NewInstance, history: Sequence[records.NewEvent], wake: records.NewInboxMessage,
    ) -> None:
        """Create an instance whose first generation already holds `history` (a rerun's
        copied prefix), with `wake` in its inbox to step it; one transaction, so no step
        sees the instance without its history. An active instance with this ID ->
        ``InstanceAlreadyExists``; a terminal one is replaced."""
        with self._write() as conn:
            ops.create_instance(conn, new, wake, (), records.utcnow())
            if history:
                conn.execute(ops.INSERT_HISTORY, step_mod.history_rows(new.instance_id, 0, history))

    @_retry_on_conflict
    def enqueue(
        self, instance_id: str, messages: Sequence[records.NewInboxMessage],
        outbox: Sequence[records.NewOutbox] = (),
    ) -> int:
        """Insert inbox messages, skipping message ids already there; returns how many
        were inserted.  Outbox rows are written only if at least one message was new (a
        duplicate delivery has no effect); those without an ``instance_id`` belong to
        this instance.  Unknown instance -> ``InstanceNotFound``."""
        with self._write() as conn:
            now = records.utcnow()
            inserted = ops.enqueue(conn, instance_id, messages, now)
            if inserted:
                ops.add_outbox(conn, outbox, now, instance_id)
            return inserted

    @_retry_on_conflict
    def purge(self, instance_id: str, recursive: bool = True) -> int:
        """Delete every row of a terminal instance (and of all its descendants when
        ``recursive``); returns the number of rows deleted."""
        with self._write() as conn:
            root = ops.lock_instance(conn, instance_id)
            if root is None:
                raise errors.InstanceNotFound(instance_id)
            if not root.is_terminal:
                raise errors.InstanceNotTerminal(instance_id, root.status)
            ids = [instance_id]
            seen = {instance_id}
            frontier = [instance_id] if recursive else []
            while frontier:
                found: list[str] = []
                for part in ops.chunks(frontier):
                    t = schema.instances
                    stmt = (
                        sa.select(t.c.instance_id, t.c.status)
                        .where(t.c.parent_instance_id.in_(part))
                        .order_by(t.c.instance_id)
                        .with_for_update(key_share=True)
                    )
                    for child_id, status in conn.execute(stmt):
                        if status not in records.TERMINAL_STATUSES:
                            raise errors.InstanceNotTerminal(child_id, status, instance_id)
                        if child_id not in seen:
                            seen.add(child_id)
                            found.append(child_id)
                ids.extend(found)
                frontier = found
            return ops.delete_instance_rows(conn, ids)

    # -- queries -----------------------------------------------------------------------

    def get_instance(self, instance_id: str) -> records.InstanceRecord | None:
        with self._read() as conn:
            return ops.get_instance(conn, instance_id)

    def list_instances(
        self, *, app_id: str | None = None, name: str | None = None,
        statuses: Iterable[str] | None = None, created_after: datetime | None = None,
        created_before: datetime | None = None, limit: int = 100, offset: int = 0,
    ) -> list[records.InstanceRecord]:
        """Instances matching every given filter, oldest first (``created_after`` is
        inclusive, ``created_before`` exclusive)."""
        t = schema.instances
        f = listing.InstanceFilter(app_id=app_id, name=name, statuses=None if statuses is None else tuple(statuses),
                                   created_after=created_after, created_before=created_before)
        stmt = listing.where(sa.select(t), f).order_by(t.c.created_at, t.c.instance_id).limit(limit).offset(offset)
        with self._read() as conn:
            return [ops.to_instance(r) for r in conn.execute(stmt)]

    def page_instances(self, f: listing.InstanceFilter, *, newest_first: bool = True,
                       after: listing.Position | None = None, limit: int = 50) -> list[records.InstanceRecord]:
        """A keyset page of instances (see `persistence.listing`)."""
        with self._read() as conn:
            return listing.page(conn, f, newest_first=newest_first, after=after, limit=limit)

    def count_by_status(self, f: listing.InstanceFilter) -> dict[str, int]:
        with self._read() as conn:
            return listing.count_by_status(conn, f)

    def history(self, instance_id: str, generation: int | None = None) -> list[records.EventRecord]:
        """History of one generation (default: the current one), by sequence."""
        with self._read() as conn:
            inst = ops.get_instance(conn, instance_id)
            if inst is None:
                raise errors.InstanceNotFound(instance_id)
            return ops.history(conn, instance_id, inst.generation if generation is None else generation)

    def signed_history(self, instance_id: str) -> tuple[
        records.InstanceRecord, list[records.EventRecord], list[records.SignatureRecord], dict[int, bytes]
    ]:
        """The instance, its current generation's events and signatures, and the certificates
        those reference, read in one transaction (what verifying a read needs)."""
        with self._read() as conn:
            inst = ops.get_instance(conn, instance_id)
            if inst is None:
                raise errors.InstanceNotFound(instance_id)
            events = ops.history(conn, instance_id, inst.generation)
            sigs = ops.signatures(conn, instance_id, inst.generation)
            return inst, events, sigs, ops.certificates(conn, [s.cert_id for s in sigs])

    def children(self, instance_id: str) -> list[records.InstanceRecord]:
        t = schema.instances
        stmt = (
            sa.select(t)
            .where(t.c.parent_instance_id == instance_id)
            .order_by(t.c.created_at, t.c.instance_id)
        )
        with self._read() as conn:
            return [ops.to_instance(r) for r in conn.execute(stmt)]

    def expired_roots(self, status: str | None, finished_before: datetime, limit: int = 100) -> list[str]:
        """Terminal top-level instances (of ``status``, or any terminal one when None) that
        finished before ``finished_before``: what a retention policy purges."""
        t = schema.instances
        statuses = [status] if status is not None else list(records.TERMINAL_STATUSES)
        stmt = (
            sa.select(t.c.instance_id)
            .where(t.c.status.in_(statuses), t.c.parent_instance_id.is_(None),
                   t.c.completed_at < records.as_utc(finished_before))
            .order_by(t.c.completed_at)
            .limit(limit)
        )
        with self._read() as conn:
            return [r.instance_id for r in conn.execute(stmt)]

    def unfinished_instances(self, app_id: str) -> list[records.InstanceRecord]:
        """Instances of ``app_id`` that are not COMPLETED, FAILED or TERMINATED."""
        t = schema.instances
        stmt = (
            sa.select(t)
            .where(t.c.app_id == app_id, t.c.status.not_in(list(records.TERMINAL_STATUSES)))
            .order_by(t.c.created_at, t.c.instance_id)
        )
        with self._read() as conn:
            return [ops.to_instance(r) for r in conn.execute(stmt)]

    # -- timers and reconcile ----------------------------------------------------------

    @_retry_on_conflict
    def fire_due_timers(
        self, now: datetime,
        make_message: Callable[[records.TimerRecord], records.NewInboxMessage],
        app_id: str | None = None, limit: int = 500,
    ) -> list[records.TimerRecord]:
        """Move due timers into their instances' inboxes, in one transaction.

        Claimed rows are locked with ``SKIP LOCKED`` on PostgreSQL (SQLite has one
        writer), then deleted, so two concurrent callers never fire the same timer.
        The message defaults to ``visible_at=now``.
        """
        t = schema.timers
        stmt = sa.select(t).where(t.c.fire_at <= now)
        if app_id is not None:
            stmt = stmt.where(t.c.app_id == app_id)
        stmt = stmt.order_by(t.c.fire_at, t.c.id).limit(limit).with_for_update(skip_locked=True)
        with self._write() as conn:
            fired = [ops.to_timer(r) for r in conn.execute(stmt)]
            created = records.utcnow()
            messages = []
            for timer in fired:
                msg = make_message(timer)
                if msg.visible_at is None:
                    msg = records.NewInboxMessage(msg.message_id, msg.type, msg.payload, now)
                messages.append((timer.instance_id, msg))
            ops.insert_messages_many(conn, messages, created)
            for part in ops.chunks([tm.id for tm in fired]):
                conn.execute(sa.delete(t).where(t.c.id.in_(part)))
            return fired

    def pending_instances(
        self, now: datetime, app_id: str | None = None, limit: int = 1000
    ) -> list[tuple[str, str]]:
        """``(instance_id, app_id)`` of instances with inbox messages visible at ``now``,
        longest waiting first.  Pass ``now - grace`` to skip messages just enqueued."""
        i, n = schema.inbox, schema.instances
        stmt = (
            sa.select(i.c.instance_id, n.c.app_id)
            .join(n, n.c.instance_id == i.c.instance_id)
            .where(i.c.visible_at <= now)
        )
        if app_id is not None:
            stmt = stmt.where(n.c.app_id == app_id)
        stmt = (
            stmt.group_by(i.c.instance_id, n.c.app_id)
            .order_by(sa.func.min(i.c.visible_at), i.c.instance_id)
            .limit(limit)
        )
        with self._read() as conn:
            return [(r[0], r[1]) for r in conn.execute(stmt)]

    def backlog(self, now: datetime | None = None) -> tuple[int, int]:
        """(inbox messages visible at `now`, outbox rows never marked sent): the work that
        waits for an orchestrator and for the broker."""
        i, o = schema.inbox, schema.outbox
        now = now or records.utcnow()
        with self._read() as conn:
            inbox = conn.execute(sa.select(sa.func.count()).select_from(i).where(i.c.visible_at <= now)).scalar_one()
            outbox = conn.execute(sa.select(sa.func.count()).select_from(o).where(o.c.sent_at.is_(None))).scalar_one()
        return int(inbox), int(outbox)

    @_retry_on_conflict
    def claim_due_outbox(
        self, now: datetime, hold_until: datetime, limit: int = 100, unsent_grace_seconds: float = 5
    ) -> list[records.OutboxRecord]:
        """Outbox rows to (re)send, claimed: never sent and older than the grace (the step
        that wrote them had time to publish), or sent with a lease that ran out. The rows are locked (``SKIP LOCKED`` on PostgreSQL) and
        marked sent with ``lease_until=hold_until`` in the same transaction, so two
        reconcilers running at once (two ticks, two beats, two orchestrators) never re-send
        the same row; the caller publishes them and then calls ``mark_outbox_sent``. A
        claimed row that is never published is offered again after ``hold_until``."""
        o = schema.outbox
        stmt = _due_outbox_query(now, limit, unsent_grace_seconds).with_for_update(skip_locked=True)
        with self._write() as conn:
            rows = [ops.to_outbox(r) for r in conn.execute(stmt)]
            for part in ops.chunks([r.id for r in rows]):
                conn.execute(sa.update(o).where(o.c.id.in_(part)).values(
                    sent_at=sa.func.coalesce(o.c.sent_at, now), lease_until=hold_until))
            return rows

    def sent_activity_calls(
        self, app_id: str, keys: Sequence[tuple[str, str]] | None = None, sent_before: datetime | None = None
    ) -> list[records.OutboxRecord]:
        """Activity outbox rows already sent and still waiting for their result, of the
        instances of ``app_id``; only those with these ``(instance_id, dedup_key)`` when
        ``keys`` is given, only those last sent before ``sent_before`` when it is."""
        o, n = schema.outbox, schema.instances
        stmt = (
            sa.select(o).join(n, n.c.instance_id == o.c.instance_id)
            .where(n.c.app_id == app_id, o.c.kind == records.OUTBOX_ACTIVITY, o.c.sent_at.is_not(None))
            .order_by(o.c.id)
        )
        if sent_before is not None:
            stmt = stmt.where(o.c.sent_at < sent_before)
        with self._read() as conn:
            if keys is None:
                return [ops.to_outbox(r) for r in conn.execute(stmt)]
            out: list[records.OutboxRecord] = []
            for part in ops.chunks(list(keys)):
                wanted = sa.tuple_(o.c.instance_id, o.c.dedup_key).in_(list(part))
                out += [ops.to_outbox(r) for r in conn.execute(stmt.where(wanted))]
            return out

    @_retry_on_conflict
    def mark_outbox_sent(
        self, ids: Sequence[int], now: datetime, lease_until: datetime | None = None
    ) -> None:
        """Record that these outbox rows were published.

        ``orchestrate`` rows are deleted (the inbox holds the truth); other rows stay
        until their result is consumed (``StepTx.delete_outbox``): ``sent_at=now``,
        ``attempts + 1``, and ``lease_until`` after which ``claim_due_outbox`` offers them again
        (``None``: never).
        """
        ids = list(ids)
        if not ids:
            return
        with self._write() as conn:
            for part in ops.chunks(ids):
                conn.execute(ops.DELETE_SENT_ORCHESTRATE, {"ids": list(part)})
                conn.execute(ops.MARK_SENT, {"ids": list(part), "sent_at": now, "lease_until": lease_until})


def _reason(exc: sa_exc.DBAPIError) -> str:
    text = str(exc.orig) if exc.orig is not None else str(exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc.orig).__name__
