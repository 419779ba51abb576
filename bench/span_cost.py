"""`python -m bench.span_cost http://127.0.0.1:PORT`: the CPU cost of tracing in one process.

Measures the check every step makes when tracing is off, and one activity span with derived
IDs when it is on, including the batch span processor's OTLP/HTTP export to PORT (run
`python -m bench.otlp_sink PORT` first). CPU time of the whole process, so the exporting
thread's encoding counts."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone

from telemetry import tracing

N = 5000
CALLER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def measure(label: str, run: Callable[[int], None]) -> None:
    run(200)  # warm up
    cpu, wall = time.process_time(), time.perf_counter()
    run(N)
    tracing.flush(30_000)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(f"{label}: {cpu / N * 1e6:.1f} us CPU per call ({wall / N * 1e6:.1f} us wall)")


def check(n: int) -> None:
    for _ in range(n):
        if tracing.tracer() is not None:
            raise SystemExit("tracing is on: unset the OTEL_* variables")


def span(n: int) -> None:
    now = datetime.now(timezone.utc)
    for task_id in range(n):
        run = tracing.run_parent(CALLER, "instance", "run", 0)
        assert run is not None
        tracing.emit("activity:noop", tracing.activity_parent(run, task_id), run, now, now,
                     tracing.attributes("activity", "noop", "instance", "app", task_id, "Completed"))


def main() -> None:
    os.environ.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    tracing.reset()
    measure("off: the check a step makes", check)
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = sys.argv[1]
    tracing.reset()
    measure("on: one activity span, derived IDs, OTLP/HTTP export included", span)


if __name__ == "__main__":
    main()
