"""A tiny OTLP/HTTP receiver: what the exporters of the processes under test send to
`POST /v1/traces` and `POST /v1/metrics` (protobuf), decoded with opentelemetry-proto and
kept as plain records."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


@dataclass(frozen=True)
class Span:
    name: str
    service: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    status_code: int
    events: tuple[str, ...]


def _value(v: Any) -> Any:
    return getattr(v, v.WhichOneof("value")) if v.WhichOneof("value") else None


@dataclass
class Collector:
    server: ThreadingHTTPServer
    spans: list[Span] = field(default_factory=list)
    #: (metric name, data point attributes, value), in the order received
    points: list[tuple[str, dict[str, Any], float]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def endpoint(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def receive(self, body: bytes) -> None:
        request = ExportTraceServiceRequest.FromString(body)
        found = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for s in scope_spans.spans:
                    found.append(Span(
                        name=s.name, service=str(resource.get("service.name")), trace_id=s.trace_id.hex(),
                        span_id=s.span_id.hex(), parent_span_id=s.parent_span_id.hex(), kind=s.kind,
                        start_ns=s.start_time_unix_nano, end_ns=s.end_time_unix_nano,
                        attributes={a.key: _value(a.value) for a in s.attributes}, status_code=s.status.code,
                        events=tuple(e.name for e in s.events)))
        with self.lock:
            self.spans.extend(found)

    def receive_metrics(self, body: bytes) -> None:
        request = ExportMetricsServiceRequest.FromString(body)
        found = []
        for resource_metrics in request.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for m in scope_metrics.metrics:
                    data = getattr(m, m.WhichOneof("data"))
                    for p in data.data_points:
                        value = p.as_double if p.WhichOneof("value") == "as_double" else p.as_int
                        found.append((m.name, {a.key: _value(a.value) for a in p.attributes}, value))
        with self.lock:
            self.points.extend(found)

    def last_value(self, name: str, **attributes: str) -> float | None:
        """The latest value received for metric `name` with these attributes."""
        with self.lock:
            values = [v for n, attrs, v in self.points if n == name
                      and all(attrs.get(k) == want for k, want in attributes.items())]
        return values[-1] if values else None

    def in_trace(self, trace_id: str) -> list[Span]:
        with self.lock:
            return [s for s in self.spans if s.trace_id == trace_id]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_collector() -> Collector:
    """Listen on 127.0.0.1 on a free port, in a daemon thread of this process."""
    holder: list[Collector] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.rstrip("/") == "/v1/traces":
                holder[0].receive(body)
            elif self.path.rstrip("/") == "/v1/metrics":
                holder[0].receive_metrics(body)
            reply = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder.append(Collector(server))
    threading.Thread(target=server.serve_forever, name="otlp-collector", daemon=True).start()
    return holder[0]
