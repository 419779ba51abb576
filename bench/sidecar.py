"""The step cost of a sidecar app against a native Ledgerflow app, in one run:

    python -m bench.sidecar               # about 3 minutes on a 2-core machine
    python -m bench.sidecar --quick       # smaller

Both apps run the same workflow, `chain` of n sequential no-op activities, on one Redis and
one PostgreSQL (fresh database each). Native: `ledgerflow orchestrator bench.app`, `ledgerflow
worker bench.app` and `ledgerflow beat`. Sidecar: `ledgerflow sidecar` and a Dapr app on
Dapr's own Python SDK (`bench/sidecar_app.py`) that replays the workflow and runs the activity.
For each, two figures:

- **step latency**: one workflow of `--steps` steps alone; the median time between its
  consecutive `OrchestratorStarted` events (step, commit, activity out and back, next step);
- **throughput**: `--workflows` workflows of `--steps` steps started at once; steps/s from
  the first start to the last completion, and the CPU milliseconds per step of Ledgerflow's
  processes (orchestrator + worker + beat, or the sidecar) and of the app (sidecar only).

The ratio is sidecar / native (latency) and native / sidecar (throughput): above 1, the
sidecar costs more.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

import ledgerflow as wf
from bench.env import APP_MODULE, BenchError, Processes, Servers
from bench.steps import cpu_seconds
from persistence.store import Store
from tests.fixtures.redis import free_port

APP = Path(__file__).with_name("sidecar_app.py")


@dataclass
class Figures:
    step_ms: float
    steps_per_s: float
    ledgerflow_cpu_ms: float
    app_cpu_ms: float | None


class App:
    """One app (native or sidecar) on its own database, with a client to start its work."""

    def __init__(self, servers: Servers, procs: Processes, kind: str) -> None:
        self.kind = kind
        self.db_url = servers.database(kind)
        self.app_id = f"{kind}{uuid.uuid4().hex[:6]}"
        env = {"LEDGERFLOW_DATABASE_URL": self.db_url, "LEDGERFLOW_BROKER_URL": servers.broker_url,
               "LEDGERFLOW_APP_ID": self.app_id}
        self.ledgerflow: dict[str, int] = {}
        self.app_pid: int | None = None
        if kind == "native":
            for name, args in (("orchestrator", ("orchestrator", APP_MODULE, "--concurrency", "2")),
                               ("worker", ("worker", APP_MODULE, "--concurrency", "2")),
                               ("beat", ("beat", "--interval", "1.0"))):
                self.ledgerflow[name] = procs.ledgerflow(f"{kind}-{name}", env, *args).pid
        else:
            http, grpc = free_port(), free_port()
            self.ledgerflow["sidecar"] = procs.ledgerflow(f"{kind}-sidecar", env, "sidecar", "--app-id", self.app_id,
                                                          "--port", str(http), "--grpc-port", str(grpc)).pid
            _wait(lambda: httpx.get(f"http://127.0.0.1:{http}/v1.0/healthz", timeout=2).status_code == 204, procs,
                  "the sidecar to answer")
            app_env = {"DAPR_GRPC_PORT": str(grpc), "DAPR_HTTP_PORT": str(http)}
            self.app_pid = procs.start(f"{kind}-app", [sys.executable, str(APP)], app_env).pid
        self.store = Store(self.db_url)
        self.client = wf.DaprWorkflowClient(app_id=self.app_id, database_url=self.db_url,
                                            broker_url=servers.broker_url)
        self.procs = procs
        self.run(1, 1, "ready", timeout=120)

    def run(self, workflows: int, steps: int, tag: str, timeout: float = 600) -> list[str]:
        ids = [f"{tag}-{i}-{uuid.uuid4().hex[:6]}" for i in range(workflows)]
        for iid in ids:
            self.client.schedule_new_workflow("chain", input=steps, instance_id=iid)
        _wait(lambda: self._completed(ids) == len(ids), self.procs, f"{len(ids)} {self.kind} workflows", timeout)
        return ids

    def _completed(self, ids: list[str]) -> int:
        with self.store.engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM instances WHERE status = 'COMPLETED' AND "
                                            "instance_id IN :ids").bindparams(sa.bindparam("ids", expanding=True)),
                                    {"ids": ids}).scalar())

    def step_times(self, ids: list[str]) -> list[list[Any]]:
        with self.store.engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT instance_id, timestamp FROM history_events WHERE type = 'OrchestratorStarted' AND "
                "instance_id IN :ids ORDER BY instance_id, sequence").bindparams(
                sa.bindparam("ids", expanding=True)), {"ids": ids}).all()
        by_id: dict[str, list[Any]] = {}
        for iid, stamp in rows:
            by_id.setdefault(iid, []).append(stamp)
        return list(by_id.values())

    def cpu(self) -> tuple[float, float | None]:
        ours = sum(cpu_seconds(p) for p in self.ledgerflow.values())
        return ours, (cpu_seconds(self.app_pid) if self.app_pid is not None else None)

    def measure(self, workflows: int, steps: int) -> Figures:
        (alone,) = self.step_times(self.run(1, steps, "alone"))
        gaps = [(b - a).total_seconds() for a, b in zip(alone, alone[1:])]
        cpu_before, app_before = self.cpu()
        began = time.perf_counter()
        self.run(workflows, steps, "load")
        took = time.perf_counter() - began
        cpu_after, app_after = self.cpu()
        total = workflows * (steps + 1)  # n activity results plus the start
        app_ms = None if app_after is None or app_before is None else (app_after - app_before) * 1000 / total
        return Figures(statistics.median(gaps) * 1000, total / took, (cpu_after - cpu_before) * 1000 / total, app_ms)


def _wait(check: Any, procs: Processes, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        procs.check_alive()
        if time.monotonic() > deadline:
            raise BenchError(f"timed out waiting for {what}\n" + procs.group.format_logs(30))
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sidecar", description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=50, help="activities per workflow")
    parser.add_argument("--workflows", type=int, default=40, help="workflows started at once")
    parser.add_argument("--quick", action="store_true", help="--steps 20 --workflows 10")
    args = parser.parse_args(argv)
    steps, workflows = (20, 10) if args.quick else (args.steps, args.workflows)
    with tempfile.TemporaryDirectory(prefix="bench-sidecar-") as tmp:
        servers = Servers.start(Path(tmp))
        procs = Processes(Path(tmp) / "logs")
        try:
            native = App(servers, procs, "native").measure(workflows, steps)
            procs.stop_all()
            sidecar = App(servers, procs, "sidecar").measure(workflows, steps)
        finally:
            procs.stop_all()
            servers.stop()
    print(f"chain of {steps} no-op activities; {workflows} at once for throughput")
    print("| | native | sidecar | ratio |")
    print("|---|---|---|---|")
    print(f"| step latency, median ms | {native.step_ms:.1f} | {sidecar.step_ms:.1f} | "
          f"{sidecar.step_ms / native.step_ms:.2f} |")
    print(f"| throughput, steps/s | {native.steps_per_s:.0f} | {sidecar.steps_per_s:.0f} | "
          f"{native.steps_per_s / sidecar.steps_per_s:.2f} |")
    print(f"| Ledgerflow CPU ms per step | {native.ledgerflow_cpu_ms:.2f} | {sidecar.ledgerflow_cpu_ms:.2f} | "
          f"{sidecar.ledgerflow_cpu_ms / native.ledgerflow_cpu_ms:.2f} |")
    print(f"| app (SDK) CPU ms per step | - | {sidecar.app_cpu_ms:.2f} | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
