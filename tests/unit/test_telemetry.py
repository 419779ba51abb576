"""telemetry.tracing's switch and trace-context arithmetic, and the JSON log format."""

from __future__ import annotations

import json
import logging

import pytest
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from ledgerflow import logs
from telemetry import tracing

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize(("env", "on"), [
    ({}, False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
    ({"OTEL_TRACES_EXPORTER": "console"}, True),
    ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"}, False),
    ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"}, False),
    ({"OTEL_SERVICE_NAME": "orders"}, False),
])
def test_tracing_is_on_only_when_an_exporter_is_asked_for(env: dict[str, str], on: bool) -> None:
    assert tracing.wanted(env) is on


def test_off_there_is_no_tracer_and_nothing_to_store(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*tracing.ENABLING_VARIABLES, "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    tracing.reset()
    try:
        assert tracing.tracer() is None
        with tracing.creating("wf", "i-1", "app", TRACEPARENT) as stored:
            assert stored is None
        with tracing.running("activity:a", TRACEPARENT, {}) as span:
            assert span is None
    finally:
        tracing.reset()


def test_traceparent_round_trip_and_rejects() -> None:
    parent = tracing.Parent.parse(TRACEPARENT)
    assert parent is not None and parent.text == TRACEPARENT
    assert tracing.Parent.parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").sampled is False
    for bad in (None, "", "garbage", "00-xyz-00f067aa0ba902b7-01", f"00-{'0' * 32}-00f067aa0ba902b7-01"):
        assert tracing.Parent.parse(bad) is None


def test_derived_span_ids_are_stable_distinct_and_in_the_same_trace() -> None:
    run = tracing.run_parent(TRACEPARENT, "i-1", "run1", 0)
    assert run is not None and run == tracing.run_parent(TRACEPARENT, "i-1", "run1", 0)
    others = {tracing.run_parent(TRACEPARENT, "i-1", "run1", 1), tracing.run_parent(TRACEPARENT, "i-2", "run1", 0),
              tracing.run_parent(TRACEPARENT, "i-1", "run2", 0)}
    assert run not in others and len(others) == 3
    calls = {tracing.activity_parent(run, task_id) for task_id in range(100)}
    assert len(calls) == 100 and {c.trace_id for c in calls} == {run.trace_id}
    assert tracing.run_parent(None, "i-1", "run1", 0) is None


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("ledgerflow.worker", logging.INFO, __file__, 1, "activity %s", ("start",), None)
    record.__dict__.update(extra)
    return record


def test_json_lines_carry_the_instance_fields_and_the_active_span() -> None:
    fmt = logs.formatter("json")
    record = _record(instance_id="i-1", workflow="orders", app_id="shop", task_id=3)
    plain = json.loads(fmt.format(record))
    assert plain["message"] == "activity start" and plain["level"] == "INFO" and plain["logger"] == "ledgerflow.worker"
    assert (plain["instance_id"], plain["workflow"], plain["app_id"], plain["task_id"]) == ("i-1", "orders", "shop", 3)
    assert "trace_id" not in plain and plain["time"].endswith("+00:00")
    context = SpanContext(0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7, False, TraceFlags(1))
    with trace.use_span(NonRecordingSpan(context)):
        traced = json.loads(fmt.format(record))
    assert traced["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736" and traced["span_id"] == "00f067aa0ba902b7"


def test_json_lines_name_an_instances_trace_without_an_active_span_and_keep_exceptions() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = _record(trace_id="4bf92f3577b34da6a3ce929d0e0e4736")
        record.exc_info = sys.exc_info()
    line = logs.formatter("json").format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736" and "ValueError: boom" in entry["exception"]


def test_the_text_format_stays_as_it_was() -> None:
    line = logs.formatter("text").format(_record(instance_id="i-1"))
    assert " INFO ledgerflow.worker pid=" in line and line.endswith("activity start instance_id=i-1")
