"""The embedded default, measured in this process: SQLite + Celery's in-memory broker, the
runtime's orchestrator and activities in threads (`WorkflowRuntime().start()`), beside raw
Celery on the same in-memory broker with an embedded threads worker of the same size.

Ledgerflow runs first, then the baseline (one Celery app is the process default at a time).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

import ledgerflow as wf
from bench import baseline
from bench.app import build_runtime
from bench.env import sampling
from bench.report import Result, median, ms
from bench.stack import ScenarioTimeout
from brokers.embedded import EmbeddedWorker
from orchestrator.engine import codec
from orchestrator.engine import events as ev
from persistence import schema
from persistence.store import Store

BROKER = "memory://localhost/"
TERMINAL = ("COMPLETED", "FAILED", "TERMINATED")


@dataclass(frozen=True)
class Sizes:
    p1_workflows: int
    p1_steps: int
    p2_fanout: int
    p3_steps: int
    p6_starts: int
    concurrency: int = 8  # WorkflowRuntime's default thread pool


FULL = Sizes(p1_workflows=100, p1_steps=10, p2_fanout=1000, p3_steps=2000, p6_starts=2000)
QUICK = Sizes(p1_workflows=20, p1_steps=10, p2_fanout=200, p3_steps=300, p6_starts=300)
SMOKE = Sizes(p1_workflows=3, p1_steps=3, p2_fanout=10, p3_steps=25, p6_starts=10)
IDS = ("P1", "P2", "P3", "P6")


@dataclass
class Lf:
    client: wf.DaprWorkflowClient
    store: Store
    run: str

    def wait(self, prefix: str, n: int, timeout: float) -> list[tuple[str, str, Any, Any]]:
        t = schema.instances
        stmt = sa.select(t.c.instance_id, t.c.status, t.c.created_at, t.c.completed_at).where(
            t.c.instance_id.like(prefix + "%"), t.c.status.in_(TERMINAL))
        deadline = time.monotonic() + timeout
        while True:
            with self.store.engine.connect() as conn:
                rows = conn.execute(stmt).all()
            if len(rows) >= n:
                return [(r[0], r[1], r[2], r[3]) for r in rows]
            if time.monotonic() > deadline:
                raise ScenarioTimeout(f"{len(rows)} of {n} workflows finished within {timeout:.0f}s")
            time.sleep(0.02)


def run(ids: list[str], sizes: Sizes, work: Path) -> list[Result]:
    chosen = [i for i in ids if i in IDS]
    if not chosen:
        return []
    measured: dict[str, dict[str, Any]] = {i: {} for i in chosen}
    if "P6" in chosen:
        measured["P6"]["lf"] = _guarded(lambda: _lf_p6(sizes, work))
    _with_runtime(chosen, sizes, work, measured)
    _with_baseline(chosen, sizes, measured)
    return [_result(i, sizes, measured[i]) for i in chosen]


def _guarded(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception as exc:  # report, never fail
        return exc


def _with_runtime(ids: list[str], sizes: Sizes, work: Path, measured: dict[str, dict[str, Any]]) -> None:
    app_id = f"emb{uuid.uuid4().hex[:6]}"
    db_url = f"sqlite:///{work / f'{app_id}.db'}"
    runtime = build_runtime(app_id=app_id, database_url=db_url, broker_url=BROKER,
                            maximum_thread_pool_workers=sizes.concurrency)
    runtime.start()
    lf = Lf(wf.DaprWorkflowClient(app_id=app_id, database_url=db_url, broker_url=BROKER), Store(db_url),
            uuid.uuid4().hex[:6])
    try:
        for sid, fn in (("P1", _lf_p1), ("P2", _lf_p2), ("P3", _lf_p3)):
            if sid in ids:
                with sampling({"process": os.getpid()}) as rss:
                    measured[sid]["lf"] = _guarded(lambda fn=fn: fn(lf, sizes))
                measured[sid]["rss"] = rss.peak
    finally:
        lf.client.close()
        lf.store.close()
        runtime.shutdown()


def _lf_p1(lf: Lf, s: Sizes) -> tuple[float, list[float]]:
    prefix = f"e1-{lf.run}"
    t0 = time.time()
    for i in range(s.p1_workflows):
        lf.client.schedule_new_workflow("chain", input=s.p1_steps, instance_id=f"{prefix}-{i:05d}")
    rows = lf.wait(prefix, s.p1_workflows, max(60, s.p1_workflows * s.p1_steps * 0.1))
    return max(r[3].timestamp() for r in rows) - t0, [(r[3] - r[2]).total_seconds() for r in rows]


def _lf_p2(lf: Lf, s: Sizes) -> float:
    iid = f"e2-{lf.run}"
    t0 = time.time()
    lf.client.schedule_new_workflow("fanout", input=s.p2_fanout, instance_id=iid)
    row = lf.wait(iid, 1, max(60, s.p2_fanout * 0.1))[0]
    return s.p2_fanout / (row[3].timestamp() - t0)


def _lf_p3(lf: Lf, s: Sizes) -> tuple[float | None, float | None, list[float]]:
    iid = f"e3-{lf.run}"
    lf.client.schedule_new_workflow("chain", input=s.p3_steps, instance_id=iid)
    lf.wait(iid, 1, max(60, s.p3_steps * 0.2))
    history = [codec.decode(e.type, e.payload) for e in lf.store.history(iid)]
    starts = [e.timestamp for e in history if isinstance(e, ev.OrchestratorStarted)]
    cycles = [(b - a).total_seconds() for a, b in zip(starts, starts[1:])]
    window = min(10, max(1, len(cycles) // 3))
    return median(cycles[-window:]), median(cycles[1:1 + window]), cycles


def _lf_p6(s: Sizes, work: Path) -> float:
    app_id = f"emb{uuid.uuid4().hex[:6]}"
    db_url = f"sqlite:///{work / f'{app_id}-p6.db'}"
    client = wf.DaprWorkflowClient(app_id=app_id, database_url=db_url, broker_url=BROKER)
    try:
        for i in range(10):
            client.schedule_new_workflow("chain", input=1, instance_id=f"w{i}")
        t0 = time.perf_counter()
        for i in range(s.p6_starts):
            client.schedule_new_workflow("chain", input=1, instance_id=f"s{i}")
        return s.p6_starts / (time.perf_counter() - t0)
    finally:
        client.close()


def _with_baseline(ids: list[str], sizes: Sizes, measured: dict[str, dict[str, Any]]) -> None:
    app = baseline.make_app(BROKER)
    worker = EmbeddedWorker(app, [baseline.QUEUE_A, baseline.QUEUE_B], concurrency=sizes.concurrency,
                            name="bench-baseline")
    worker.start()
    try:
        run_id = uuid.uuid4().hex[:6]
        if "P1" in ids:
            measured["P1"]["base"] = _guarded(lambda: _base_p1(app, sizes, run_id))
        if "P2" in ids:
            measured["P2"]["base"] = _guarded(lambda: _base_p2(app, sizes, run_id))
        if "P6" in ids:
            measured["P6"]["base"] = _guarded(lambda: _base_p6(app, sizes))
    finally:
        worker.stop()
        _purge_idle_queue(app)


def _wait_marks(app: Any, key: str, n: int, timeout: float) -> list[tuple[str, float]]:
    deadline = time.monotonic() + timeout
    while True:
        marks = baseline.marks(app, key)
        if len(marks) >= n:
            return marks
        if time.monotonic() > deadline:
            raise ScenarioTimeout(f"baseline: {len(marks)} of {n} completions within {timeout:.0f}s")
        time.sleep(0.01)


def _base_p1(app: Any, s: Sizes, run_id: str) -> tuple[float, list[float]]:
    key = f"e1:{run_id}"
    sent: dict[str, float] = {}
    t0 = time.time()
    for i in range(s.p1_workflows):
        sent[str(i)] = time.time()
        baseline.chain_of(app, 2 * s.p1_steps, key, str(i)).apply_async()
    marks = _wait_marks(app, key, s.p1_workflows, max(60, s.p1_workflows * s.p1_steps * 0.1))
    return max(t for _, t in marks) - t0, [t - sent[tok] for tok, t in marks]


def _base_p2(app: Any, s: Sizes, run_id: str) -> float:
    """A group of no-op tasks, each marking completion (a chord would need a result backend)."""
    key = f"e2:{run_id}"
    noop = app.tasks["bench.noop"]
    t0 = time.time()
    for i in range(s.p2_fanout):
        noop.apply_async(args=[i], kwargs={"done": key, "token": str(i)}, queue=baseline.QUEUE_A)
    marks = _wait_marks(app, key, s.p2_fanout, max(60, s.p2_fanout * 0.1))
    return s.p2_fanout / (max(t for _, t in marks) - t0)


def _base_p6(app: Any, s: Sizes) -> float:
    noop = app.tasks["bench.noop"]
    for i in range(10):
        noop.apply_async(args=[i], queue=baseline.QUEUE_IDLE)
    t0 = time.perf_counter()
    for i in range(s.p6_starts):
        noop.apply_async(args=[i], queue=baseline.QUEUE_IDLE)
    return s.p6_starts / (time.perf_counter() - t0)


def _purge_idle_queue(app: Any) -> None:
    try:
        with app.connection_for_write() as conn:
            conn.default_channel.queue_purge(baseline.QUEUE_IDLE)
    except Exception:
        pass


# -- results ---------------------------------------------------------------------------------

def _result(sid: str, s: Sizes, m: dict[str, Any]) -> Result:
    lf, base = m.get("lf"), m.get("base")
    errors = [x for x in (lf, base) if isinstance(x, BaseException)]
    title, unit, target = {
        "P1": (f"{s.p1_workflows} workflows x {s.p1_steps} sequential no-op activities", "s", "<= 2.0"),
        "P2": (f"1 workflow fanning out {s.p2_fanout} no-op activities, then fan-in", "activities/s", ">= 0.5"),
        "P3": (f"one workflow of {s.p3_steps} sequential steps", "ms/step", "<= 1.5"),
        "P6": (f"start {s.p6_starts} workflows through the client (one thread)", "starts/s", "report"),
    }[sid]
    if errors:
        r = Result(sid, title, None, None, None, unit, target)
        r.notes += [f"not measured: {type(e).__name__}: {e}" for e in errors]
        return r
    r = Result(sid, title, None, None, None, unit, target, rss_mb=m.get("rss", {}))
    if sid == "P1":
        (lf_time, lf_lat), (base_time, base_lat) = lf, base
        r.ledgerflow, r.baseline, r.ratio = lf_time, base_time, lf_time / base_time
        r.met = r.ratio <= 2.0
        r.p50_ms, r.p99_ms = ms(lf_lat)
        r.baseline_p50_ms, r.baseline_p99_ms = ms(base_lat)
        r.notes.append(f"baseline: Celery chains of {2 * s.p1_steps} no-op tasks on the memory transport, "
                       f"embedded threads worker x{s.concurrency}")
    elif sid == "P2":
        r.ledgerflow, r.baseline, r.ratio = lf, base, lf / base
        r.met = r.ratio >= 0.5
        r.notes.append("baseline: a Celery group of no-op tasks (the memory transport has no chord backend)")
    elif sid == "P3":
        late, early, cycles = lf
        r.ledgerflow, r.baseline = _ms(late), _ms(early)
        r.ratio = late / early if late and early else None
        r.met = r.ratio is not None and r.ratio <= 1.5
        r.p50_ms, r.p99_ms = ms(cycles)
        r.notes.append("step time as in the PostgreSQL run (baseline = the workflow's own first steps)")
    else:
        r.ledgerflow, r.baseline, r.ratio = lf, base, lf / base
        r.notes.append("baseline: apply_async on the memory transport, one thread")
    return r


def _ms(value: float | None) -> float | None:
    return None if value is None else value * 1000
