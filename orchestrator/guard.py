"""Security in the step: history signing and verification, result attestations, history
propagation and access checks for child workflows. `OrchestratorService` calls it; with
signing off and no policies it does (almost) nothing.

Verification and the live-generator cache
-----------------------------------------
A warm step (cache hit) does not load history: that is what keeps a workflow of n steps O(n).
Verification follows the same line:

- Cold load (cache miss, another orchestrator took a step, a restart): the whole chain is
  verified from the raw stored rows before the engine sees any of it.
- Warm step: the engine's state was built from history this process verified or signed
  itself and is fed from memory, not from the stored rows, so tampered rows cannot steer it.
  The step checks, cheaply, that the chain head on the instance row is the one this process
  wrote, and re-verifies the last batch (its events, signature and certificate) with two small
  indexed queries: a tail cut, an appended or removed event, a dropped or altered last
  signature are caught at once.
- A warm step that completes the workflow verifies the whole chain first (once per run, so
  still O(n) in total): no workflow is reported COMPLETED over a tampered history.
- Reads (the client's get/wait) verify the whole chain.
- `LEDGERFLOW_SIGNING_VERIFY=full` verifies the whole chain on warm steps too, for those
  who prefer immediate detection of old-row tampering over O(n) steps.

So tampering with an older batch of a workflow that stays warm in one orchestrator is detected
at its next cold load, at completion or at the next read, never acted upon before.
"""

from __future__ import annotations

import enum
import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from brokers import wire
from orchestrator import inbox
from orchestrator.engine import actions as act
from orchestrator.engine import codec
from orchestrator.engine import events as ev
from orchestrator.engine import propagation as prop
from orchestrator.engine.executor import Stall
from orchestrator.logs import log_ids
from orchestrator.redelivery import Incoming
from persistence.records import EventRecord, InstanceRecord, NewEvent, NewInboxMessage, NewSignature, utcnow
from persistence.step import StepTx
from security import attest, chain
from security import context as sec_context
from security import propagation as sec_prop
from security.crypto import VerificationError
from security.policy import DENIED_MESSAGE, DENIED_TYPE

log = logging.getLogger("ledgerflow.security")

TAMPERED = chain.TAMPERED
CONFIG_ERROR = "WorkflowSigningConfigurationError"
PROPAGATION_ERROR = "PropagationVerificationError"


class SigningMode(enum.Enum):
    """How a step runs an instance that this host may run (`HistoryGuard.check_mode`)."""

    AS_IS = "as is"  # signed stays signed, unsigned stays unsigned
    ADOPT_SIGNING = "adopt signing"  # a new instance starts signed: the step sets `signed`


class Tampered(Exception):
    def __init__(self, error: VerificationError) -> None:
        super().__init__(str(error))
        self.error = error

    @property
    def failure(self) -> ev.FailureDetails:
        return ev.FailureDetails(f"workflow history failed verification ({self.error.check}): {self.error.detail}",
                                 TAMPERED)


def child_start_fields(instance_id: str, started: ev.ExecutionStarted) -> tuple[str, ...]:
    parent = started.parent
    return (instance_id, started.name, started.input or "", parent.instance_id if parent else "",
            str(parent.task_id) if parent else "", (parent.app_id or "") if parent else "",
            hashlib.sha256((started.propagated or "").encode()).hexdigest())


