"""Prometheus metrics of every Ledgerflow process, with prometheus_client.

The metrics are made on first use, so a process can first choose multi-process mode
(`use_multiprocess`, for a prefork worker whose children each count for themselves) and
then count. Reading them: `exposition()` for the HTTP API's `GET /metrics`, `serve(port)`
for `--metrics-port` on the orchestrator, worker and beat.

Recording costs a lock and an addition (about a microsecond), no I/O: it sits on the step
and activity paths as they are.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from telemetry import environment

#: Buckets in seconds for steps, activities and timer lateness.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


@dataclass(frozen=True)
class Metrics:
    workflows_started: Counter
    workflows_finished: Counter
    activity_executions: Counter
    step_duration: Histogram
    activity_duration: Histogram
    timer_lateness: Histogram
    redeliveries: Counter


@functools.cache
def metrics() -> Metrics:
    """The process's metrics, registered in prometheus_client's default registry."""
    return Metrics(
        workflows_started=Counter("ledgerflow_workflows_started_total", "Workflow runs started (first step taken)",
                                  ["workflow"]),
        workflows_finished=Counter("ledgerflow_workflows_finished_total",
                                   "Workflow runs ended, by final status", ["workflow", "status"]),
        activity_executions=Counter("ledgerflow_activity_executions_total",
                                    "Activity executions on workers, by outcome (completed, failed)",
                                    ["activity", "outcome"]),
        step_duration=Histogram("ledgerflow_step_duration_seconds",
                                "Time of one orchestration step (replay and the writes it makes)", buckets=_BUCKETS),
        activity_duration=Histogram("ledgerflow_activity_duration_seconds", "Time an activity ran on a worker",
                                    ["activity"], buckets=_BUCKETS),
        timer_lateness=Histogram("ledgerflow_timer_lateness_seconds",
                                 "How long after its due time a durable timer fired", buckets=_BUCKETS),
        redeliveries=Counter("ledgerflow_redeliveries_total",
                             "Work seen again: results dropped as duplicates or stale, calls re-sent, "
                             "re-sent calls not run twice", ["reason"]),
    )


def redelivered(reason: str, count: int = 1) -> None:
    if count:
        metrics().redeliveries.labels(reason=reason).inc(count)


# -- gauges read from the database when scraped -------------------------------------------

class _Backlog:
    """`ledgerflow_inbox_backlog` and `ledgerflow_outbox_unsent`, counted by `count()` at
    scrape time (two COUNT queries per scrape rather than bookkeeping on every step)."""

    def __init__(self, count: Callable[[], tuple[int, int]]) -> None:
        self.count = count

    def collect(self) -> Any:
        try:
            inbox, outbox = self.count()
        except Exception:  # the database is away: report nothing rather than fail the scrape
            return
        yield GaugeMetricFamily("ledgerflow_inbox_backlog", "Inbox messages visible and not yet taken by a step",
                                value=inbox)
        yield GaugeMetricFamily("ledgerflow_outbox_unsent",
                                "Outbox rows (activity calls, wake-ups) written but not yet marked sent",
                                value=outbox)


_backlog_lock = threading.Lock()
_backlog: list[_Backlog] = []


def watch_backlog(count: Callable[[], tuple[int, int]]) -> None:
    """Report the inbox backlog and unsent outbox of this process's database (once per process)."""
    with _backlog_lock:
        if _backlog:
            _backlog[0].count = count
            return
        _backlog.append(_Backlog(count))
        prometheus_client.REGISTRY.register(_backlog[0])


# -- exposition ------------------------------------------------------------------------------

def use_multiprocess(directory: str | None = None) -> str:
    """Count in files shared by this process and the children it forks (prometheus_client's
    multi-process mode). Call before the first metric is used and before forking."""
    from prometheus_client import values

    directory = directory or environment.library_variables().get(environment.MULTIPROC_DIR)
    if directory is None:  # ours: removed when this process exits (its forked children never run atexit)
        directory = tempfile.mkdtemp(prefix="ledgerflow-metrics-")
        owner = os.getpid()
        atexit.register(lambda: os.getpid() == owner and shutil.rmtree(directory, ignore_errors=True))
    environment.set_multiproc_dir(directory)
    values.ValueClass = values.MultiProcessValue()
    return directory


def registry() -> CollectorRegistry:
    """What a scrape reads: the default registry, or in multi-process mode every process's
    files plus this process's own collectors."""
    if not environment.library_variables().get(environment.MULTIPROC_DIR):
        return prometheus_client.REGISTRY
    from prometheus_client import multiprocess

    combined = CollectorRegistry()
    multiprocess.MultiProcessCollector(combined)
    prometheus_client.ProcessCollector(registry=combined)
    for backlog in _backlog:
        combined.register(backlog)
    return combined


def exposition() -> tuple[bytes, str]:
    """The Prometheus text format of every metric, and its content type."""
    metrics()  # present (at zero) before the first event
    return prometheus_client.generate_latest(registry()), prometheus_client.CONTENT_TYPE_LATEST


def serve(port: int, host: str = "127.0.0.1") -> None:
    """Serve `GET /metrics` on `host:port` from a daemon thread."""
    metrics()
    prometheus_client.start_http_server(port, addr=host, registry=registry())
