"""The orchestrator's step: lock, take the inbox, replay, append, write effects, commit,
then publish ("save first, then wake").

One step is one transaction. Publishing happens only after commit, from outbox rows, so a
crash between the two loses nothing: the reconcile tick re-sends what was never marked sent.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from orchestrator import faults, inbox
from orchestrator.cache import CacheKey, ReplayCache
from orchestrator.effects import Effects, activity_key, completion_fields
from orchestrator.engine import codec
from orchestrator.engine import events as ev
from orchestrator.engine.executor import CONTINUED_AS_NEW, STALLED, ExecutionResult, Replay, Stall
from orchestrator.engine.registry import Registry
from persistence.records import (
    OUTBOX_ACTIVITY,
    OUTBOX_ORCHESTRATE,
    InboxRecord,
    InstanceRecord,
    NewEvent,
    NewInboxMessage,
    NewOutbox,
    OutboxRecord,
    utcnow,
)
from persistence.step import StepTx
from persistence.store import Store

log = logging.getLogger("ledgerflow.orchestrator")


class Publisher:
    """What the service needs from the broker; `brokers.messages` over a Celery app."""

    def orchestrate(self, app_id: str, instance_id: str) -> None: ...

    def activity(self, app_id: str, pool: str | None, request: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class StepOutcome:
    instance_id: str
    status: str
    events_appended: int
    cache_hit: bool


class OrchestratorService:
    """Drives the replay engine for one app over a store and a broker."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        publisher: Publisher,
        app_id: str,
        *,
        pools: dict[str, str] | None = None,
        cache: ReplayCache | None = None,
        activity_lease: timedelta = timedelta(minutes=5),
        on_commit: Callable[[str, str], None] | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.publisher = publisher
        self.app_id = app_id
        self.pools = pools or {}
        self.cache = cache if cache is not None else ReplayCache()
        self.activity_lease = activity_lease
        self.on_commit = on_commit

    # -- the step ----------------------------------------------------------------------

    def run_until_idle(self, instance_id: str, max_steps: int = 100) -> None:
        """Step until the inbox holds nothing visible (messages can arrive mid-step)."""
        for _ in range(max_steps):
            if self.run_step(instance_id) is None:
                return

    def run_step(self, instance_id: str) -> StepOutcome | None:
        """One step of `instance_id`; None when there was nothing to do."""
        now = utcnow()
        try:
            with self.store.step(instance_id) as tx:
                outcome, outbox, replay_to_keep = self._step(tx, now)
                outbox_ids = tx.add_outbox(outbox) if outbox else []
                final = tx.instance
        except Exception:
            self.cache.discard(instance_id)  # the database is the truth

            raise
        if outcome is None:
            return None
        faults.after_commit()
        if replay_to_keep is not None and final is not None:
            self.cache.put(instance_id, _cache_key(final), replay_to_keep)
        self.publish(list(zip(outbox_ids, outbox, strict=True)))
        if self.on_commit is not None:
            self.on_commit(instance_id, outcome.status)
        return outcome

    def _step(self, tx: StepTx, now: datetime) -> tuple[StepOutcome | None, list[NewOutbox], Replay | None]:
        inst = tx.instance
        if inst is None:
            return None, [], None
        messages = tx.visible_inbox(now)
        if not messages:
            return None, [], None
        if inst.is_terminal:
            tx.delete_inbox([m.id for m in messages])
            log.info("dropped %d message(s) for finished instance", len(messages), extra=_ids(inst))
            return None, [], None
        events = self._decode(inst, messages)
        replay, hit = self._replay_for(tx, inst)
        if isinstance(replay, Stall):
            return self._stall(tx, inst, replay), [], None
        base = replay.events_applied
        result = replay.step([ev.OrchestratorStarted(inbox.naive_utc(now)), *events])
        if result.status == STALLED:
            assert result.stall is not None
            return self._stall(tx, inst, result.stall), [], None
        tx.append_history(_stored(result.new_events, base))
        tx.delete_inbox([m.id for m in messages])
        consumed = [activity_key(inst.generation, e.task_id) for e in events if isinstance(e, (ev.TaskCompleted, ev.TaskFailed))]
        if consumed:
            tx.delete_outbox(consumed)
        effects = Effects(tx, inst, now, self.pools)
        for action in result.actions:
            effects.apply(action)
        tx.update_instance(**self._status_fields(inst, result))
        keep = replay if result.completion is None else None
        log.info(
            "step: %d event(s) in, %d action(s) out, status %s%s", len(events), len(result.actions), result.status,
            " (cached)" if hit else "", extra=_ids(inst),
        )
        return StepOutcome(inst.instance_id, result.status, len(result.new_events), hit), effects.outbox, keep

    def _decode(self, inst: InstanceRecord, messages: Sequence[InboxRecord]) -> list[ev.HistoryEvent]:
        events = []
        for m in messages:
            generation = inbox.message_generation(m.message_id)
            if generation is not None and generation != inst.generation:
                log.info("dropped message %s of generation %s", m.message_id, generation, extra=_ids(inst))
                continue
            try:
                events.append(codec.decode(m.type, m.payload))
            except codec.CodecError as exc:
                log.error("dropped unreadable inbox message %s: %s", m.message_id, exc, extra=_ids(inst))
        return events

    def _replay_for(self, tx: StepTx, inst: InstanceRecord) -> tuple[Replay | Stall, bool]:
        cached = self.cache.take(inst.instance_id, _cache_key(inst))
        if cached is not None:
            return cached, True
        history = [codec.decode(r.type, r.payload) for r in tx.history()]
        replay = Replay(self.registry, inst.instance_id)
        stall = replay.replay(history)
        return (stall if stall is not None else replay), False

    def _stall(self, tx: StepTx, inst: InstanceRecord, stall: Stall) -> StepOutcome:
        """Leave the inbox as it is and wait for code that can run this history."""
        failure = json.dumps({"message": stall.description, "error_type": stall.reason, "stack_trace": None})
        if inst.status != STALLED or inst.failure != failure:
            tx.update_instance(status=STALLED, failure=failure)
        log.warning("stalled (%s): %s", stall.reason, stall.description, extra=_ids(inst))
        return StepOutcome(inst.instance_id, STALLED, 0, False)

    @staticmethod
    def _status_fields(inst: InstanceRecord, result: ExecutionResult) -> dict[str, Any]:
        fields: dict[str, Any] = {"status": result.status, "custom_status": result.custom_status}
        if result.completion is not None:
            fields.update(completion_fields(result.completion))
            if result.completion.status == CONTINUED_AS_NEW:
                fields["failure"] = None
        elif inst.status == STALLED:
            fields["failure"] = None
        return fields

    # -- after commit ------------------------------------------------------------------

    def publish(self, rows: Sequence[tuple[int, NewOutbox | OutboxRecord]]) -> None:
        """Publish outbox rows, then mark them sent; a failure leaves them for reconcile."""
        sent: list[int] = []
        for row_id, row in rows:
            try:
                payload = json.loads(row.payload)
                if row.kind == OUTBOX_ORCHESTRATE:
                    self.publisher.orchestrate(row.app_id, payload["instance_id"])
                elif row.kind == OUTBOX_ACTIVITY:
                    self.publisher.activity(row.app_id, payload.get("pool"), payload)
                sent.append(row_id)
            except Exception as exc:  # the broker is the fast path; reconcile re-sends
                log.warning("publish of outbox row %s failed: %r", row_id, exc)
        if sent:
            now = utcnow()
            self.store.mark_outbox_sent(sent, now, lease_until=now + self.activity_lease)

    # -- messages from outside ---------------------------------------------------------

    def deliver(self, instance_id: str, message: dict[str, Any]) -> bool:
        """Put an activity result into the inbox (idempotent) and step. False if dropped."""
        inst = self.store.get_instance(instance_id)
        if inst is None or inst.is_terminal:
            log.info("dropped result %s: instance gone or finished", message.get("message_id"),
                     extra={"instance_id": instance_id})
            return False
        if message.get("generation") != inst.generation or message.get("run") not in (None, inbox.run_token(inst)):
            log.info("dropped result %s from an earlier run or generation", message.get("message_id"), extra=_ids(inst))
            return False
        self.store.enqueue(instance_id, [NewInboxMessage(message_id=message["message_id"], type=message["type"],
                                                         payload=message["payload"])])
        self.run_until_idle(instance_id)
        return True


def _stored(events: Sequence[ev.HistoryEvent], base: int) -> list[NewEvent]:
    rows = []
    for offset, event in enumerate(events):
        type_name, payload = codec.encode(event)
        rows.append(NewEvent(sequence=base + offset, type=type_name, payload=payload,
                             timestamp=inbox.aware_utc(event.timestamp)))
    return rows


def _cache_key(inst: InstanceRecord) -> CacheKey:
    return CacheKey(inst.created_at, inst.generation, inst.step_count)


def _ids(inst: InstanceRecord) -> dict[str, Any]:
    return {"instance_id": inst.instance_id, "workflow": inst.name, "app_id": inst.app_id}
