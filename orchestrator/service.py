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
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from orchestrator import faults, inbox, spans
from orchestrator.cache import CacheKey, ReplayCache
from orchestrator.effects import Effects, activity_key, completion_fields, failure_json, orchestrate_row
from orchestrator.engine import codec
from orchestrator.engine import events as ev
from orchestrator.engine.executor import CONTINUED_AS_NEW, STALLED, ExecutionResult, Replay, Stall
from orchestrator.engine.registry import Registry
from orchestrator.sent_marks import SentMarks
from orchestrator.guard import HistoryGuard, Tampered, tamper_marker
from persistence import errors as store_errors
from persistence.records import (
    OUTBOX_ACTIVITY,
    PENDING,
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
from persistence.store import BatchTx, Store
from telemetry import metrics

log = logging.getLogger("ledgerflow.orchestrator")

DEFAULT_MAX_HISTORY_EVENTS = 50_000
#: The activity lease doubles with each re-send of the same call, up to this factor.
MAX_LEASE_FACTOR = 16


#: Instance IDs per wake-up message (one `orchestrate` message wakes up to this many).
WAKE_CHUNK = 64


class Publisher:
    """What the service needs from the broker; `brokers.messages` over a Celery app."""

    def orchestrate(self, app_id: str, instance_ids: Sequence[str]) -> None:
        """Wake the orchestrators of `app_id` for these instances (one message)."""

    def activity(self, app_id: str, pool: str | None, request: dict[str, Any]) -> None:
        """Send one activity call to its pool."""

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


@dataclass(frozen=True)
class StepOutcome:
    instance_id: str
    status: str


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
        pools: dict[str, str] | None = None,
        cache: ReplayCache | None = None,
        activity_lease: timedelta = timedelta(hours=1),
        on_commit: Callable[[Sequence[str]], None] | None = None,
        workflow_limits: dict[str, int] | None = None,
        retention: dict[str, timedelta] | None = None,
        security: Any = None,
        max_history_events: int | None = None,
        batch_size: int = 64,
        mark_interval: float = 0.0,
        clock: Callable[[], datetime] = utcnow,
        replays: Callable[[Registry, str], Replay] | None = None,
    ) -> None:
        self.clock = clock  # the time steps run at (a test environment's clock skips ahead)
        self.store = store
        self.registry = registry
        self.publisher = publisher
        self.app_id = app_id
        self.pools = pools or {}
        self.cache = cache if cache is not None else ReplayCache()
        #: builds the replayer of one instance: the engine's `Replay`, or another object with its
        #: interface (`ledgerflow sidecar` hands the history to the app's own Dapr SDK)
        self.replays = replays or Replay
        self.activity_lease = activity_lease
        self.on_commit = on_commit
        #: instances stepped in one transaction at most
        self.batch_size = batch_size
        #: published outbox rows are marked sent every `mark_interval` seconds (0: at once)
        self.sent_marks = SentMarks(store, mark_interval, clock=clock)
        #: workflow name -> most instances of it running at once, across all processes
        self.workflow_limits = workflow_limits or {}
        #: "anyTerminal" | "completed" | "failed" | "terminated" -> age after which to purge
        self.retention = retention or {}
        #: history signing, attestations, propagation, access checks (security.context.SecurityContext;
        #: None: from the environment)
        self.guard = HistoryGuard(app_id, security)
        #: a step that would take a run's history to this many events fails the run instead
        #: (HistoryLimitExceeded); 0: no limit. Default LEDGERFLOW_MAX_HISTORY_EVENTS, else 50,000.
        self.max_history_events = max_history_events if max_history_events is not None else int(
            os.environ.get("LEDGERFLOW_MAX_HISTORY_EVENTS", DEFAULT_MAX_HISTORY_EVENTS) or 0)

    # -- batches of steps --------------------------------------------------------------

    def drive(self, wakeups: Sequence[str], results: Sequence[tuple[str, dict[str, Any]]] = ()) -> BatchOutcome:
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

    def run_batch(self, wakeups: Sequence[str], results: Sequence[tuple[str, dict[str, Any]]] = (), *,
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

    def _batch(self, ids: list[str], results: Sequence[tuple[str, dict[str, Any]]], skip_locked: bool) -> BatchOutcome:
        outcome = BatchOutcome()
        rows: list[NewOutbox] = []
        reports: list[spans.StepReport] = []
        step_seconds = metrics.metrics().step_duration
        try:
            with self.store.step_batch(ids, self.clock, skip_locked=skip_locked) as batch:
                now = batch.now
                outcome.dropped = self._take_results(batch, results, now)
                ready = [iid for iid in batch.locked if batch.inboxes.get(iid)]
                cold = [iid for iid in ready if not self.cache.holds(iid, _cache_key(batch.locked[iid]))]
                if len(cold) > 1:
                    batch.preload_histories(cold)
                for instance_id in ready:
                    tx = batch.step(instance_id)
                    began = time.perf_counter()
                    step, outbox, keep = self._step(tx, now, reports)
                    step_seconds.observe(time.perf_counter() - began)
                    if keep is not None and tx.instance is not None:
                        # Before commit, so the next batch finds it (a failed batch discards it).
                        self.cache.put(instance_id, _cache_key(tx.instance), keep)
                    if step is not None:
                        outcome.stepped[instance_id] = step.status
                        rows += [dataclasses.replace(row, instance_id=row.instance_id or instance_id) for row in outbox]
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

    def _take_results(self, batch: BatchTx, results: Sequence[tuple[str, dict[str, Any]]],
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
                dropped.append(message.get("message_id"))
                continue
            new = _inbox_message(message, now)
            if instance_id in batch.locked:
                batch.arrive(instance_id, new, now)
                continue
            try:
                batch.enqueue(instance_id, [new], now)
            except store_errors.InstanceNotFound:
                dropped.append(message.get("message_id"))
        return dropped

    def _store_results(self, results: Sequence[tuple[str, dict[str, Any]]]) -> None:
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

    def run_step(self, instance_id: str) -> StepOutcome | None:
        """One step of `instance_id` alone (tests, tools); None when there was nothing to do."""
        outcome = self.run_batch([instance_id], skip_locked=False)
        status = outcome.stepped.get(instance_id)
        return None if status is None else StepOutcome(instance_id, status)

    def _step(self, tx: StepTx, now: datetime,
              reports: list[spans.StepReport]) -> tuple[StepOutcome | None, list[NewOutbox], Replay | None]:
        """One instance's step; what it reports to traces and metrics goes to `reports`,
        sent after commit."""
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
        limit = self.workflow_limits.get(inst.name)
        if limit is not None and inst.status == PENDING:
            if not tx.admit(limit):
                log.info("waiting: %s already has %d running instance(s)", inst.name, limit, extra=_ids(inst))
                return None, [], None  # stays PENDING; the tick wakes it again
            now = self.clock()  # the run's clock starts when it is admitted, not when it asked
        pairs = self._decode(inst, messages)
        try:
            mode = self.guard.check_mode(tx, inst) if inst.signed or self.guard.signing() else False
            if isinstance(mode, Stall):
                return self._stall(tx, inst, mode), [], None
            replay, hit = self._replay_for(tx, inst, verify=inst.signed)
        except Tampered as tampered:
            return (*self._tampered(tx, inst, messages, tampered, now, reports), None)
        signed = inst.signed or mode is True
        if isinstance(replay, Stall):
            return self._stall(tx, inst, replay), [], None
        events = self.guard.admit(inst, replay, pairs)
        metrics.redelivered("duplicate_result", len(pairs) - len(events))
        if not events:  # only rejected messages: drop them, keep the live generator
            tx.delete_inbox([m.id for m in messages])
            self.cache.put(inst.instance_id, _cache_key(inst), replay)
            return None, [], None
        if replay.events_applied == 0:
            started = next((e for e in events if isinstance(e, ev.ExecutionStarted)), None)
            refusal = self.guard.admit_start(inst, started) if started is not None else None
            if refusal is not None:
                assert started is not None
                return (*self._refuse_start(tx, inst, messages, started, refusal, now, signed, reports), None)
        base = replay.events_applied
        activities = spans.open_activities(replay, events) if spans.traced(inst) else None
        result = replay.step([ev.OrchestratorStarted(inbox.naive_utc(now)), *events])
        if result.status == STALLED:
            assert result.stall is not None
            return self._stall(tx, inst, result.stall), [], None
        if self.max_history_events and base + len(result.new_events) >= self.max_history_events:
            return (*self._history_full(tx, inst, messages, base, len(result.new_events), now, signed,
                                            reports), None)
        if hit and inst.signed and result.completion is not None:
            try:  # a run never ends over a tampered history (once per run: still O(n) overall)
                self.guard.verify_full(tx, inst)
            except Tampered as tampered:
                return (*self._tampered(tx, inst, messages, tampered, now, reports), None)
        stored = _stored(result.new_events, base)
        tx.append_history(stored)
        sign_fields: dict[str, Any] = {}
        if signed:
            continued = result.completion is not None and result.completion.status == CONTINUED_AS_NEW
            sign_fields = {"signed": True} if continued else self.guard.sign(tx, inst, stored)
        tx.delete_inbox([m.id for m in messages])
        consumed = [activity_key(inst.generation, e.task_id) for e in events if isinstance(e, (ev.TaskCompleted, ev.TaskFailed))]
        if consumed:
            tx.delete_outbox(consumed)
        effects = Effects(tx, inst, now, self.pools, hooks=self.guard.hooks(tx, inst))
        for action in result.actions:
            effects.apply(action)
        tx.update_instance(**self._status_fields(inst, result), **sign_fields)
        keep = replay if result.completion is None else None
        reports.append(spans.StepReport(inst, events, result, activities, self.clock()))
        log.info(
            "step: %d event(s) in, %d action(s) out, status %s%s", len(events), len(result.actions), result.status,
            " (cached)" if hit else "", extra=_ids(inst),
        )
        failure = result.completion.failure if result.completion is not None else None
        if failure is not None:
            log.warning("workflow failed: %s: %s", failure.error_type, failure.message, extra=_ids(inst))
            log.debug("workflow failure stack:\n%s", failure.stack_trace, extra=_ids(inst))
        return StepOutcome(inst.instance_id, result.status), effects.outbox, keep

    def _decode(self, inst: InstanceRecord,
                messages: Sequence[InboxRecord]) -> list[tuple[InboxRecord, ev.HistoryEvent]]:
        events = []
        for m in messages:
            generation = inbox.message_generation(m.message_id)
            if generation is not None and generation != inst.generation:
                log.info("dropped message %s of generation %s", m.message_id, generation, extra=_ids(inst))
                continue
            try:
                events.append((m, codec.decode(m.type, m.payload)))
            except codec.CodecError as exc:
                log.error("dropped unreadable inbox message %s: %s", m.message_id, exc, extra=_ids(inst))
        return events

    def _replay_for(self, tx: StepTx, inst: InstanceRecord, verify: bool = False) -> tuple[Replay | Stall, bool]:
        """The live generator, from the cache or by replaying history. With `verify` (a signed
        history) a cold load verifies the whole chain first and a warm one the chain head
        (see orchestrator/guard.py); either raises Tampered."""
        cached = self.cache.take(inst.instance_id, _cache_key(inst))
        if cached is not None:
            if verify:
                self.guard.verify_warm(tx, inst)
            return cached, True
        records = tx.history()
        if verify:
            self.guard.verify_full(tx, inst, records)
        history = [codec.decode(r.type, r.payload) for r in records]
        replay = self.replays(self.registry, inst.instance_id)
        stall = replay.replay(history)
        return (stall if stall is not None else replay), False

    def _stall(self, tx: StepTx, inst: InstanceRecord, stall: Stall) -> StepOutcome:
        """Leave the inbox as it is and wait for code that can run this history."""
        failure = json.dumps({"message": stall.description, "error_type": stall.reason, "stack_trace": None})
        if inst.status != STALLED or inst.failure != failure:
            tx.update_instance(status=STALLED, failure=failure)
        log.warning("stalled (%s): %s", stall.reason, stall.description, extra=_ids(inst))
        return StepOutcome(inst.instance_id, STALLED)

    def _tampered(self, tx: StepTx, inst: InstanceRecord, messages: Sequence[InboxRecord], tampered: Tampered,
                  now: datetime, reports: list[spans.StepReport]) -> tuple[StepOutcome, list[NewOutbox]]:
        """The history failed verification: one unsigned terminal event, FAILED with
        DAPR_WORKFLOW_HISTORY_TAMPERED; nothing dispatched, timers and open activity calls
        cancelled, the stored rows left exactly as found (evidence)."""
        self.cache.discard(inst.instance_id)
        self.guard.forget(inst.instance_id)
        failure = tampered.failure
        last = tx.max_sequence()
        tx.append_history([tamper_marker(0 if last is None else last + 1, failure, now)])
        tx.delete_inbox([m.id for m in messages])
        tx.delete_timers()
        tx.delete_outbox_kind(OUTBOX_ACTIVITY)
        tx.update_instance(status="FAILED", failure=failure_json(failure), output=None)
        log.error("history tampered: %s", failure.message, extra=_ids(inst))
        return StepOutcome(inst.instance_id, "FAILED"), self._report_failure(tx, inst, failure, now, reports)

    def _history_full(self, tx: StepTx, inst: InstanceRecord, messages: Sequence[InboxRecord], base: int,
                      adding: int, now: datetime, signed: bool,
                      reports: list[spans.StepReport]) -> tuple[StepOutcome, list[NewOutbox]]:
        """The step would take the history past the limit: the step is dropped and the run
        ends FAILED (HistoryLimitExceeded) with one terminal event, so the history stays
        within the limit and no replay ever has to load more; timers and open activity
        calls are cancelled and a parent is told."""
        self.cache.discard(inst.instance_id)
        failure = ev.FailureDetails(
            f"Workflow '{inst.name}' ({inst.instance_id}) reached the history limit: this step would take its "
            f"history from {base} to {base + adding} events and the limit is {self.max_history_events} "
            "(LEDGERFLOW_MAX_HISTORY_EVENTS). Use continue_as_new to start a fresh history, or raise the limit.",
            "HistoryLimitExceeded")
        stored = _stored([ev.ExecutionCompleted(inbox.naive_utc(now), "FAILED", None, failure)], base)
        tx.append_history(stored)
        sign_fields = self.guard.sign(tx, inst, stored) if signed else {}
        tx.delete_inbox([m.id for m in messages])
        tx.delete_timers()
        tx.delete_outbox_kind(OUTBOX_ACTIVITY)
        tx.update_instance(status="FAILED", failure=failure_json(failure), output=None, **sign_fields)
        log.error("history limit: %s", failure.message, extra=_ids(inst))
        return StepOutcome(inst.instance_id, "FAILED"), self._report_failure(tx, inst, failure, now, reports)

    def _refuse_start(self, tx: StepTx, inst: InstanceRecord, messages: Sequence[InboxRecord],
                      started: ev.ExecutionStarted, failure: ev.FailureDetails, now: datetime,
                      signed: bool, reports: list[spans.StepReport]) -> tuple[StepOutcome, list[NewOutbox]]:
        """A child workflow its caller may not start (or whose propagated history does not
        verify): FAILED at once, before any of its code runs, and its parent told."""
        naive = inbox.naive_utc(now)
        stored = _stored([ev.OrchestratorStarted(naive), started, ev.ExecutionCompleted(naive, "FAILED", None, failure)], 0)
        tx.append_history(stored)
        sign_fields = self.guard.sign(tx, inst, stored) if signed else {}
        tx.delete_inbox([m.id for m in messages])
        tx.update_instance(status="FAILED", failure=failure_json(failure), **sign_fields)
        return StepOutcome(inst.instance_id, "FAILED"), self._report_failure(tx, inst, failure, now, reports)

    def _report_failure(self, tx: StepTx, inst: InstanceRecord, failure: ev.FailureDetails, now: datetime,
                        reports: list[spans.StepReport]) -> list[NewOutbox]:
        """A run the service itself ended FAILED: to traces and metrics (after commit) and to
        its parent, if any; returns the parent's wake-up."""
        reports.append(spans.failed_run(inst, failure, self.clock()))
        if inst.parent_instance_id is None or inst.parent_task_id is None:
            return []
        report = ev.SubOrchestrationInstanceFailed(inbox.naive_utc(now), inst.parent_task_id, failure)
        message_id = f"child:{inst.parent_task_id}:{inst.instance_id}:{inbox.run_token(inst)}"
        try:
            tx.enqueue(inst.parent_instance_id, [self.guard.message(inst.parent_instance_id, message_id, report)])
        except store_errors.InstanceNotFound:
            return []
        return [orchestrate_row(inst.parent_app_id or inst.app_id, inst.parent_instance_id)]

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
                    self.publisher.activity(row.app_id, payload.get("pool"), payload)
                    mark(row_id, row)
                except Exception as exc:  # the broker is the fast path; reconcile re-sends
                    log.warning("publish of outbox row %s failed: %r", row_id, exc)
            woken = self.publisher.wake([pair for _, pair in wakeups])
            sent.setdefault(1, []).extend(row_id for row_id, pair in wakeups if pair in woken)
        for factor, ids in sent.items():
            self.sent_marks.add(ids, self.activity_lease * factor, published)

    # -- messages from outside ---------------------------------------------------------

    def deliver(self, instance_id: str, message: dict[str, Any]) -> bool:
        """Put one activity result into the inbox (idempotent) and step; False if dropped."""
        return not self.drive([], [(instance_id, message)]).dropped

    def _accepts(self, instance_id: str, inst: InstanceRecord | None, message: dict[str, Any]) -> bool:
        if inst is None or inst.is_terminal:
            log.info("dropped result %s: instance gone or finished", message.get("message_id"),
                     extra={"instance_id": instance_id})
            return False
        if message.get("generation") != inst.generation or message.get("run") not in (None, inbox.run_token(inst)):
            log.info("dropped result %s from an earlier run or generation", message.get("message_id"), extra=_ids(inst))
            return False
        return True

def _stored(events: Sequence[ev.HistoryEvent], base: int) -> list[NewEvent]:
    rows = []
    for offset, event in enumerate(events):
        type_name, payload = codec.encode(event)
        rows.append(NewEvent(sequence=base + offset, type=type_name, payload=payload,
                             timestamp=inbox.aware_utc(event.timestamp)))
    return rows


def _inbox_message(message: dict[str, Any], now: datetime) -> NewInboxMessage:
    return NewInboxMessage(message_id=message["message_id"], type=message["type"], payload=message["payload"],
                           visible_at=now)


def _cache_key(inst: InstanceRecord) -> CacheKey:
    return CacheKey(inst.created_at, inst.generation, inst.step_count)


def _ids(inst: InstanceRecord) -> dict[str, Any]:
    ids = {"instance_id": inst.instance_id, "workflow": inst.name, "app_id": inst.app_id}
    if inst.trace_context is not None:  # JSON log lines name the instance's trace
        ids["trace_id"] = inst.trace_context[3:35]
    return ids
