"""The Prometheus metrics, also pushed over OTLP when OTLP is configured.

On when `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` is set, or
`OTEL_METRICS_EXPORTER=otlp` (off with `OTEL_METRICS_EXPORTER=none` or `OTEL_SDK_DISABLED`).
An OpenTelemetry MeterProvider exports every `OTEL_METRIC_EXPORT_INTERVAL` ms; its observable
instruments read prometheus_client's registry at each export, so there is one set of counts
and no second bookkeeping on the step path. Counters become monotonic sums (named without
`_total`), gauges gauges, and a histogram three sums: `<name>_count`, `<name>_sum` and
`<name>_bucket` with an `le` attribute (the buckets as Prometheus has them).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

from telemetry import environment, metrics, tracing

log = logging.getLogger("ledgerflow.telemetry")

_GAUGES = ("ledgerflow_inbox_backlog", "ledgerflow_outbox_unsent")


def wanted(env: Mapping[str, str] | None = None) -> bool:
    """Whether the OTEL_* variables (`env`, else the process's) ask for OTLP metrics."""
    env = environment.library_variables() if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    kind = env.get("OTEL_METRICS_EXPORTER", "").strip().lower()
    if kind == "none":
        return False
    return kind == "otlp" or bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"))


def start() -> Any:
    """Start exporting this process's metrics; returns the MeterProvider (None without the SDK)."""
    try:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    except ImportError:
        log.warning("OTEL_* variables ask for OTLP metrics but the OpenTelemetry SDK is not installed: "
                    "pip install 'ledgerflow[otel]'")
        return None
    provider = MeterProvider(metric_readers=[PeriodicExportingMetricReader(_exporter())], resource=tracing.resource())
    meter = provider.get_meter("ledgerflow")
    for family in _families():
        name, kind = family
        if kind == "counter":
            meter.create_observable_counter(name, [_reader(name, f"{name}_total")])
        elif kind == "histogram":
            for part in ("_count", "_sum", "_bucket"):
                meter.create_observable_counter(f"{name}{part}", [_reader(name, f"{name}{part}")])
    for name in _GAUGES:
        meter.create_observable_gauge(name, [_reader(name, name)])
    return provider


def _exporter() -> Any:
    env = environment.library_variables()
    protocol = (env.get("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
                or "http/protobuf").strip().lower()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    return OTLPMetricExporter()


def _families() -> Iterator[tuple[str, str]]:
    """(Prometheus family name, type) of Ledgerflow's counters and histograms."""
    every = metrics.metrics()
    for field in every.__dataclass_fields__:
        for family in getattr(every, field).describe():
            yield family.name, family.type


def _reader(family: str, sample: str) -> Any:
    from opentelemetry.metrics import Observation

    def observe(_options: Any) -> Iterator[Any]:
        for found in metrics.registry().collect():
            if found.name != family:
                continue
            for s in found.samples:
                if s.name == sample:
                    yield Observation(s.value, dict(s.labels))

    return observe
