"""Running one activity call and turning its outcome into a message for the owner's inbox."""

from __future__ import annotations

import asyncio
import inspect
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from brokers import wire
from orchestrator.engine import clock, codec
from orchestrator.engine import events as ev
from orchestrator.engine import propagation as prop
from orchestrator.engine.activity import WorkflowActivityContext
from orchestrator.engine.errors import failure_from_exception
from orchestrator.engine.registry import Registry
from orchestrator.engine.serialization import from_json, to_json
from orchestrator.engine.signatures import call_with_input
from security import attest
from security import context as sec_context
from security import propagation as sec_prop
from security.crypto import VerificationError
from security.policy import DENIED_MESSAGE, DENIED_TYPE

log = logging.getLogger("ledgerflow.worker")


#: Largest activity input or output, in bytes of JSON (LEDGERFLOW_MAX_PAYLOAD_BYTES; 0: no
#: limit). The default matches the HTTP API's body limit. A payload over it fails the call
#: with PayloadTooLargeError instead of travelling through the broker and into history.
DEFAULT_MAX_PAYLOAD_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class ActivityConfig:
    """What a worker process is told at start (from `ledgerflow.config.Settings`): the app
    whose queue it serves when its Celery app does not say (LEDGERFLOW_APP_ID), the payload
    limit, and the security configuration its context is built from."""

    app_id: str = "default"
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    security: sec_context.SecurityConfig = field(default_factory=sec_context.SecurityConfig)


DEFAULTS = ActivityConfig()


def run_activity(registry: Registry, request: wire.ActivityRequest,
                 security: sec_context.SecurityContext | None = None, *, app_id: str | None = None,
                 refuse: ev.FailureDetails | None = None, config: ActivityConfig = DEFAULTS) -> wire.ResultMessage:
    """Run the activity named in `request`; never raises. Returns the inbox message.

    Before running it: the propagated history is verified (signing on) and this app's
    access policies are checked against the caller's verified identity; a denial fails the
    call at once with error_type WorkflowAccessPolicyDenied. With `refuse` the call is not
    run and fails with that (the delivery cap, `workers.limits.DeliveryCap`). Without
    `security`, the context of `app_id` (else `config.app_id`) under `config.security`."""
    name, task_id = request.name, request.task_id
    now = wall_clock()
    refused, security, propagated = screen(request, security, app_id=app_id, refuse=refuse, config=config)
    if refused is not None:
        return refused
    ctx = WorkflowActivityContext(request.instance_id, task_id, request.execution_id, attempt=request.attempt,
                                  app_id=request.app_id, propagated_history=propagated)
    log.info("activity start", extra={"instance_id": ctx.workflow_id, "activity": name, "task_id": task_id})
    try:
        check_payload(request.input, f"Input of activity '{name}'", config.max_payload_bytes)
        fn = registry.activity(name)
        result = call_with_input(fn, ctx, from_json(request.input))
        if inspect.isawaitable(result):
            result = asyncio.run(_awaited(result))
        output = check_payload(to_json(result, what=f"Output of activity '{name}'"), f"Output of activity '{name}'",
                               config.max_payload_bytes)
        event: ev.HistoryEvent = ev.TaskCompleted(now, task_id, output)
    except Exception as exc:  # the activity's failure is the workflow's business
        log.warning("activity failed: %s: %s", type(exc).__name__, exc, exc_info=log.isEnabledFor(logging.DEBUG),
                    extra={"instance_id": ctx.workflow_id, "activity": name, "task_id": task_id})
        event = ev.TaskFailed(now, task_id, failure_from_exception(exc))
    return result_message(request, event, security, config=config)


