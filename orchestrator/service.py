"""The orchestrator's step: lock, take the inbox, replay, append, write effects, commit,
then publish ("save first, then wake").

One step is one transaction. Publishing happens only after commit, from outbox rows, so a
crash between the two loses nothing: the reconcile tick re-sends what was never marked sent.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from brokers import wire
from orchestrator import faults, inbox, spans
from orchestrator.cache import ReplayCache
from orchestrator.engine.registry import Registry
from orchestrator.guard import HistoryGuard
from orchestrator.logs import log_ids
from orchestrator.rules import AppRules
from orchestrator.sent_marks import SentMarks
from orchestrator.step import ReplayFactory, StepRunner, cache_key
from persistence import errors as store_errors
from persistence.records import OUTBOX_ORCHESTRATE, InstanceRecord, NewInboxMessage, NewOutbox, OutboxRecord, utcnow
from persistence.store import BatchTx, Store
from security.context import SecurityConfig, SecurityContext
from telemetry import metrics

log = logging.getLogger("ledgerflow.orchestrator")

#: The activity lease doubles with each re-send of the same call, up to this factor.
MAX_LEASE_FACTOR = 16


#: Instance IDs per wake-up message (one `orchestrate` message wakes up to this many).
WAKE_CHUNK = 64


class Publisher:
    """What the service needs from the broker; `brokers.messages` over a Celery app."""

    def orchestrate(self, app_id: str, instance_ids: Sequence[str]) -> None:
        """Wake the orchestrators of `app_id` for these instances (one message)."""

    def activity(self, app_id: str, request: wire.ActivityRequest) -> None:
        """Send one activity call to its pool (`request.pool`) of `app_id`."""

    def batch(self) -> contextlib.AbstractContextManager[None]:
        """Everything published inside shares one broker connection and producer."""
        return contextlib.nullcontext()

    def wake(self, wakeups: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """Wake `(app_id, instance_id)` pairs, `WAKE_CHUNK` instances per message; returns the
        pairs a message was sent for (a failed send is logged: reconcile wakes what it missed)."""
        by_app: dict[str, list[str]] = {}
        for app_id, instance_id in wakeups:
            by_app.setdefault(app_id, []).append(instance_id)
        woken: set[tuple[str, str]] = set()
        with self.batch():
            for app_id, ids in by_app.items():
                unique = list(dict.fromkeys(ids))
                for start in range(0, len(unique), WAKE_CHUNK):
                    chunk = unique[start:start + WAKE_CHUNK]
                    try:
                        self.orchestrate(app_id, chunk)
                    except Exception as exc:  # the broker is the fast path
                        log.warning("wake-up of %d instance(s) of app %s failed: %r", len(chunk), app_id, exc)
                        continue
                    woken.update((app_id, iid) for iid in chunk)
        return woken


@dataclass
class BatchOutcome:
    """What a batch did: each stepped instance's status, the instances another orchestrator
    held (to step after it lets go), the steps that failed and rolled back, and the result
    messages dropped."""

    stepped: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)

    def merge(self, other: BatchOutcome) -> BatchOutcome:
        return BatchOutcome({**self.stepped, **other.stepped}, self.skipped + other.skipped,
                            self.failed + other.failed, self.dropped + other.dropped)


class OrchestratorService:
    """Drives the replay engine for one app over a store and a broker."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        publisher: Publisher,
        app_id: str,
        *,
        rules: AppRules | None = None,
        security: SecurityContext | SecurityConfig | None = None,
        cache: ReplayCache | None = None,
        replays: ReplayFactory | None = None,
        on_commit: Callable[[Sequence[str]], None] | None = None,
        batch_size: int = 64,
        mark_interval: float = 0.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """`security`: history signing, attestations, propagation, access checks: a fixed
        context, or the configuration it is built from (None: the defaults, signing off);
        `replays`: how a run's live state is made (the registered Python code by default;
        `ledgerflow sidecar` hands the history to the app's own Dapr SDK); `on_commit`: told the instances each committed batch stepped;
        `mark_interval`: published outbox rows are marked sent every this many seconds (0: at
        once); `clock`: the time steps run at (a test environment's clock skips ahead)."""
        self.store = store
        self.publisher = publisher
        self.app_id = app_id
        self.clock = clock
        self.cache = cache if cache is not None else ReplayCache()
        self.guard = HistoryGuard(app_id, security)
        self.steps = StepRunner(registry, self.cache, self.guard, rules or AppRules(), clock, replays)
        self.on_commit = on_commit
        #: instances stepped in one transaction at most
        self.batch_size = batch_size
        self.sent_marks = SentMarks(store, mark_interval, clock=clock)

    @property
    def rules(self) -> AppRules:
        return self.steps.rules

    # -- batches of steps --------------------------------------------------------------

    def drive(self, wakeups: Sequence[str], results: Sequence[tuple[str, wire.ResultMessage]] = ()) -> BatchOutcome:
        """Step these instances (and those the results are for), at most `batch_size` per
        transaction. An instance another orchestrator held is waited for and stepped after
        (it may have read its inbox before our messages arrived)."""
        ids = list(dict.fromkeys([*wakeups, *(iid for iid, _ in results)]))
        total = BatchOutcome()
        for start in range(0, len(ids), self.batch_size):
            chunk = ids[start:start + self.batch_size]
            members = set(chunk)
            outcome = self.run_batch(chunk, [r for r in results if r[0] in members])
            if outcome.skipped:
                outcome = outcome.merge(self.run_batch(outcome.skipped, skip_locked=False))
                outcome.skipped = []
            total = total.merge(outcome)
        return total

    def run_batch(self, wakeups: Sequence[str], results: Sequence[tuple[str, wire.ResultMessage]] = (), *,
                  skip_locked: bool = True) -> BatchOutcome:
        """One transaction: lock the instances, put the results into their inboxes, step each
        instance that has visible messages, write what the steps recorded with bulk
        statements, commit, then publish what they produced and tell `on_commit`.

        If anything fails, the batch rolls back whole and its instances run again one per
        transaction, so a poisoned instance fails alone and the others still commit."""
        ids = list(dict.fromkeys([*wakeups, *(iid for iid, _ in results)]))
        if not ids:
            return BatchOutcome()
        try:
            return self._batch(ids, results, skip_locked)
        except store_errors.StoreUnavailable:
            raise
        except Exception:
            self._store_results(results)
            if len(ids) == 1:
                log.exception("step failed and was rolled back; its messages stay in the inbox and the reconcile "
                              "tick wakes it again", extra={"instance_id": ids[0], "app_id": self.app_id})
                return BatchOutcome(failed=[ids[0]])
            log.warning("a batch of %d instance(s) failed and was rolled back; stepping them one by one", len(ids))
        outcome = BatchOutcome()
        for instance_id in ids:
            outcome = outcome.merge(self.run_batch([instance_id], skip_locked=skip_locked))
        return outcome

    def _batch(self, ids: list[str], results: Sequence[tuple[str, wire.ResultMessage]], skip_locked: bool) -> BatchOutcome:
        outcome = BatchOutcome()
        rows: list[NewOutbox] = []
        reports: list[spans.StepReport] = []
        step_seconds = metrics.metrics().step_duration
        try:
            with self.store.step_batch(ids, self.clock, skip_locked=skip_locked) as batch:
                now = batch.now
                outcome.dropped = self._take_results(batch, results, now)
                ready = [iid for iid in batch.locked if batch.inboxes.get(iid)]
                cold = [iid for iid in ready if not self.cache.holds(iid, cache_key(batch.locked[iid]))]
                if len(cold) > 1:
                    batch.preload_histories(cold)
                for instance_id in ready:
                    tx = batch.step(instance_id)
                    began = time.perf_counter()
                    step = self.steps.step(tx, now)
                    step_seconds.observe(time.perf_counter() - began)
                    if step.keep is not None and tx.instance is not None:
                        # Before commit, so the next batch finds it (a failed batch discards it).
                        self.cache.put(instance_id, cache_key(tx.instance), step.keep)
                    if step.report is not None:
                        reports.append(step.report)
                    if step.status is not None:
                        outcome.stepped[instance_id] = step.status
                        rows += [dataclasses.replace(row, instance_id=row.instance_id or instance_id)
                                 for row in step.outbox]
                batch.write()
                outbox_ids = batch.add_outbox(rows, self.clock()) if rows else []
                outcome.skipped = batch.skipped
                if outcome.stepped:
                    faults.before_commit()
        except Exception:
            for instance_id in ids:
                self.cache.discard(instance_id)  # the database is the truth
            raise
        if outcome.stepped:
            faults.after_commit()
        metrics.redelivered("stale_result", len(outcome.dropped))
        spans.send(reports)
        self.publish(list(zip(outbox_ids, rows, strict=True)))
        if self.on_commit is not None and outcome.stepped:
            self.on_commit(list(outcome.stepped))
        return outcome

    def _take_results(self, batch: BatchTx, results: Sequence[tuple[str, wire.ResultMessage]],
                      now: datetime) -> list[str]:
        """Hand activity results to their steps: those of locked instances arrive with the
        batch, the others go into their inboxes (idempotent by message id) for the step
        after; returns the message ids dropped (instance gone or finished, earlier run)."""
        if not results:
            return []
        others = batch.instances([iid for iid, _ in results if iid not in batch.locked])
        dropped = []
        for instance_id, message in results:
            inst = batch.locked.get(instance_id) or others.get(instance_id)
            if not self._accepts(instance_id, inst, message):
                dropped.append(message.message_id)
                continue
            new = _inbox_message(message, now)
            if instance_id in batch.locked:
                batch.arrive(instance_id, new, now)
                continue
            try:
                batch.enqueue(instance_id, [new], now)
            except store_errors.InstanceNotFound:
                dropped.append(message.message_id)
        return dropped

    def _store_results(self, results: Sequence[tuple[str, wire.ResultMessage]]) -> None:
        """Put results into their inboxes in a transaction of their own (before stepping
        instances one by one after a failed batch, so no result depends on a step)."""
        now = self.clock()
        for instance_id, message in results:
            if self._accepts(instance_id, self.store.get_instance(instance_id), message):
                try:
                    self.store.enqueue(instance_id, [_inbox_message(message, now)])
                except store_errors.InstanceNotFound:
                    continue

    def run_until_idle(self, instance_id: str) -> None:
        """Step one instance until its inbox holds nothing visible."""
        self.drive([instance_id])

    def run_step(self, instance_id: str) -> str | None:
        """One step of `instance_id` alone (tests, tools): its status after the step, None
        when there was nothing to do."""
        return self.run_batch([instance_id], skip_locked=False).stepped.get(instance_id)

    # -- after commit ------------------------------------------------------------------

    def publish(self, rows: Sequence[tuple[int, NewOutbox | OutboxRecord]]) -> None:
        """Publish outbox rows over one producer (wake-ups `WAKE_CHUNK` instances a message),
        then mark them sent in one transaction per lease length; a failure leaves them for
        reconcile."""
        if not rows:
            return
        published = self.clock()  # before: a row is never marked sent later than it went out
        sent: dict[int, list[int]] = {}
        wakeups: list[tuple[int, tuple[str, str]]] = []

        def mark(row_id: int, row: NewOutbox | OutboxRecord) -> None:
            # Each re-send doubles the lease (up to 16x): an activity that is only waiting
            # in a long queue is not re-sent every lease period, which would grow the queue.
            attempts = row.attempts if isinstance(row, OutboxRecord) else 0
            sent.setdefault(min(2 ** attempts, MAX_LEASE_FACTOR), []).append(row_id)

        with self.publisher.batch():
            for row_id, row in rows:
                payload = json.loads(row.payload)
                if row.kind == OUTBOX_ORCHESTRATE:
                    wakeups.append((row_id, (row.app_id, payload["instance_id"])))
                    continue
                try:
                    self.publisher.activity(row.app_id, wire.ActivityRequest.from_wire(payload))
                    mark(row_id, row)
                except Exception as exc:  # the broker is the fast path; reconcile re-sends
                    log.warning("publish of outbox row %s failed: %r", row_id, exc)
            woken = self.publisher.wake([pair for _, pair in wakeups])
            sent.setdefault(1, []).extend(row_id for row_id, pair in wakeups if pair in woken)
        for factor, ids in sent.items():
            self.sent_marks.add(ids, self.rules.activity_lease * factor, published)

    # -- messages from outside ---------------------------------------------------------

    def deliver(self, instance_id: str, message: wire.ResultMessage) -> bool:
        """Put one activity result into the inbox (idempotent) and step; False if dropped."""
        return not self.drive([], [(instance_id, message)]).dropped

    def _accepts(self, instance_id: str, inst: InstanceRecord | None, message: wire.ResultMessage) -> bool:
        if inst is None or inst.is_terminal:
            log.info("dropped result %s: instance gone or finished", message.message_id,
                     extra={"instance_id": instance_id})
            return False
        if message.generation != inst.generation or message.run not in (None, inbox.run_token(inst)):
            log.info("dropped result %s from an earlier run or generation", message.message_id, extra=log_ids(inst))
            return False
        return True


def _inbox_message(message: wire.ResultMessage, now: datetime) -> NewInboxMessage:
    return NewInboxMessage(message_id=message.message_id, type=message.type, payload=message.payload, visible_at=now)
