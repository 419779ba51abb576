"""Security for management calls (the client, the HTTP API, the CLI): access policies and
verification of signed histories on read. `WorkflowManager` calls the two hooks:

- `ManagementAccess.check(operation, app_id=..., name=...)` before schedule, get, raise,
  terminate, pause, resume, purge (and rerun): raises `WorkflowAccessDeniedError` when the
  resources directory holds a WorkflowAccessPolicy for the workflow's app and no rule lets the
  caller perform that operation on that workflow. The caller is this process's app: its
  identity is its certificate's SPIFFE app ID when signing is on; with signing off there is no
  identity, and only calls on the process's own app (self-calls) pass. The HTTP API maps the
  error to the operation's error code (`operation` names it); the message is
  "access denied by workflow access policy".
- `ManagementAccess.verify_read(store, record)`: a signed instance's history is verified in
  full on every read; a tampered one raises `HistoryTamperedError` naming the failed check.
  An instance already FAILED with DAPR_WORKFLOW_HISTORY_TAMPERED reads as that failure.
"""

from __future__ import annotations

import json
from typing import Any

from orchestrator import inbox
from orchestrator.engine.status import COMPLETED, FAILED, TERMINAL_STATUSES, TERMINATED
from persistence.records import InstanceRecord
from security import chain
from security import context as sec_context
from security.crypto import VerificationError
from security.policy import DENIED_MESSAGE, DENIED_TYPE


class WorkflowAccessDeniedError(PermissionError):
    """A management call the workflow's access policy does not allow."""

    code = "ERR_WORKFLOW_ACCESS_DENIED"
    error_type = DENIED_TYPE

    def __init__(self, operation: str, instance_or_name: str) -> None:
        super().__init__(DENIED_MESSAGE)
        self.operation = operation
        self.target = instance_or_name


class HistoryTamperedError(RuntimeError):
    """A signed history that no longer verifies; `check` names the check that failed."""

    code = "ERR_HISTORY_TAMPERED"
    error_type = chain.TAMPERED

    def __init__(self, instance_id: str, error: VerificationError) -> None:
        super().__init__(f"the history of workflow '{instance_id}' failed verification ({error.check}): "
                         f"{error.detail}")
        self.instance_id = instance_id
        self.check = error.check


class ManagementAccess:
    """`security`: a fixed context; else the context of `config` (`Settings.security`), rebuilt
    when its certificate files change."""

    def __init__(self, app_id: str, security: sec_context.SecurityContext | None = None, *,
                 config: sec_context.SecurityConfig | None = None) -> None:
        self.app_id = app_id
        self._fixed = security
        self._config = config or sec_context.SecurityConfig()

    @property
    def ctx(self) -> sec_context.SecurityContext:
        return self._fixed if self._fixed is not None else sec_context.current(self.app_id, self._config)

    def active(self) -> bool:
        """Whether any access policy is loaded (else every check passes without a read)."""
        try:
            policies = self.ctx.policies
        except sec_context.SigningConfigurationError:
            return True
        return bool(policies is not None and policies.policies)

    def caller(self) -> str | None:
        try:
            ctx = self.ctx
        except sec_context.SigningConfigurationError:
            return None
        return ctx.identity.app_id if ctx.identity is not None else None

    def check(self, operation: str, *, app_id: str | None = None, name: str | None = None,
              record: InstanceRecord | None = None, caller: str | None = None) -> None:
        try:
            ctx = self.ctx
        except sec_context.SigningConfigurationError:
            ctx = sec_context.SecurityContext(self.app_id, policies=sec_context.PolicyStore(
                self._config.resources()))
        policies = ctx.policies
        app = record.app_id if record is not None else (app_id or self.app_id)
        if policies is None or not policies.governs(app):
            return
        workflow = record.name if record is not None else (name or "")
        who = caller if caller is not None else (ctx.identity.app_id if ctx.identity is not None else
                                                 (self.app_id if self.app_id == app else None))
        if not policies.decide(callee_app=app, caller_app=who, kind="workflow", name=workflow, operation=operation,
                               signing=ctx.signing):
            raise WorkflowAccessDeniedError(operation, record.instance_id if record is not None else workflow)

    def can_verify(self) -> bool:
        """Whether this process holds the CA bundle that `verify_read` checks signed histories with."""
        try:
            return self.ctx.trust is not None
        except sec_context.SigningConfigurationError:
            return False

    def verify_read(self, store: Any, record: InstanceRecord) -> None:
        if not record.signed:
            if record.signature_head is not None or record.signed_events:
                raise HistoryTamperedError(record.instance_id, VerificationError(
                    "instance row", "the instance has signatures but says it is not signed"))
            return
        try:
            ctx = self.ctx
        except sec_context.SigningConfigurationError:
            return
        if ctx.trust is None:
            return  # this process does not sign, so it holds no CA bundle to verify with
        if record.status == FAILED and _error_type(record.failure) == chain.TAMPERED:
            return
        verify_signed_history(store, record.instance_id, ctx.trust)


def verify_signed_history(store: Any, instance_id: str, trust: Any) -> None:
    """Verify the whole stored history of a signed instance against ``trust`` (a
    ``security.crypto.TrustBundle``); raise ``HistoryTamperedError`` naming the failed check."""
    inst, events, sigs, certs = store.signed_history(instance_id)
    if not inst.signed:
        raise HistoryTamperedError(inst.instance_id, VerificationError(
            "instance row", "the instance row no longer says its history is signed"))
    try:
        chain.verify(instance_id=inst.instance_id, run=inbox.run_token(inst), generation=inst.generation,
                     owner_app_id=inst.app_id, events=events, signatures=sigs, certificates=certs,
                     trust=trust, expected_head=inst.signature_head, expected_count=inst.signed_events)
        _check_row(inst, events)
    except VerificationError as exc:
        raise HistoryTamperedError(inst.instance_id, exc) from exc


def _error_type(failure: str | None) -> str | None:
    try:
        return json.loads(failure).get("error_type") if failure else None
    except (ValueError, AttributeError):
        return None


def _check_row(inst: InstanceRecord, events: list[Any]) -> None:
    """A finished instance's status, output and failure must be what its (verified) last
    event says: the instance row is not signed itself."""
    if inst.status not in TERMINAL_STATUSES:
        return
    last = events[-1] if events else None
    if last is None or last.type != "ExecutionCompleted":
        raise VerificationError("instance row", f"the instance is {inst.status} but its history has not ended")
    data = json.loads(last.payload)
    if data.get("status") != inst.status:
        raise VerificationError("instance row", f"the instance says {inst.status}, its history {data.get('status')}")
    if inst.status in (COMPLETED, TERMINATED) and data.get("result") != inst.output:
        raise VerificationError("instance row", "the instance's output is not the result its history records")
    if inst.status == FAILED:
        failure = data.get("failure") or {}
        if _error_type(inst.failure) != failure.get("error_type") or \
                (json.loads(inst.failure or "{}").get("message") != failure.get("message")):
            raise VerificationError("instance row", "the instance's failure is not the one its history records")
