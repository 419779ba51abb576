"""One instance's step, as three stages that each end it or hand on to the next:

- admit: the instance exists, is not finished, may run under its workflow's limit, and has
  readable messages of its current generation;
- replay: the live generator (from the cache, or history replayed and verified), fed the
  results it still waits for, decides what the step appends and asks for;
- persist: history, signature, effects (timers, outbox, children, reports) and status are
  written in the batch's transaction.

Every stage returns into one `StepResult`. A run ends in one way: the engine's endings go
through `Effects`, and the endings the service decides itself (a tampered history, the history
limit, a child start that is refused) go through `StepRunner.end_run`; both cancel the run's
timers and open calls and report to its parent with `effects.finish_run`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from orchestrator import redelivery, spans
from orchestrator.cache import CacheKey, ReplayCache
from orchestrator.effects import Effects, completion_fields, finish_run
from orchestrator.engine import actions as act
from orchestrator.engine import clock
from orchestrator.engine import codec
from orchestrator.engine import events as ev
from orchestrator.engine.executor import ExecutionResult, Replay, Stall
from orchestrator.engine.registry import Registry
from orchestrator.engine.status import CONTINUED_AS_NEW, FAILED, PENDING, STALLED
from orchestrator.guard import HistoryGuard, SigningMode, Tampered
from orchestrator.logs import log_ids
from orchestrator.rules import AppRules
from brokers import wire
from persistence.records import InboxRecord, InstanceRecord, NewEvent, NewOutbox, as_utc
from persistence.step import StepTx
from telemetry import metrics

log = logging.getLogger("ledgerflow.orchestrator")

#: Makes the live state of a run: `Replay` runs the registered Python code; a sidecar passes
#: one that has a connected SDK run it (same interface).
ReplayFactory = Callable[[Registry, str], Replay]


@dataclass
class StepResult:
    """What one instance's step did. `status` is None when nothing was stepped (no visible
    message, held back by a workflow limit, or only results already taken in)."""

    status: str | None = None
    #: published after commit
    outbox: list[NewOutbox] = field(default_factory=list)
    #: the live generator to keep in the cache for the next step
    keep: Replay | None = None
    #: sent to traces and metrics after commit
    report: spans.StepReport | None = None


@dataclass
class _Admitted:
    inst: InstanceRecord
    #: every visible message (all deleted when the step commits, readable or not)
    messages: list[InboxRecord]
    #: the readable ones of the current generation, decoded
    pairs: list[tuple[InboxRecord, ev.HistoryEvent]]
    now: datetime

    def message_ids(self) -> list[int]:
        return [m.id for m in self.messages]


@dataclass
class _Replayed:
    replay: Replay
    result: ExecutionResult
    #: the events taken in (new to history), after redelivery and attestation checks
    events: list[ev.HistoryEvent]
    #: history length before the step
    base: int
    cached: bool
    signed: bool
    activities: dict[int, str] | None


class StepRunner:
    """Runs steps for one app's service; holds what steps share (cache, guard, rules)."""

    def __init__(self, registry: Registry, cache: ReplayCache, guard: HistoryGuard, rules: AppRules,
                 clock: Callable[[], datetime], replays: ReplayFactory | None = None) -> None:
        self.registry = registry
        self.cache = cache
        self.guard = guard
        self.rules = rules
        self.clock = clock
        self.replays: ReplayFactory = replays or Replay

    def step(self, tx: StepTx, now: datetime) -> StepResult:
        admitted = self._admit(tx, now)
        if isinstance(admitted, StepResult):
            return admitted
        try:
            replayed = self._replay(tx, admitted)
        except Tampered as tampered:
            return self._tampered(tx, admitted, tampered)
        if isinstance(replayed, StepResult):
            return replayed
        return self._persist(tx, admitted, replayed)

    # -- admit -----------------------------------------------------------------------------

    def _admit(self, tx: StepTx, now: datetime) -> _Admitted | StepResult:
        inst = tx.instance
        if inst is None:
            return StepResult()
        messages = tx.visible_inbox(now)
        if not messages:
            return StepResult()
        if inst.is_terminal:
            tx.delete_inbox([m.id for m in messages])
            log.info("dropped %d message(s) for finished instance", len(messages), extra=log_ids(inst))
            return StepResult()
        limit = self.rules.workflow_limits.get(inst.name)
        if limit is not None and inst.status == PENDING:
            if not tx.admit(limit):
                log.info("waiting: %s already has %d running instance(s)", inst.name, limit, extra=log_ids(inst))
                return StepResult()  # stays PENDING; the tick wakes it again
            now = self.clock()  # the run's clock starts when it is admitted, not when it asked
        return _Admitted(inst, messages, _decode(inst, messages), now)

    # -- replay ----------------------------------------------------------------------------

    def _replay(self, tx: StepTx, a: _Admitted) -> _Replayed | StepResult:
        """Raises Tampered when the history (or a warm chain head) fails verification."""
        inst = a.inst
        mode = self.guard.check_mode(tx, inst) if inst.signed or self.guard.signing() else SigningMode.AS_IS
        if isinstance(mode, Stall):
            return self._stall(tx, inst, mode)
        replay, cached = self._live(tx, inst, verify=inst.signed)
        if isinstance(replay, Stall):
            return self._stall(tx, inst, replay)
        signed = inst.signed or mode is SigningMode.ADOPT_SIGNING
        waited = redelivery.awaited_results(inst, replay, a.pairs)
        events = self.guard.attested(inst, waited)
        metrics.redelivered("duplicate_result", len(a.pairs) - len(events))
        if not events:  # only results already taken in: drop them, keep the live generator
            tx.delete_inbox(a.message_ids())
            return StepResult(keep=replay)
        if replay.events_applied == 0:
            started = next((e for e in events if isinstance(e, ev.ExecutionStarted)), None)
            refusal = self.guard.admit_start(inst, started) if started is not None else None
            if refusal is not None:
                assert started is not None
                return self.end_run(tx, a, refusal, base=0, signed=signed,
                                    leading=[ev.OrchestratorStarted(clock.naive_utc(a.now)), started])
        base = replay.events_applied
        activities = spans.open_activities(replay, events) if spans.traced(inst) else None
        result = replay.step([ev.OrchestratorStarted(clock.naive_utc(a.now)), *events])
        if result.status == STALLED:
            assert result.stall is not None
            return self._stall(tx, inst, result.stall)
        limit = self.rules.max_history_events
        if limit and base + len(result.new_events) >= limit:
            return self.end_run(tx, a, ev.FailureDetails(
                f"Workflow '{inst.name}' ({inst.instance_id}) reached the history limit: this step would take its "
                f"history from {base} to {base + len(result.new_events)} events and the limit is {limit} "
                "(LEDGERFLOW_MAX_HISTORY_EVENTS). Use continue_as_new to start a fresh history, or raise the limit.",
                "HistoryLimitExceeded"), base=base, signed=signed)
        if cached and inst.signed and result.completion is not None:
            # a run never ends over a tampered history (once per run: still O(n) overall)
            self.guard.verify_full(tx, inst)
        return _Replayed(replay, result, events, base, cached, signed, activities)

    def _live(self, tx: StepTx, inst: InstanceRecord, verify: bool = False) -> tuple[Replay | Stall, bool]:
        """The live generator, from the cache or by replaying history, and whether it was
        cached. With `verify` (a signed history) a cold load verifies the whole chain first
        and a warm one the chain head (see orchestrator/guard.py); either raises Tampered."""
        cached = self.cache.take(inst.instance_id, cache_key(inst))
        if cached is not None:
            if verify:
                self.guard.verify_warm(tx, inst)
            return cached, True
        records = tx.history()
        if verify:
            self.guard.verify_full(tx, inst, records)
        replay = self.replays(self.registry, inst.instance_id)
        stall = replay.replay([codec.decode(r.type, r.payload) for r in records])
        return (stall if stall is not None else replay), False

    def _stall(self, tx: StepTx, inst: InstanceRecord, stall: Stall) -> StepResult:
        """Leave the inbox as it is and wait for code that can run this history."""
        failure = json.dumps({"message": stall.description, "error_type": stall.reason, "stack_trace": None})
        if inst.status != STALLED or inst.failure != failure:
            tx.update_instance(status=STALLED, failure=failure)
        log.warning("stalled (%s): %s", stall.reason, stall.description, extra=log_ids(inst))
        return StepResult(STALLED)

    # -- persist ---------------------------------------------------------------------------

    def _persist(self, tx: StepTx, a: _Admitted, r: _Replayed) -> StepResult:
        inst, result = a.inst, r.result
        stored = stored_events(result.new_events, r.base)
        tx.append_history(stored)
        sign_fields: dict[str, Any] = {}
        if r.signed:
            continued = result.completion is not None and result.completion.status == CONTINUED_AS_NEW
            sign_fields = {"signed": True} if continued else self.guard.sign(tx, inst, stored)
        tx.delete_inbox(a.message_ids())
        consumed = [wire.task_message_id(inst.generation, e.task_id) for e in r.events
                    if isinstance(e, (ev.TaskCompleted, ev.TaskFailed))]
        if consumed:
            tx.delete_outbox(consumed)
        effects = Effects(tx, inst, a.now, self.rules.pools, hooks=self.guard.hooks(tx, inst))
        for action in result.actions:
            effects.apply(action)
        tx.update_instance(**_status_fields(inst, result), **sign_fields)
        log.info("step: %d event(s) in, %d action(s) out, status %s%s", len(r.events), len(result.actions),
                 result.status, " (cached)" if r.cached else "", extra=log_ids(inst))
        failure = result.completion.failure if result.completion is not None else None
        if failure is not None:
            log.warning("workflow failed: %s: %s", failure.error_type, failure.message, extra=log_ids(inst))
            log.debug("workflow failure stack:\n%s", failure.stack_trace, extra=log_ids(inst))
        return StepResult(result.status, effects.outbox, r.replay if result.completion is None else None,
                          spans.StepReport(inst, r.events, result, r.activities, self.clock()))

    # -- the endings the service decides -----------------------------------------------------

    def _tampered(self, tx: StepTx, a: _Admitted, tampered: Tampered) -> StepResult:
        """The history failed verification: one unsigned terminal event after the stored
        rows, which are left exactly as found (evidence); nothing is dispatched."""
        self.guard.forget(a.inst.instance_id)
        last = tx.max_sequence()
        return self.end_run(tx, a, tampered.failure, base=0 if last is None else last + 1, signed=False)

    def end_run(self, tx: StepTx, a: _Admitted, failure: ev.FailureDetails, *, base: int, signed: bool,
                leading: Sequence[ev.HistoryEvent] = ()) -> StepResult:
        """End the run FAILED with `failure` instead of stepping it: `leading` events and one
        ExecutionCompleted are appended at `base` (signed when the history is), the inbox is
        taken, and `finish_run` cancels timers and open calls and tells a parent."""
        inst = a.inst
        self.cache.discard(inst.instance_id)
        completion = act.CompleteOrchestration(FAILED, failure=failure, parent=_parent(inst))
        stored = stored_events([*leading, ev.ExecutionCompleted(clock.naive_utc(a.now), FAILED, None, failure)], base)
        tx.append_history(stored)
        sign_fields = self.guard.sign(tx, inst, stored) if signed else {}
        tx.delete_inbox(a.message_ids())
        outbox = finish_run(tx, inst, completion, a.now, self.guard.hooks(tx, inst))
        tx.update_instance(**completion_fields(completion), output=None, **sign_fields)
        log.error("run ended %s: %s: %s", FAILED, failure.error_type, failure.message, extra=log_ids(inst))
        result = ExecutionResult([], [], FAILED, completion=completion)
        return StepResult(FAILED, outbox, None, spans.StepReport(inst, [], result, {} if spans.traced(inst) else None,
                                                                 self.clock()))


