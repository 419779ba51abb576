"""Replaying old history sends no span twice: with the replay cache off, every step of the
workflow replays its whole history, and each span still leaves exactly once."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import ledgerflow as wf
from orchestrator.cache import ReplayCache
from telemetry import tracing
from tests.fixtures.processes import wait_for
from tests.integration.observability import app

CALLER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture
def exported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    for key, value in {"LEDGERFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'lf.db'}",
                       "LEDGERFLOW_BROKER_URL": "memory://localhost/",
                       "LEDGERFLOW_APP_ID": f"rep{uuid.uuid4().hex[:6]}",
                       "OTEL_TRACES_EXPORTER": "otlp", "OTEL_BSP_SCHEDULE_DELAY": "50"}.items():
        monkeypatch.setenv(key, value)
    exporter = InMemorySpanExporter()
    monkeypatch.setattr(tracing, "_exporter", lambda: exporter)  # the SDK as configured, spans kept here
    tracing.reset()
    app.wfr.start()
    assert app.wfr.service is not None
    app.wfr.service.cache = ReplayCache(capacity=0)  # every step replays the history from the database
    try:
        yield exporter
    finally:
        app.wfr.shutdown()
        tracing.reset()


def test_a_workflow_replayed_at_every_step_sends_each_span_once(exported: InMemorySpanExporter) -> None:
    client = wf.DaprWorkflowClient()
    try:
        instance_id = f"replayed-{uuid.uuid4().hex[:6]}"
        tracer = tracing.tracer()
        assert tracer is not None
        parent = tracing.Parent.parse(CALLER)
        assert parent is not None
        with tracer.start_as_current_span("caller", context=parent.context()):  # the client's current span
            client.schedule_new_workflow(app.observed, input="again", instance_id=instance_id)
        client.raise_workflow_event(instance_id, "go", data=1)
        state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=30)
        assert state is not None and state.runtime_status.name == "COMPLETED"
        wait_for(lambda: tracing.flush() or any(s.name == "orchestration:observed"
                                                for s in exported.get_finished_spans()), 10, 0.05,
                 "the run's span is exported")
    finally:
        client.close()
    spans = [s for s in exported.get_finished_spans() if s.context.trace_id == parent.trace_id]
    names = Counter(s.name for s in spans)
    assert names == Counter({"caller": 1, "create_orchestration:observed": 1, "orchestration:observed": 1,
                             "activity:greet": 2, "activity:shout": 4, "orchestration:observed:timer": 1,
                             "orchestration_event:go": 1, "orchestration:leaf": 1}), names
    assert len({s.context.span_id for s in spans}) == len(spans)


def test_failures_are_the_spans_error_status_and_an_exception_event(exported: InMemorySpanExporter) -> None:
    from opentelemetry.trace import StatusCode

    client = wf.DaprWorkflowClient()
    try:
        instance_id = client.schedule_new_workflow(app.failing, input="no luck")
        state = client.wait_for_workflow_completion(instance_id, timeout_in_seconds=30)
        assert state is not None and state.runtime_status.name == "FAILED"
        wait_for(lambda: tracing.flush() or any(s.name == "orchestration:failing"
                                                for s in exported.get_finished_spans()), 10, 0.05,
                 "the run's span is exported")
    finally:
        client.close()
    spans = {(s.name, s.kind.name): s for s in exported.get_finished_spans()
             if s.attributes.get("durabletask.task.instance_id") == instance_id}
    for key in (("activity:explode", "SERVER"), ("activity:explode", "CLIENT"), ("orchestration:failing", "SERVER")):
        span = spans[key]
        assert span.status.status_code == StatusCode.ERROR, key
        assert [e.name for e in span.events] == ["exception"], key
    assert spans[("activity:explode", "SERVER")].events[0].attributes["exception.type"] == "ValueError"
    assert spans[("orchestration:failing", "SERVER")].attributes["durabletask.task.status"] == "Failed"
