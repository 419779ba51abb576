"""One workflow, followed through every process of the real stack: the API, an orchestrator,
a prefork worker, beat and Flower, each a process of its own on Redis and PostgreSQL,
exporting traces to an OTLP receiver this test runs.

The workflow (two activities, a timer, an event, a child workflow) is started over HTTP with
a W3C `traceparent`; the module's tests then read what it left: one trace, metrics on every
process's endpoint, Flower's task list, and JSON log lines.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import secrets
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.fixtures.processes import ProcessGroup, wait_for
from tests.fixtures.redis import free_port
from tests.integration.observability.collector import Collector, Span, start_collector

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
APP = "tests.integration.observability.app"
TRACE_ID = secrets.token_hex(16)
CALLER_SPAN = secrets.token_hex(8)


@dataclass
class Run:
    instance_id: str
    spans: list[Span]
    ports: dict[str, int]
    procs: ProcessGroup


def _started(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code < 500
    except httpx.HTTPError:
        return False


def _metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the Prometheus text `text` (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        match = re.match(rf"{re.escape(name)}(?:\{{(.*)\}})? (\S+)$", line)
        if match is None:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(2))
    return 0.0


@pytest.fixture(scope="module")
def observed_run(redis_server, postgres_server, _postgres_template,  # noqa: ANN001 - session fixtures
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    from tests.fixtures.postgres import _fresh_db

    collector: Collector = start_collector()
    procs = ProcessGroup(tmp_path_factory.mktemp("observability-logs"))
    databases = _fresh_db(postgres_server, _postgres_template)
    ports = {name: free_port() for name in ("api", "orchestrator", "worker", "flower")}
    env = {
        "LEDGERFLOW_DATABASE_URL": next(databases),
        "LEDGERFLOW_BROKER_URL": redis_server.url,
        "LEDGERFLOW_APP_ID": f"obs{uuid.uuid4().hex[:8]}",
        "LEDGERFLOW_TASK_EVENTS": "on",
        "PYTHONPATH": str(REPO),
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "FLOWER_UNAUTHENTICATED_API": "true",
        "PROMETHEUS_MULTIPROC_DIR": None,
    }

    def start(name: str, *args: str, **extra: str) -> None:
        procs.start(name, [sys.executable, "-m", "ledgerflow.cli", *args], cwd=str(REPO),
                    env={**env, "OTEL_SERVICE_NAME": f"ledgerflow-{name}", **extra})

    try:
        start("flower", "flower", "--port", str(ports["flower"]))
        start("api", "api", "--port", str(ports["api"]))
        start("orchestrator", "orchestrator", APP, "--metrics-port", str(ports["orchestrator"]))
        start("worker", "worker", APP, "--concurrency", "2", "--metrics-port", str(ports["worker"]),
              LEDGERFLOW_LOG_FORMAT="json")
        start("beat", "beat", "--interval", "0.2")
        for name, path in (("api", "/v1.0/healthz"), ("orchestrator", "/metrics"), ("worker", "/metrics"),
                           ("flower", "/api/workers")):
            wait_for(lambda: _started(f"http://127.0.0.1:{ports[name]}{path}"), 60, 0.2,
                     f"{name} listening", logs=procs)

        base = f"http://127.0.0.1:{ports['api']}/v1.0/workflows/dapr"
        instance_id = f"observed-{uuid.uuid4().hex[:8]}"
        started = httpx.post(f"{base}/observed/start", params={"instanceID": instance_id}, json="world",
                             headers={"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01"}, timeout=10)
        assert started.status_code == 202, started.text
        assert httpx.post(f"{base}/{instance_id}/raiseEvent/go", json="yes", timeout=10).status_code == 202

        def finished() -> str | None:
            status = httpx.get(f"{base}/{instance_id}", timeout=5).json().get("runtimeStatus")
            return status if status in ("COMPLETED", "FAILED", "TERMINATED") else None

        assert wait_for(finished, 60, 0.1, "the workflow ends", logs=procs) == "COMPLETED"
        # The last spans leave their processes within OTEL_BSP_SCHEDULE_DELAY.
        wait_for(lambda: any(s.name == "orchestration:observed" for s in collector.in_trace(TRACE_ID)), 20, 0.1,
                 "the run's span reaches the collector", logs=procs)
        run = Run(instance_id, collector.in_trace(TRACE_ID), ports, procs)
        if os.environ.get("LEDGERFLOW_TEST_TRACE_JSON"):  # for scripts/trace_timeline.py
            Path(os.environ["LEDGERFLOW_TEST_TRACE_JSON"]).write_text(
                json.dumps([dataclasses.asdict(s) for s in run.spans], indent=1))
        yield run
    finally:
        procs.stop_all()
        collector.stop()
        databases.close()


def test_one_trace_with_spans_from_the_api_orchestrator_and_worker(observed_run: Run) -> None:
    spans = observed_run.spans
    names = sorted(f"{s.name} ({s.service})" for s in spans)
    by_name = {s.name: [x for x in spans if x.name == s.name] for s in spans}
    assert {s.service for s in spans} >= {"ledgerflow-api", "ledgerflow-orchestrator", "ledgerflow-worker"}, names
    assert len({s.span_id for s in spans}) == len(spans), f"a span was sent twice: {names}"

    (created,) = by_name["create_orchestration:observed"]
    assert created.parent_span_id == CALLER_SPAN and created.service == "ledgerflow-api"
    (run,) = by_name["orchestration:observed"]
    assert run.parent_span_id == created.span_id and run.service == "ledgerflow-orchestrator"
    assert run.attributes["durabletask.type"] == "orchestration"
    assert run.attributes["durabletask.task.instance_id"] == observed_run.instance_id
    assert run.attributes["durabletask.task.status"] == "Completed"

    for activity in ("greet",):
        pair = sorted(by_name[f"activity:{activity}"], key=lambda s: s.service)
        assert len(pair) == 2, names
        client, server = pair
        assert (client.service, server.service) == ("ledgerflow-orchestrator", "ledgerflow-worker")
        assert client.parent_span_id == run.span_id and server.parent_span_id == client.span_id
        assert server.attributes["durabletask.task.task_id"] == client.attributes["durabletask.task.task_id"]
    # shout runs twice: once in the parent, once in the child workflow, each a client + server pair
    assert len(by_name["activity:shout"]) == 4

    (child,) = by_name["orchestration:leaf"]
    assert child.parent_span_id == run.span_id
    (timer,) = by_name["orchestration:observed:timer"]
    assert timer.parent_span_id == run.span_id and "durabletask.fire_at" in timer.attributes
    (event,) = by_name["orchestration_event:go"]
    assert event.parent_span_id == run.span_id and event.attributes["durabletask.type"] == "event"


def test_metrics_on_the_api_orchestrator_and_prefork_worker(observed_run: Run) -> None:
    ports = observed_run.ports
    orchestrator = httpx.get(f"http://127.0.0.1:{ports['orchestrator']}/metrics", timeout=5).text
    assert _metric(orchestrator, "ledgerflow_workflows_started_total", workflow="observed") == 1
    assert _metric(orchestrator, "ledgerflow_workflows_started_total", workflow="leaf") == 1
    assert _metric(orchestrator, "ledgerflow_workflows_finished_total", workflow="observed", status="COMPLETED") == 1
    assert _metric(orchestrator, "ledgerflow_step_duration_seconds_count") >= 5
    assert _metric(orchestrator, "ledgerflow_timer_lateness_seconds_count") >= 1
    assert "ledgerflow_inbox_backlog" in orchestrator and "ledgerflow_outbox_unsent" in orchestrator
    assert _metric(orchestrator, "process_cpu_seconds_total") > 0

    # prefork: the children count in files the worker's main process reads when scraped
    worker = httpx.get(f"http://127.0.0.1:{ports['worker']}/metrics", timeout=5).text
    assert _metric(worker, "ledgerflow_activity_executions_total", activity="greet", outcome="completed") == 1
    assert _metric(worker, "ledgerflow_activity_executions_total", activity="shout", outcome="completed") == 2
    assert _metric(worker, "ledgerflow_activity_duration_seconds_count", activity="shout") == 2

    api = httpx.get(f"http://127.0.0.1:{ports['api']}/metrics", timeout=5)
    assert api.status_code == 200 and api.headers["content-type"].startswith("text/plain")
    assert _metric(api.text, "ledgerflow_inbox_backlog") == 0
    assert "process_resident_memory_bytes" in api.text


def test_flower_lists_each_activity_as_its_own_task(observed_run: Run) -> None:
    url = f"http://127.0.0.1:{observed_run.ports['flower']}/api/tasks"

    def greet_done() -> bool:
        tasks = httpx.get(url, timeout=5).json()
        return any(t.get("name") == "ledgerflow.activity.greet" and t.get("state") == "SUCCESS"
                   for t in tasks.values())

    wait_for(greet_done, 15, 0.2, "Flower lists ledgerflow.activity.greet as succeeded", logs=observed_run.procs)


def test_worker_logs_are_json_lines_with_the_instance_and_its_trace(observed_run: Run) -> None:
    (worker,) = observed_run.procs.by_name("worker")
    entries = [json.loads(line) for line in worker.log_text().splitlines() if line.strip()]  # every line
    assert entries and all({"time", "level", "logger", "message"} <= set(e) for e in entries)
    (greeting,) = [e for e in entries if e["message"] == "greeting world"]
    assert greeting["instance_id"] == observed_run.instance_id and greeting["level"] == "INFO"
    assert greeting["trace_id"] == TRACE_ID and len(greeting["span_id"]) == 16
