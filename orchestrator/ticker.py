"""The beat's work: fire due timers, and reconcile what the broker may have lost.

Timers are rows; a tick claims the due ones (SKIP LOCKED on PostgreSQL) and turns each into
a TimerFired inbox message exactly once, then wakes the instance. Reconcile re-publishes
`orchestrate` for inboxes left unprocessed, re-sends calls whose holder died or that the
broker lost (`orchestrator.recovery`, on Redis), and outbox rows never marked sent or whose
activity lease ran out (the last resort: a call a live process holds is never re-sent for
its lease). Losing every message in the broker therefore loses no workflow.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from brokers import wire
from brokers.liveness import BrokerWatch
from orchestrator import inbox, recovery
from orchestrator.engine import clock
from orchestrator.engine import events as ev
from orchestrator.engine.status import COMPLETED, FAILED, TERMINATED
from orchestrator.service import OrchestratorService
from persistence import errors as store_errors
from persistence.records import OUTBOX_ACTIVITY, NewInboxMessage, OutboxRecord, TimerRecord, as_utc, utcnow
from telemetry import metrics

log = logging.getLogger("ledgerflow.ticker")

#: Timers fired per transaction, and at most this many transactions per tick.
FIRE_BATCH = 500
FIRE_ROUNDS = 40


def timer_fired_message(timer: TimerRecord) -> NewInboxMessage:
    fired = ev.TimerFired(clock.naive_utc(timer.fire_at), timer.timer_id, clock.naive_utc(timer.fire_at))
    return inbox.message(wire.timer_message_id(timer.generation, timer.timer_id), fired)


def tick(
    service: OrchestratorService,
    *,
    now: datetime | None = None,
    pending_grace: timedelta = timedelta(seconds=2),
    app_id: str | None = None,
    watch: BrokerWatch | None = None,
) -> None:
    """Fire due timers and re-publish forgotten work for `app_id` (default: the service's);
    with `watch` (a Redis broker) also recover by liveness."""
    now = now or utcnow()
    app = app_id or service.app_id
    fired: list[TimerRecord] = []
    woken: set[str] = set()
    for _ in range(FIRE_ROUNDS):  # a full batch means more are due: fire on, waking as we go
        batch = service.store.fire_due_timers(now, timer_fired_message, app_id=app, limit=FIRE_BATCH)
        fired += batch
        new = [t.instance_id for t in batch if t.instance_id not in woken]
        woken.update(new)
        service.publisher.wake([(app, instance_id) for instance_id in new])
        if len(batch) < FIRE_BATCH:
            break
    lateness = metrics.metrics().timer_lateness
    for timer in fired:
        lateness.observe(max(0.0, (now - as_utc(timer.fire_at)).total_seconds()))
    stale = service.store.pending_instances(now - pending_grace, app_id=app)
    service.publisher.wake([(owner, iid) for iid, owner in stale if iid not in woken])
    recovered = recovery.recover(service, watch, now) if watch is not None else 0
    resent = _resend_outbox(service, now, watch)
    purged = purge_expired(service, now)
    metrics.redelivered("recovered", recovered)
    metrics.redelivered("resent", resent)
    if fired or stale or resent or purged or recovered:
        log.info("tick: %d timer(s) fired, %d stale inbox(es) woken, %d outbox row(s) re-sent, %d recovery "
                 "action(s), %d purged", len(fired), len(stale), resent, recovered, purged)


_RETENTION_STATUS = {"anyTerminal": None, "completed": COMPLETED, "failed": FAILED, "terminated": TERMINATED}


def purge_expired(service: OrchestratorService, now: datetime, batch: int = 100) -> int:
    """Purge terminal instances older than the retention policy (with their children)."""
    purged = 0
    for key, age in service.rules.retention.items():
        for instance_id in service.store.expired_roots(_RETENTION_STATUS[key], now - age, limit=batch):
            try:
                service.store.purge(instance_id, recursive=True)
                purged += 1
            except (store_errors.InstanceNotFound, store_errors.InstanceNotTerminal):
                continue  # purged meanwhile, or a child still runs: a later tick retries
    return purged


def _resend_outbox(service: OrchestratorService, now: datetime, watch: BrokerWatch | None) -> int:
    # claimed (SKIP LOCKED): concurrent ticks never re-send the same row
    rows = service.store.claim_due_outbox(now, hold_until=now + service.rules.activity_lease)
    if rows and watch is not None:
        held = recovery.held_calls(watch, service.app_id)  # running: the claim renewed their lease
        rows = [r for r in rows if r.kind != OUTBOX_ACTIVITY or (r.instance_id, r.dedup_key) not in held]
    return recovery.resend(service, rows, _lease_reason)


def _lease_reason(row: OutboxRecord) -> str:
    if row.attempts == 0:
        return "never published after the commit of its step"
    return f"no result, no live holder and its lease ran out (sent {row.attempts} time(s))"
