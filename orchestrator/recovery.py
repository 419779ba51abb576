"""Recovery by liveness, run by the reconcile tick (see `brokers.liveness`).

- A call whose holder stopped renewing it (an activity worker killed mid-call, an
  orchestrator killed while committing its result) is sent again at once, with the same
  execution id: the workers' call memory runs it again only if it never finished, else
  sends the remembered result again.
- When the broker lost its data (its epoch vanished), every call published before the loss
  was found and not held by a live process is sent again, and every instance with a pending
  inbox is woken, once the workers had `RECOVERY_GRACE_SECONDS` to renew what they hold.

- An activity message a worker received but never marked (it died within moments) is taken
  over from Redis's unacknowledged set and sent again.
- Every `AUDIT_SECONDS` (once per app, whichever tick comes first), a call found neither in a
  queue, received nor held by anyone, twice in a row, is sent again: the net under every
  other check, so a call lost in a way nothing above foresaw costs seconds, not the lease.

A call merely waiting in a queue is never held, so it is never sent again for waiting.
Every action is logged on its own line: what was re-sent, why, for which instance.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from brokers import wire
from brokers.liveness import RECOVERY_GRACE_SECONDS, BrokerWatch
from brokers.queues import DELIVER_TASK, activity_name_of, activity_queue, workflow_queue
from orchestrator.service import OrchestratorService
from persistence.records import OUTBOX_ACTIVITY, OutboxRecord

log = logging.getLogger("ledgerflow.recovery")

#: Wake-ups published after a broker data loss, at most (the oldest inboxes first).
WAKE_LIMIT = 100_000


#: One tick of an app recovers at a time (ticks overlap when they run long): at most this long.
RECOVERY_LOCK_SECONDS = 60.0


def recover(service: OrchestratorService, watch: BrokerWatch, now: datetime) -> int:
    """Run the liveness and broker-loss checks for the service's app, unless another tick of
    the app is running them (two at once would re-send the same lost call twice); returns
    the number of recovery actions taken (calls re-sent, instances woken)."""
    with watch.exclusive(f"recover:{service.app_id}", RECOVERY_LOCK_SECONDS) as mine:
        return _recover(service, watch, now) if mine else 0


def _recover(service: OrchestratorService, watch: BrokerWatch, now: datetime) -> int:
    app = service.app_id
    try:
        stale = watch.claim_stale(app)
        lost, found = watch.check_epoch(app)
    except Exception as exc:  # Redis away: nothing to learn now; the tick comes back
        log.debug("liveness check failed: %r", exc)
        return 0
    actions = 0
    if stale:
        holders = {(h.instance_id, h.key): h.holder for h in stale}
        rows = service.store.sent_activity_calls(app, list(holders))
        actions += resend(service, rows, lambda row: f"its holder {holders[(row.instance_id or '', row.dedup_key or '')]} "
                                                    "stopped renewing its liveness mark")
    orphans = _orphans(service, watch)
    actions += orphans
    if stale or orphans:  # a process died: the calls it was taking from Redis may be lost too
        actions += _lost_in_flight(service, watch, now)
    elif watch.audit_due(app, AUDIT_SECONDS):
        actions += _audit(service, watch, now)
    if lost:
        log_loss(app)
    if found is not None:
        held = watch.held(app)
        before = datetime.fromtimestamp(found, timezone.utc)
        rows = [r for r in service.store.sent_activity_calls(app, sent_before=before)
                if (r.instance_id, r.dedup_key) not in held]
        actions += resend(service, rows, lambda _: "the broker lost its data and no live process holds it")
        pending = service.store.pending_instances(now, app_id=app, limit=WAKE_LIMIT)
        service.publisher.wake([(owner, instance_id) for instance_id, owner in pending])
        for instance_id, _ in pending:
            log.warning("woke instance %s: the broker lost its data while its inbox had work", instance_id,
                        extra={"instance_id": instance_id})
        actions += len(pending)
    return actions


def _orphans(service: OrchestratorService, watch: BrokerWatch) -> int:
    """Activity calls (or their results) a worker (an orchestrator) received and never marked:
    it died within moments of the receipt, and the message sits unacknowledged in Redis, which
    would restore it only after the visibility timeout. Taken over, the call sent again."""
    app = service.app_id
    received = {}
    for tag, name, args in watch.unacked():
        key = _call_of(name, args)
        if key is not None:
            received[key] = tag
    if not received:
        return 0
    held = watch.held(app)
    orphans = {key: tag for key, tag in received.items() if key not in held}
    rows = [r for r in service.store.sent_activity_calls(app, list(orphans))
            if watch.take_unacked(orphans[(r.instance_id or "", r.dedup_key or "")])]
    return resend(service, rows, lambda _: "the process that received it died before it could mark it")


#: A call published this recently may still be on its way into a queue.
IN_FLIGHT_SECONDS = 2.0
#: How often the audit looks for calls that are nowhere, and how old a call must be for it.
AUDIT_SECONDS = 10.0
#: A queue longer than this is not read by the audit (a backlog: it runs once it drained).
AUDIT_QUEUE_LIMIT = 20_000


def _lost_in_flight(service: OrchestratorService, watch: BrokerWatch, now: datetime) -> int:
    """After a process died: the calls it had just taken from a queue and not yet recorded as
    received (Redis pops a message before its consumer writes it to the unacknowledged set)
    are nowhere, and so are the results an orchestrator had just taken. Re-send every call
    published a moment ago or more whose result was not applied, when neither the call nor
    its result is in a queue, received or held by anyone (a finished call is answered from
    the workers' memory of its result). Reads the queues whole: it runs only when a death
    was found."""
    rows = service.store.sent_activity_calls(service.app_id, sent_before=now - timedelta(seconds=IN_FLIGHT_SECONDS))
    lost = _nowhere(service, watch, rows)
    return resend(service, lost or [], lambda _: "a process died while taking it or its result from the broker: "
                                                 "neither is in a queue, received or held by anyone")


def _audit(service: OrchestratorService, watch: BrokerWatch, now: datetime) -> int:
    """The periodic net: calls sent `AUDIT_SECONDS` ago or more that are nowhere (see
    `_nowhere`) are suspects; those that were suspects at the previous audit too are sent
    again (a call moving between two places while it is looked for is missed once, not
    twice). Skipped while a queue holds a backlog."""
    app = service.app_id
    rows = service.store.sent_activity_calls(app, sent_before=now - timedelta(seconds=AUDIT_SECONDS))
    lost = _nowhere(service, watch, rows, queue_limit=AUDIT_QUEUE_LIMIT)
    if lost is None:
        return 0
    suspects = {(r.instance_id or "", r.dedup_key or "") for r in lost}
    before = watch.swap_suspects(app, suspects, ttl=3 * AUDIT_SECONDS)
    confirmed = [r for r in lost if (r.instance_id, r.dedup_key) in before]
    return resend(service, confirmed, lambda _: f"found in no queue, received or held by anyone at two audits "
                                                f"{AUDIT_SECONDS:g}s apart")


def _nowhere(service: OrchestratorService, watch: BrokerWatch, rows: Sequence[OutboxRecord], *,
             queue_limit: int | None = None) -> list[OutboxRecord] | None:
    """The rows whose call (and result) is in no queue, received by no consumer and held by
    no live process. Reads the places in the order a call moves through them: its queue,
    what consumers received and hold (the worker running it), the results' queue, then what
    consumers received and hold again (the orchestrator applying it); a call moving on while
    they are read is seen in a later place. None when a queue is longer than `queue_limit`."""
    if not rows:
        return []
    app = service.app_id
    requests = {r.id: json.loads(r.payload) for r in rows}
    calls = {activity_queue(r.app_id, requests[r.id].get("pool")) for r in rows}
    if queue_limit is not None and any(watch.queue_length(q) > queue_limit for q in [*calls, workflow_queue(app)]):
        return None
    seen: set[tuple[str, str]] = set()

    def queued(queue: str) -> None:
        seen.update(key for name, args in watch.queued(queue) if (key := _call_of(name, args)) is not None)

    def received_or_held() -> None:
        seen.update(key for _, name, args in watch.unacked(limit=100_000, older_than=0)
                    if (key := _call_of(name, args)) is not None)
        seen.update(watch.held(app))

    for queue in calls:
        queued(queue)
    received_or_held()
    queued(workflow_queue(app))
    received_or_held()
    return [r for r in rows if (r.instance_id, r.dedup_key) not in seen]


def _call_of(name: str, args: tuple[Any, ...]) -> tuple[str, str] | None:
    """(instance id, call key) of an activity message, or of a result (`deliver`) message
    for an activity; None for anything else. Rows of other apps are not found later."""
    try:
        if activity_name_of(name) is not None:
            request = wire.ActivityRequest.from_wire(args[0])
            return request.instance_id, request.result_message_id
        if name == DELIVER_TASK:
            message = wire.ResultMessage.from_wire(args[1])
            if wire.is_task_result(message.message_id):
                return str(args[0]), message.message_id
    except (IndexError, KeyError, TypeError):
        pass
    return None


def check_at_start(watch: BrokerWatch, app_id: str) -> None:
    """An orchestrator starting: set the epoch if it is missing (a new deployment, or a loss
    while no orchestrator ran; the recovery it schedules re-sends what was published before)."""
    try:
        lost, _ = watch.check_epoch(app_id, take_due=False)
    except Exception as exc:  # Redis away: the first tick checks again
        log.debug("liveness check failed: %r", exc)
        return
    if lost:
        log_loss(app_id)


def log_loss(app_id: str) -> None:
    log.warning("the broker has no epoch for app %s (a new deployment, or the broker lost its data): calls "
                "published before now that no process holds are re-sent in %gs", app_id, RECOVERY_GRACE_SECONDS)


def held_calls(watch: BrokerWatch, app_id: str) -> set[tuple[str, str]]:
    """(instance id, call key) of the calls of `app_id` live processes hold; empty when Redis
    does not answer."""
    try:
        return watch.held(app_id)
    except Exception as exc:
        log.debug("liveness check failed: %r", exc)
        return set()


def resend(service: OrchestratorService, rows: Sequence[OutboxRecord], why: Callable[[OutboxRecord], str]) -> int:
    """Publish again the rows whose result someone still waits for, logging each with
    `why(row)`; returns how many were sent."""
    todo = current(service, rows)
    for _, row in todo:
        if row.kind == OUTBOX_ACTIVITY:
            request = wire.ActivityRequest.from_wire(json.loads(row.payload))
            what = f"activity {request.name} ({row.dedup_key}, attempt {request.attempt})"
        else:
            what = row.kind
        log.warning("re-sent %s of instance %s: %s", what, row.instance_id, why(row),
                    extra={"instance_id": row.instance_id})
    service.publish(todo)
    return len(todo)


def current(service: OrchestratorService, rows: Sequence[OutboxRecord]) -> list[tuple[int, OutboxRecord]]:
    """The rows whose result someone still waits for: activity rows of a terminal instance,
    or of an earlier generation, are left alone."""
    out = []
    for row in rows:
        if row.instance_id is not None and row.kind == OUTBOX_ACTIVITY:
            inst = service.store.get_instance(row.instance_id)
            if inst is None or inst.is_terminal or inst.generation != json.loads(row.payload).get("generation"):
                continue
        out.append((row.id, row))
    return out