def screen(request: wire.ActivityRequest, security: sec_context.SecurityContext | None = None, *,
           app_id: str | None = None, refuse: ev.FailureDetails | None = None, config: ActivityConfig = DEFAULTS
           ) -> tuple[wire.ResultMessage | None, sec_context.SecurityContext | None, prop.PropagatedHistory | None]:
    """The checks before an activity call runs, wherever it runs (here, or in a sidecar app's
    SDK): the propagated history verifies and this app's access policies let the caller in.
    Returns (the refusal's result message, None when the call may run; the security context;
    the propagated history)."""
    try:
        security = security or worker_security(app_id, config)
        propagated = _propagated(security, request)
        refusal = refuse or _access_refusal(security, request, propagated)
    except (sec_context.SigningConfigurationError, VerificationError, ValueError, KeyError, TypeError) as exc:
        error_type = "WorkflowSigningConfigurationError" if isinstance(exc, sec_context.SigningConfigurationError) \
            else "PropagationVerificationError"
        refusal = ev.FailureDetails(str(exc), error_type)
        propagated = None
    if refusal is None:
        return None, security, propagated
    log.warning("activity refused: %s", refusal.message, extra={
        "instance_id": request.instance_id, "activity": request.name, "task_id": request.task_id})
    failed = ev.TaskFailed(wall_clock(), request.task_id, refusal)
    return result_message(request, failed, security, config=config), security, None


class PayloadTooLargeError(ValueError):
    """An activity input or output over LEDGERFLOW_MAX_PAYLOAD_BYTES."""


def check_payload(text: str | None, what: str, limit: int = DEFAULT_MAX_PAYLOAD_BYTES) -> str | None:
    """`text` unchanged, or PayloadTooLargeError naming the size and `limit` (0: none)."""
    if text is not None and limit and len(text) > limit // 4:  # cheap test first: chars <= bytes <= 4 * chars
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > limit:
            raise PayloadTooLargeError(
                f"{what} is {size} bytes of JSON, over the limit of {limit} bytes; pass a reference "
                "(a URL or a key) instead of the data, or raise LEDGERFLOW_MAX_PAYLOAD_BYTES")
    return text


def worker_security(app_id: str | None = None, config: ActivityConfig = DEFAULTS) -> sec_context.SecurityContext:
    """This worker's security context: its app is `app_id` (the app whose queue it serves),
    else `config.app_id` (LEDGERFLOW_APP_ID); never a field of the request."""
    return sec_context.current(app_id or config.app_id, config.security)


def _propagated(security: sec_context.SecurityContext, request: wire.ActivityRequest) -> prop.PropagatedHistory | None:
    text = request.propagated
    if not text:
        return None
    if security.signing:
        assert security.trust is not None
        sec_prop.verify_text(security.trust, text)
    return prop.parse(text, verified=security.signing)


def _access_refusal(security: sec_context.SecurityContext, request: wire.ActivityRequest,
                    propagated: prop.PropagatedHistory | None) -> ev.FailureDetails | None:
    policies = security.policies
    if policies is None or not policies.governs(security.app_id):
        return None
    caller: str | None = None
    if security.signing:  # the identity comes from the caller's certificate, never from a field
        assert security.trust is not None
        try:
            caller = attest.verify(security.trust, request.caller, attest.REQUEST, request.canonical())
        except VerificationError as exc:
            log.warning("activity request without a valid caller attestation: %s", exc)
    elif request.app_id == security.app_id:
        caller = security.app_id  # no identity to be had: a same-app call counts as a self-call
    decision = policies.decide(callee_app=security.app_id, caller_app=caller, kind="activity", name=request.name,
                               operation="schedule", timeline=propagated.timeline() if propagated else None,
                               signing=security.signing)
    if decision:
        return None
    log.warning("denied activity %s to caller %s: %s", request.name, caller or "(unverified)", decision.reason)
    return ev.FailureDetails(DENIED_MESSAGE, DENIED_TYPE)


def result_message(request: wire.ActivityRequest, event: ev.HistoryEvent,
                   security: sec_context.SecurityContext | None = None, *, app_id: str | None = None,
                   config: ActivityConfig = DEFAULTS) -> wire.ResultMessage:
    """The inbox message for the owner; with signing on, attested by this app."""
    type_name, payload = codec.encode(event)
    try:
        security = security or worker_security(app_id, config)
    except sec_context.SigningConfigurationError:
        security = None
    if security is not None and security.identity is not None:
        att = attest.attest(security.identity, attest.COMPLETION, request.instance_id, type_name, payload)
        payload = attest.embed(payload, att)
    return wire.ResultMessage(request.result_message_id, type_name, payload, request.generation, request.run)


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def wall_clock() -> datetime:
    """Now, as the naive UTC an activity's result event carries (workflow time)."""
    return clock.naive_utc(datetime.now(timezone.utc))
