"""Small factories for the persistence tests (kept apart so every test reads short)."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from persistence import records, schema
from persistence.records import NewEvent, NewInboxMessage, NewInstance, NewOutbox
from persistence.store import Store

APP = "app"


def now() -> datetime:
    return records.utcnow()


def ago(seconds: float) -> datetime:
    return records.utcnow() - timedelta(seconds=seconds)


def later(seconds: float) -> datetime:
    return records.utcnow() + timedelta(seconds=seconds)


def started(visible_at: datetime | None = None, message_id: str = "start") -> NewInboxMessage:
    return NewInboxMessage(message_id, "ExecutionStarted", '{"input": null}', visible_at)


def message(message_id: str, type: str = "EventRaised", payload: str = "{}",
            visible_at: datetime | None = None) -> NewInboxMessage:
    return NewInboxMessage(message_id, type, payload, visible_at)


def event(sequence: int, type: str = "TaskScheduled", payload: str = "{}") -> NewEvent:
    return NewEvent(sequence, type, payload, records.utcnow())


def orchestrate(instance_id: str, app_id: str = APP) -> NewOutbox:
    return NewOutbox(app_id, "orchestrate", f'{{"instance_id": "{instance_id}"}}', instance_id)


def create(store: Store, instance_id: str, *, app_id: str = APP, name: str = "wf",
           status: str = "PENDING", parent: str | None = None,
           created_at: datetime | None = None, start_at: datetime | None = None,
           input: str | None = None) -> list[int]:
    new = NewInstance(
        instance_id, app_id, name, input=input, status=status, parent_instance_id=parent,
        parent_app_id=APP if parent else None, parent_task_id=0 if parent else None,
        created_at=created_at, start_at=start_at,
    )
    return store.create_instance(new, started(), [orchestrate(instance_id, app_id)])


def set_status(store: Store, instance_id: str, status: str) -> None:
    with store.step(instance_id) as tx:
        tx.update_instance(status=status)


def fill(store: Store, instance_id: str) -> None:
    """Give an instance a row in every table: history, inbox, a timer, an activity."""
    with store.step(instance_id) as tx:
        tx.append_history([event(0), event(1)])
        tx.add_timers([records.NewTimer(0, later(3600))])
        tx.add_outbox([NewOutbox(APP, "activity", "{}", dedup_key="task:0")])
    store.enqueue(instance_id, [message(f"m-{instance_id}")])


def row_counts(store: Store, instance_id: str) -> dict[str, int]:
    with store.engine.connect() as conn:
        return {
            t.name: conn.execute(
                sa.select(sa.func.count()).select_from(t).where(t.c.instance_id == instance_id)
            ).scalar_one()
            for t in schema.INSTANCE_TABLES
            if t is not schema.history_signatures  # signed histories: tests/integration/security
        }


def total_rows(store: Store) -> int:
    with store.engine.connect() as conn:
        return sum(
            conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in schema.INSTANCE_TABLES
        )


def due_outbox(store: Store, at: datetime, unsent_grace_seconds: float = 5) -> list[records.OutboxRecord]:
    """The rows a reconciler would re-send at `at`, claimed as the ticker claims them
    (`Store.claim_due_outbox`), held only until `at` so they are offered again after it."""
    return store.claim_due_outbox(at, hold_until=at, unsent_grace_seconds=unsent_grace_seconds)
