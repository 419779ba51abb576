"""One benchmark stack: a migrated database, Ledgerflow's processes, a raw-Celery worker, and
the helpers scenarios use to start work and wait for it (in the bench process)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

import ledgerflow as wf
from bench import baseline
from bench.env import APP_MODULE, BenchError, Processes, Servers
from persistence import schema
from persistence.store import Store

TERMINAL = ("COMPLETED", "FAILED", "TERMINATED")
#: Threads per orchestrator process: each runs one batch at a time.
ORCHESTRATOR_CONCURRENCY = 2


class ScenarioTimeout(BenchError):
    """Work did not finish in time; the scenario is reported as not measured."""


@dataclass
class Instance:
    instance_id: str
    status: str
    created_at: datetime
    completed_at: datetime | None
    output: str | None


@dataclass
class Stack:
    """What every scenario gets: the store and client of the main database, the baseline app."""

    servers: Servers
    procs: Processes
    db_url: str
    app_id: str
    env: dict[str, str]
    store: Store
    client: wf.DaprWorkflowClient
    celery: Any
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:6])

    @property
    def broker_url(self) -> str:
        return self.servers.broker_url

    def ledgerflow_pids(self) -> dict[str, int]:
        return {n: p.pid for n, p in self.procs.named.items() if n.startswith(("orchestrator", "worker", "beat"))}

    def orchestrator_pids(self) -> dict[str, int]:
        return {n: p.pid for n, p in self.procs.named.items() if n.startswith("orchestrator")}

    def baseline_pids(self) -> dict[str, int]:
        return {n: p.pid for n, p in self.procs.named.items() if n == "celery"}

    def ids(self, tag: str, n: int) -> list[str]:
        return [f"{tag}-{self.run}-{i:05d}" for i in range(n)]

    # -- waiting on the database -------------------------------------------------------------

    def count(self, prefix: str, statuses: tuple[str, ...] = TERMINAL) -> int:
        stmt = sa.text("SELECT count(*) FROM instances WHERE instance_id LIKE :p AND status IN :s").bindparams(
            sa.bindparam("s", expanding=True))
        with self.store.engine.connect() as conn:
            return int(conn.execute(stmt, {"p": prefix + "%", "s": list(statuses)}).scalar() or 0)

    def instances(self, prefix: str) -> list[Instance]:
        t = schema.instances
        stmt = (sa.select(t.c.instance_id, t.c.status, t.c.created_at, t.c.completed_at, t.c.output)
                .where(t.c.instance_id.like(prefix + "%")).order_by(t.c.instance_id))
        with self.store.engine.connect() as conn:
            return [Instance(*row) for row in conn.execute(stmt)]

    def wait_count(self, prefix: str, n: int, timeout: float, statuses: tuple[str, ...] = TERMINAL,
                   interval: float = 0.05, what: str = "workflows") -> None:
        deadline = time.monotonic() + timeout
        while True:
            done = self.count(prefix, statuses)
            if done >= n:
                return
            if time.monotonic() > deadline:
                raise ScenarioTimeout(f"{done} of {n} {what} reached {'/'.join(statuses)} within {timeout:.0f}s")
            self.procs.check_alive()
            time.sleep(interval)

    def timers_armed(self, prefix: str) -> int:
        stmt = sa.text("SELECT count(*) FROM timers WHERE instance_id LIKE :p")
        with self.store.engine.connect() as conn:
            return int(conn.execute(stmt, {"p": prefix + "%"}).scalar() or 0)

    # -- the baseline --------------------------------------------------------------------------

    def wait_marks(self, key: str, n: int, timeout: float) -> list[tuple[str, float]]:
        deadline = time.monotonic() + timeout
        while True:
            marks = baseline.marks(self.celery, key)
            if len(marks) >= n:
                return marks
            if time.monotonic() > deadline:
                raise ScenarioTimeout(f"baseline: {len(marks)} of {n} completions within {timeout:.0f}s")
            self.procs.check_alive()
            time.sleep(0.02)


def start_stack(servers: Servers, procs: Processes, *, beat_interval: float = 1.0, orchestrators: int = 1) -> Stack:
    """A database, `ledgerflow orchestrator|worker|beat` (`orchestrators` orchestrator processes)
    and a raw Celery worker, all ready."""
    db_url = servers.database("main")
    app_id = f"bench{uuid.uuid4().hex[:6]}"
    backend = servers.broker_url.rsplit("/", 1)[0] + "/1"
    env = {"LEDGERFLOW_DATABASE_URL": db_url, "LEDGERFLOW_BROKER_URL": servers.broker_url,
           "LEDGERFLOW_APP_ID": app_id, "BENCH_BROKER_URL": servers.broker_url, "BENCH_BACKEND_URL": backend}
    for i in range(orchestrators):
        procs.ledgerflow("orchestrator" if i == 0 else f"orchestrator-{i + 1}", env, "orchestrator", APP_MODULE,
                         "--concurrency", str(ORCHESTRATOR_CONCURRENCY))
    procs.ledgerflow("worker", env, "worker", APP_MODULE, "--concurrency", "2")
    procs.ledgerflow("beat", env, "beat", "--interval", str(beat_interval))
    procs.celery_worker("celery", env, f"{baseline.QUEUE_A},{baseline.QUEUE_B}", 2)
    store = Store(db_url)
    client = wf.DaprWorkflowClient(app_id=app_id, database_url=db_url, broker_url=servers.broker_url)
    stack = Stack(servers, procs, db_url, app_id, env, store, client, baseline.make_app(servers.broker_url, backend))
    _ready(stack)
    return stack


def _ready(stack: Stack, timeout: float = 90.0) -> None:
    """A one-step workflow and a one-task chain complete: every process is up."""
    iid = f"ready-{stack.run}"
    stack.client.schedule_new_workflow("chain", input=1, instance_id=iid)
    key = f"bench:ready:{stack.run}"
    deadline = time.monotonic() + timeout
    baseline.chain_of(stack.celery, 1, key, "ready").apply_async()
    while stack.count(iid) < 1 or not baseline.marks(stack.celery, key):
        stack.procs.check_alive()
        if time.monotonic() > deadline:
            raise BenchError("the benchmark processes did not become ready:\n" + stack.procs.group.format_logs(30))
        time.sleep(0.1)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - t0
