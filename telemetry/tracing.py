"""Distributed traces with OpenTelemetry, named as the DurableTask engines under Dapr name them.

On only when the standard variables ask for an exporter (`OTEL_EXPORTER_OTLP_ENDPOINT`,
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_TRACES_EXPORTER`); otherwise `tracer()` is
None and every function here returns at once. The SDK and its exporters come with the
`ledgerflow[otel]` extra; everything else (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
`OTEL_EXPORTER_OTLP_PROTOCOL`, `OTEL_BSP_*`, `OTEL_TRACES_SAMPLER`...) is read by the SDK.

One trace per workflow, across processes and restarts: the instance row keeps the W3C
`traceparent` of the span that created it. Every other span ID of the run is *derived*
from it (a hash of the trace, instance, run and task), so an orchestrator that restarts, a
timer that fires days later, or a worker that got the call from a re-send all compute the
same parents without asking anybody. A span is exported only when the event that ends it
is new to history (a replay of old events exports nothing), so no span is sent twice.

- `create_orchestration:{name}` (producer) where a client or the HTTP API starts a run;
- `orchestration:{name}` (server), the run, exported when it ends, from its start;
- `activity:{name}` as a client span on the orchestrator (scheduled -> result taken) and
  as a server span on the worker that runs it (a child of the client span);
- `timer` (due time -> fired) and `event:{name}` spans inside the run.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from telemetry import environment

log = logging.getLogger("ledgerflow.telemetry")

#: Any of these set (and OTEL_SDK_DISABLED not true) turns tracing on.
ENABLING_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER")
TRACEPARENT = "traceparent"
INSTRUMENTATION = "ledgerflow"


def wanted(env: Mapping[str, str] | None = None) -> bool:
    """Whether the OTEL_* variables (`env`, else the process's) ask for traces."""
    env = environment.library_variables() if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return any(env.get(name) for name in ENABLING_VARIABLES)


# -- the tracer, one per process (a prefork child builds its own on first use) ---------------

_lock = threading.Lock()
_state: dict[str, Any] = {"pid": None, "tracer": None, "provider": None}


def tracer() -> trace.Tracer | None:
    """This process's tracer, or None when tracing is off (the cost of a check when off:
    one `getpid` and a dictionary look-up)."""
    if _state["pid"] == os.getpid():
        return _state["tracer"]
    with _lock:
        if _state["pid"] != os.getpid():
            _state["provider"] = _build_provider() if wanted() else None
            _state["tracer"] = _state["provider"].get_tracer(INSTRUMENTATION) if _state["provider"] else None
            _state["pid"] = os.getpid()
    return _state["tracer"]


def flush(timeout_ms: int = 5000) -> None:
    """Export what is buffered (before a process exits without running atexit hooks)."""
    provider = _state["provider"] if _state["pid"] == os.getpid() else None
    if provider is not None:
        provider.force_flush(timeout_ms)


def reset() -> None:
    """Forget the tracer: the next `tracer()` reads the environment again (tests)."""
    with _lock:
        provider = _state["provider"] if _state["pid"] == os.getpid() else None
        _state.update(pid=None, tracer=None, provider=None)
    if provider is not None:
        provider.shutdown()


def _chosen_ids() -> Any:
    """The SDK's random IDs, except the span ID chosen for the span being started (a derived
    ID, set in `chosen.span_id`); a thread-local, so concurrent steps do not see each other's."""
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

    class ChosenIds(RandomIdGenerator):
        def __init__(self) -> None:
            self.chosen = threading.local()

        def generate_span_id(self) -> int:
            return getattr(self.chosen, "span_id", None) or super().generate_span_id()

    return ChosenIds()


_IDS: Any = None


def resource() -> Any:
    """This process's OpenTelemetry resource (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES),
    named `ledgerflow` when they name no service. Needs the SDK."""
    from opentelemetry.sdk.resources import Resource

    found = Resource.create()
    if str(found.attributes.get("service.name", "")).startswith("unknown_service"):
        found = found.merge(Resource({"service.name": "ledgerflow"}))
    return found


def _build_provider() -> Any:
    global _IDS
    try:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning("OTEL_* variables ask for traces but the OpenTelemetry SDK is not installed: "
                    "pip install 'ledgerflow[otel]'; tracing stays off")
        return None
    _IDS = _chosen_ids()
    provider = TracerProvider(resource=resource(), id_generator=_IDS)  # sampler: OTEL_TRACES_SAMPLER
    provider.add_span_processor(BatchSpanProcessor(_exporter()))  # OTEL_BSP_*
    return provider


def _exporter() -> Any:
    env = environment.library_variables()
    kind = (env.get("OTEL_TRACES_EXPORTER") or "otlp").split(",")[0].strip().lower()
    if kind == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    protocol = (env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
                or "http/protobuf").strip().lower()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    return OTLPSpanExporter()  # endpoint, headers, timeout: OTEL_EXPORTER_OTLP_*


# -- W3C trace context as text, and the derived span IDs -------------------------------------

@dataclass(frozen=True, slots=True)
class Parent:
    """A span context as carried in a `traceparent`."""

    trace_id: int
    span_id: int
    sampled: bool = True

    @classmethod
    def parse(cls, text: str | None) -> Parent | None:
        """A W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`), or None if it is not one."""
        parts = (text or "").strip().split("-")
        if len(parts) < 4 or len(parts[1]) != 32 or len(parts[2]) != 16:
            return None
        try:
            trace_id, span_id, flags = int(parts[1], 16), int(parts[2], 16), int(parts[3][:2], 16)
        except ValueError:
            return None
        return cls(trace_id, span_id, bool(flags & 1)) if trace_id and span_id else None

    @property
    def text(self) -> str:
        return f"00-{self.trace_id:032x}-{self.span_id:016x}-{1 if self.sampled else 0:02x}"

    def child(self, *parts: object) -> Parent:
        """The context of a span whose ID is derived from this one and `parts`."""
        digest = hashlib.blake2b("\x1f".join(map(str, (self.trace_id, self.span_id, *parts))).encode(),
                                 digest_size=8).digest()
        return Parent(self.trace_id, int.from_bytes(digest, "big") or 1, self.sampled)

    def context(self) -> Any:
        span = NonRecordingSpan(SpanContext(self.trace_id, self.span_id, is_remote=True,
                                            trace_flags=TraceFlags(1 if self.sampled else 0)))
        return trace.set_span_in_context(span)


def run_parent(trace_context: str | None, instance_id: str, run: str, generation: int) -> Parent | None:
    """The `orchestration:{name}` span of one run (generation) of an instance."""
    parent = Parent.parse(trace_context)
    return None if parent is None else parent.child("orchestration", instance_id, run, generation)


def activity_parent(run: Parent, task_id: int) -> Parent:
    """The orchestrator's `activity:{name}` client span of task `task_id` in `run`."""
    return run.child("activity", task_id)


def current_traceparent() -> str | None:
    """The caller's current span (a user's own instrumentation), as a `traceparent`."""
    ctx = trace.get_current_span().get_span_context()
    return Parent(ctx.trace_id, ctx.span_id, ctx.trace_flags.sampled).text if ctx.is_valid else None


# -- spans -----------------------------------------------------------------------------------

def attributes(kind: str, name: str, instance_id: str, app_id: str | None = None, task_id: int | None = None,
               status: str | None = None) -> dict[str, Any]:
    attrs: dict[str, Any] = {"durabletask.type": kind, "durabletask.task.name": name,
                             "durabletask.task.instance_id": instance_id}
    if task_id is not None:
        attrs["durabletask.task.task_id"] = task_id
    if status is not None:
        attrs["durabletask.task.status"] = status
    if app_id is not None:
        attrs["dapr.app_id"] = app_id
    return attrs


@contextlib.contextmanager
def creating(name: str, instance_id: str, app_id: str, traceparent: str | None = None) -> Iterator[str | None]:
    """The `create_orchestration:{name}` span around writing a new instance, a child of
    `traceparent` (an HTTP request's) or of the caller's current span; yields the
    `traceparent` to store with the instance (None when tracing is off)."""
    t = tracer()
    if t is None:
        yield None
        return
    parent = Parent.parse(traceparent)
    ctx = parent.context() if parent is not None else None
    with t.start_as_current_span(f"create_orchestration:{name}", context=ctx, kind=SpanKind.PRODUCER,
                                 attributes=attributes("orchestration", name, instance_id, app_id)) as span:
        yield current_traceparent()
        span.set_attribute("durabletask.task.status", "PENDING")


def emit(name: str, at: Parent | None, parent: Parent | None, start: datetime, end: datetime, attrs: dict[str, Any], *,
         kind: SpanKind = SpanKind.INTERNAL, error: tuple[str, str] | None = None,
         events: Sequence[tuple[str, datetime, dict[str, Any]]] = ()) -> None:
    """Export one finished span whose own ID is `at.span_id` (a derived ID; None: a random
    one), under `parent`. `error` is (type, message)."""
    t = tracer()
    if t is None or _IDS is None:
        return
    ctx = parent.context() if parent is not None else None
    _IDS.chosen.span_id = at.span_id if at is not None else None
    try:
        span = t.start_span(name, context=ctx, kind=kind, attributes=attrs, start_time=_ns(start))
    finally:
        _IDS.chosen.span_id = None
    for event_name, when, event_attrs in events:
        span.add_event(event_name, event_attrs, timestamp=_ns(when))
    if error is not None:
        span.set_status(Status(StatusCode.ERROR, f"{error[0]}: {error[1]}"))
        span.add_event("exception", {"exception.type": error[0], "exception.message": error[1]},
                       timestamp=_ns(end))
    span.end(end_time=max(_ns(start), _ns(end)))


@contextlib.contextmanager
def running(name: str, traceparent: str | None, attrs: dict[str, Any]) -> Iterator[Any]:
    """A live server span (an activity on a worker), current while the body runs so that
    log lines carry its IDs; yields the span (or None when tracing is off or no context)."""
    t = tracer()
    parent = Parent.parse(traceparent) if t is not None else None
    if t is None or parent is None:
        yield None
        return
    with t.start_as_current_span(name, context=parent.context(), kind=SpanKind.SERVER, attributes=attrs,
                                 record_exception=False, set_status_on_exception=False) as span:
        yield span


def fail(span: Any, error_type: str, message: str) -> None:
    """Mark a live span failed, with an exception event."""
    if span is not None:
        span.set_status(Status(StatusCode.ERROR, f"{error_type}: {message}"))
        span.add_event("exception", {"exception.type": error_type, "exception.message": message})


def _ns(when: datetime) -> int:
    aware = when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)
    return int(aware.timestamp() * 1_000_000_000)
