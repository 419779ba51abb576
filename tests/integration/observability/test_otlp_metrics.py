"""The Prometheus metrics pushed over OTLP/HTTP when OTLP is configured."""

from __future__ import annotations

import pytest

from telemetry import metrics, otlp_metrics
from tests.fixtures.processes import wait_for
from tests.integration.observability.collector import start_collector


@pytest.mark.parametrize(("env", "on"), [
    ({}, False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"}, True),
    ({"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://x/v1/metrics"}, True),
    ({"OTEL_METRICS_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"}, False),
    ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"}, False),
])
def test_pushed_only_when_asked(env: dict[str, str], on: bool) -> None:
    assert otlp_metrics.wanted(env) is on


def test_counters_and_histograms_arrive_at_an_otlp_receiver(monkeypatch: pytest.MonkeyPatch) -> None:
    collector = start_collector()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", f"{collector.endpoint}/v1/metrics")
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "100")
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    every = metrics.metrics()
    started = every.workflows_started.labels(workflow="pushed_over_otlp")
    started.inc()
    every.timer_lateness.observe(0.003)
    provider = otlp_metrics.start()
    try:
        wait_for(lambda: collector.last_value("ledgerflow_workflows_started", workflow="pushed_over_otlp") == 1,
                 10, 0.05, "the counter arrives")
        started.inc()
        wait_for(lambda: collector.last_value("ledgerflow_workflows_started", workflow="pushed_over_otlp") == 2,
                 10, 0.05, "the counter moves")
        assert (collector.last_value("ledgerflow_timer_lateness_seconds_count") or 0) >= 1
        assert (collector.last_value("ledgerflow_timer_lateness_seconds_bucket", le="0.005") or 0) >= 1
    finally:
        provider.shutdown()
        collector.stop()