def _decode(inst: InstanceRecord, messages: Sequence[InboxRecord]) -> list[tuple[InboxRecord, ev.HistoryEvent]]:
    """The readable messages of the instance's current generation, decoded (the others are
    logged, and deleted with the step)."""
    events = []
    for m in messages:
        generation = wire.message_generation(m.message_id)
        if generation is not None and generation != inst.generation:
            log.info("dropped message %s of generation %s", m.message_id, generation, extra=log_ids(inst))
            continue
        try:
            events.append((m, codec.decode(m.type, m.payload)))
        except codec.CodecError as exc:
            log.error("dropped unreadable inbox message %s: %s", m.message_id, exc, extra=log_ids(inst))
    return events


def _parent(inst: InstanceRecord) -> ev.ParentInfo | None:
    if inst.parent_instance_id is None or inst.parent_task_id is None:
        return None
    return ev.ParentInfo("", inst.parent_instance_id, inst.parent_task_id, inst.parent_app_id)


def _status_fields(inst: InstanceRecord, result: ExecutionResult) -> dict[str, Any]:
    fields: dict[str, Any] = {"status": result.status, "custom_status": result.custom_status}
    if result.completion is not None:
        fields.update(completion_fields(result.completion))
        if result.completion.status == CONTINUED_AS_NEW:
            fields["failure"] = None
    elif inst.status == STALLED:
        fields["failure"] = None
    return fields


def stored_events(events: Sequence[ev.HistoryEvent], base: int) -> list[NewEvent]:
    """Events as history rows from sequence `base` on."""
    rows = []
    for offset, event in enumerate(events):
        type_name, payload = codec.encode(event)
        rows.append(NewEvent(sequence=base + offset, type=type_name, payload=payload,
                             timestamp=as_utc(event.timestamp)))
    return rows


def cache_key(inst: InstanceRecord) -> CacheKey:
    return CacheKey(inst.created_at, inst.generation, inst.step_count)