class HistoryGuard:
    """One per OrchestratorService."""

    def __init__(self, app_id: str,
                 security: sec_context.SecurityContext | sec_context.SecurityConfig | None = None) -> None:
        """`security`: a fixed context, or the configuration the context is built from (and
        rebuilt when its certificate files change); None: the defaults."""
        self.app_id = app_id
        self._fixed = security if isinstance(security, sec_context.SecurityContext) else None
        self._config = security if isinstance(security, sec_context.SecurityConfig) else sec_context.SecurityConfig()
        self._cert_ids: dict[bytes, int] = {}
        #: instance -> (chain head, signed events) this process last wrote
        self._heads: dict[str, tuple[bytes | None, int]] = {}

    @property
    def ctx(self) -> sec_context.SecurityContext:
        return self._fixed if self._fixed is not None else sec_context.current(self.app_id, self._config)

    def signing(self) -> bool:
        try:
            return self.ctx.signing
        except sec_context.SigningConfigurationError:
            return True

    # -- one-way rule --------------------------------------------------------------------

    def check_mode(self, tx: StepTx, inst: InstanceRecord) -> Stall | SigningMode:
        """A Stall when this host must not run the instance, else how to run it (a new
        instance on a signing host adopts signing). Raises Tampered when the
        instance row contradicts itself (signatures, yet `signed` cleared)."""
        try:
            ctx = self.ctx
        except sec_context.SigningConfigurationError as exc:
            return Stall(CONFIG_ERROR, str(exc))
        if inst.signed and not ctx.signing:
            return Stall(CONFIG_ERROR, (
                f"workflow '{inst.instance_id}' has a signed history, but history signing is off on this host; "
                "signing is one-way: run it with LEDGERFLOW_SIGNING=on and this app's certificate "
                f"(ledgerflow certs init --app-id {inst.app_id})"))
        if not inst.signed and (inst.signature_head is not None or inst.signed_events):
            raise Tampered(VerificationError("instance row", "the instance has signatures but says it is not signed"))
        if not inst.signed and ctx.signing:
            if inst.generation == 0 and inst.signed_events == 0 and tx.max_sequence() is None:
                return SigningMode.ADOPT_SIGNING
            return Stall(CONFIG_ERROR, (
                f"workflow '{inst.instance_id}' was started without history signing, but this host signs "
                "(LEDGERFLOW_SIGNING=on); it cannot be signed after the fact: run it on a host with "
                "LEDGERFLOW_SIGNING=off, or purge it and start it again"))
        if ctx.signing:
            assert ctx.identity is not None
            if not ctx.identity.valid_at(utcnow()):
                return Stall(CONFIG_ERROR, (
                    f"this app's certificate is not valid now (valid until {ctx.identity.not_after.isoformat()}); "
                    f"issue a new one under the same CA (ledgerflow certs init --app-id {self.app_id}) and restart"))
        return SigningMode.AS_IS

    # -- verification --------------------------------------------------------------------

    def verify_full(self, tx: StepTx, inst: InstanceRecord, records: Sequence[EventRecord] | None = None) -> None:
        ctx = self.ctx
        assert ctx.trust is not None
        rows = list(records) if records is not None else tx.history()
        sigs = tx.signatures()
        try:
            verified = chain.verify(
                instance_id=inst.instance_id, run=inbox.run_token(inst), generation=inst.generation,
                owner_app_id=inst.app_id, events=rows, signatures=sigs,
                certificates=tx.certificates([s.cert_id for s in sigs]), trust=ctx.trust,
                expected_head=inst.signature_head, expected_count=inst.signed_events,
            )
        except VerificationError as exc:
            raise Tampered(exc) from exc
        self._heads[inst.instance_id] = (verified.head, verified.signed_events)

    def verify_warm(self, tx: StepTx, inst: InstanceRecord) -> None:
        ctx = self.ctx
        assert ctx.trust is not None
        if ctx.verify_mode == "full":
            self.verify_full(tx, inst)
            return
        head = (inst.signature_head, inst.signed_events)
        if self._heads.get(inst.instance_id) != head:
            raise Tampered(VerificationError(chain.TAIL, "the instance's chain head is not the one this "
                                                         "orchestrator wrote"))
        last = tx.last_signature()
        if last is None:
            if inst.signed_events or tx.max_sequence() is not None:
                raise Tampered(VerificationError(chain.COVERAGE, "the history has no signature"))
            return
        try:
            chain.verify_head_batch(
                instance_id=inst.instance_id, run=inbox.run_token(inst), generation=inst.generation,
                owner_app_id=inst.app_id, events_from_start=tx.history_from(last.start_sequence), last=last,
                certificates=tx.certificates([last.cert_id]), trust=ctx.trust,
                expected_head=inst.signature_head, expected_count=inst.signed_events,
            )
        except VerificationError as exc:
            raise Tampered(exc) from exc

    def forget(self, instance_id: str) -> None:
        self._heads.pop(instance_id, None)

    # -- signing -------------------------------------------------------------------------

    def sign(self, tx: StepTx, inst: InstanceRecord, rows: Sequence[NewEvent]) -> dict[str, Any]:
        """Sign the batch this step appends; the instance columns to update."""
        identity = self.ctx.identity
        assert identity is not None
        if not rows:
            return {}
        cert_id = self._cert_ids.get(identity.fp)
        if cert_id is None:
            cert_id = self._cert_ids[identity.fp] = tx.certificate_id(identity.fp, identity.der)
        batch = chain.sign_batch(identity, inst.instance_id, inbox.run_token(inst), inst.generation, rows,
                                 inst.signature_head, utcnow())
        tx.add_signature(NewSignature(batch.start_sequence, batch.event_count, batch.previous_digest,
                                      batch.events_digest, cert_id, batch.signed_at, batch.signature))
        head = (batch.digest, inst.signed_events + len(rows))
        self._heads[inst.instance_id] = head
        return {"signature_head": head[0], "signed_events": head[1], "signed": True}

    # -- results -------------------------------------------------------------------------

    def message(self, target_instance_id: str, message_id: str, event: ev.HistoryEvent) -> NewInboxMessage:
        """An inbox message for another instance, attested by this app when signing."""
        msg = inbox.message(message_id, event)
        identity = self.ctx.identity if self.signing() else None
        if identity is None:
            return msg
        att = attest.attest(identity, attest.COMPLETION, target_instance_id, msg.type, msg.payload)
        return NewInboxMessage(msg.message_id, msg.type, attest.embed(msg.payload, att), msg.visible_at)

    def attested(self, inst: InstanceRecord, incoming: Sequence[Incoming]) -> list[ev.HistoryEvent]:
        """The events of this step's awaited messages that may reach the engine: with signing
        on, an activity or child result must carry an attestation by the app that was called
        (or by this app)."""
        if not self.ctx.signing:
            return [i.event for i in incoming]
        out: list[ev.HistoryEvent] = []
        for item in incoming:
            if item.callee_app is not None:
                reason = self._attestation_problem(inst, item.message, item.event, item.callee_app)
                if reason is not None:
                    log.warning("rejected %s for task %s: %s", type(item.event).__name__,
                                ev.result_task_id(item.event), reason, extra=log_ids(inst))
                    continue
            out.append(item.event)
        return out

    def _attestation_problem(self, inst: InstanceRecord, message: Any, event: ev.HistoryEvent,
                             expected_app: str) -> str | None:
        ctx = self.ctx
        assert ctx.trust is not None
        type_name, canonical = codec.encode(event)
        try:
            signer = attest.verify(ctx.trust, attest.embedded(message.payload), attest.COMPLETION,
                                   inst.instance_id, type_name, canonical)
        except VerificationError as exc:
            return f"its attestation failed ({exc})"
        if signer not in (expected_app, inst.app_id):
            return f"it was attested by app '{signer}', not by the called app '{expected_app}'"
        return None

    # -- starts of child workflows -------------------------------------------------------

    def admit_start(self, inst: InstanceRecord, started: ev.ExecutionStarted) -> ev.FailureDetails | None:
        """Checks on the first step of a child workflow, on the callee: the propagated history
        verifies, and the access policy lets the (verified) caller schedule it."""
        if inst.generation != 0 or started.parent is None:
            return None
        ctx = self.ctx
        timeline = None
        if started.propagated:
            try:
                if ctx.signing:
                    assert ctx.trust is not None
                    sec_prop.verify_text(ctx.trust, started.propagated)
                parsed = prop.parse(started.propagated, verified=ctx.signing)
            except (VerificationError, ValueError, KeyError, TypeError) as exc:
                return ev.FailureDetails(f"the propagated history failed verification: {exc}", PROPAGATION_ERROR)
            timeline = parsed.timeline() if parsed is not None else None
        policies = ctx.policies
        if policies is None or not policies.governs(inst.app_id):
            return None
        caller = self._caller_of(inst, started)
        decision = policies.decide(callee_app=inst.app_id, caller_app=caller, kind="workflow", name=inst.name,
                                   operation="schedule", timeline=timeline, signing=ctx.signing)
        if decision:
            return None
        log.warning("denied child workflow %s to caller %s: %s", inst.name, caller or "(unverified)",
                    decision.reason, extra=log_ids(inst))
        return ev.FailureDetails(DENIED_MESSAGE, DENIED_TYPE)

    def _caller_of(self, inst: InstanceRecord, started: ev.ExecutionStarted) -> str | None:
        ctx = self.ctx
        if not ctx.signing:  # no identity to be had: only a same-app parent counts (as a self-call)
            claimed = (started.parent.app_id if started.parent else None) or inst.app_id
            return claimed if claimed == inst.app_id else None
        assert ctx.trust is not None
        try:
            attestation = json.loads(started.caller) if started.caller else None
            return attest.verify(ctx.trust, attestation, attest.CHILD_START,
                                 *child_start_fields(inst.instance_id, started))
        except (VerificationError, ValueError) as exc:
            log.warning("child start without a valid caller attestation: %s", exc, extra=log_ids(inst))
            return None

    # -- per-step hooks for Effects ------------------------------------------------------

    def hooks(self, tx: StepTx, inst: InstanceRecord) -> StepHooks:
        return StepHooks(self, tx, inst)


class StepHooks:
    """What Effects asks of security while it turns one step's actions into rows."""

    def __init__(self, guard: HistoryGuard, tx: StepTx, inst: InstanceRecord) -> None:
        self.guard, self.tx, self.inst = guard, tx, inst
        self._built: dict[str, str] = {}

    def message(self, target_instance_id: str, message_id: str, event: ev.HistoryEvent) -> NewInboxMessage:
        return self.guard.message(target_instance_id, message_id, event)

    def activity_request(self, action: act.ScheduleTask, request: wire.ActivityRequest) -> wire.ActivityRequest:
        if action.propagation:
            request = replace(request, propagated=self.propagated(action.propagation))
        identity = self.guard.ctx.identity if self.guard.signing() else None
        if identity is not None:
            request = replace(request, caller=attest.attest(identity, attest.REQUEST, request.canonical()))
        return request

    def child_started(self, instance_id: str, action: act.CreateSubOrchestration,
                      started: ev.ExecutionStarted) -> ev.ExecutionStarted:
        if action.propagation:
            started = replace(started, propagated=self.propagated(action.propagation))
        identity = self.guard.ctx.identity if self.guard.signing() else None
        if identity is not None:
            att = attest.attest(identity, attest.CHILD_START, *child_start_fields(instance_id, started))
            started = replace(started, caller=json.dumps(att, separators=(",", ":")))
        return started

    def propagated(self, scope: str) -> str:
        """The wire text for `scope`, built once per step from the stored history (which
        already holds this step's own events)."""
        if scope not in self._built:
            rows = self.tx.history()
            chunks = []
            received = _received(rows)
            if scope == "LINEAGE" and received:
                chunks.extend(json.loads(received).get("chunks", []))
            own = {"app_id": self.inst.app_id, "instance_id": self.inst.instance_id, "name": self.inst.name,
                   "generation": self.inst.generation, "events": [_wire_event(r) for r in rows]}
            identity = self.guard.ctx.identity if self.guard.signing() else None
            chunks.append(sec_prop.sign_chunk(identity, own) if identity is not None else own)
            self._built[scope] = json.dumps({"scope": scope, "chunks": chunks}, separators=(",", ":"))
        return self._built[scope]


def _received(rows: Sequence[EventRecord]) -> str | None:
    for r in rows:
        if r.type == "ExecutionStarted":
            started = codec.decode(r.type, r.payload)
            assert isinstance(started, ev.ExecutionStarted)
            return started.propagated
    return None


def _wire_event(r: EventRecord) -> list[Any]:
    payload = r.payload
    if r.type == "ExecutionStarted":  # what it received travels in its own chunks, not twice
        started = codec.decode(r.type, r.payload)
        assert isinstance(started, ev.ExecutionStarted)
        payload = codec.encode(replace(started, propagated=None, caller=None))[1]
    return [r.sequence, r.type, payload, chain.timestamp_text(r.timestamp)]
