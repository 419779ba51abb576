"""`python -m bench [--quick] [--json FILE] [--only P1,P3]`: run the scenarios, print the tables.

The benchmark reports and never fails: a scenario that cannot be measured is a row with
a note. The exit code is non-zero only when the environment itself could not be set up.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

from bench import embedded, env, report, scenarios, steps
from bench.report import Result

REAL: dict[str, tuple[str, str, str, Callable[..., Any]]] = {
    "P1": ("workflows x sequential no-op activities", "s", "<= 2.0", scenarios.p1),
    "P2": ("fan-out / fan-in of no-op activities", "activities/s", ">= 0.5", scenarios.p2),
    "P3": ("one long sequential workflow", "ms/step", "<= 1.5", scenarios.p3),
    "P4": ("timers due at the same second", "s late (max)", "<= 10, none early", scenarios.p4),
    "P5": ("idle workflows, then one event each", "MB per 1,000 cached", "bounded; all complete", scenarios.p5),
    "P6": ("start throughput", "starts/s", "report", scenarios.p6),
    "P7": ("Dapr's published scenarios", "workflows/s", "> 1", scenarios.p7),
    "P8": ("concurrent workflows beside DBOS Transact", "workflows/s", ">= 1.0", scenarios.p8),
}


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: finishes in under 2 minutes")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--only", metavar="IDS", help="comma-separated scenario ids, e.g. P1,P3")
    parser.add_argument("--no-embedded", action="store_true", help="skip the run on the embedded default")
    parser.add_argument("--embedded-only", action="store_true", help="only the run on the embedded default")
    parser.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)  # tiny sizes, for the test
    parser.add_argument("--markdown", metavar="FILE", help="also write the tables as Markdown (for bench/README.md)")
    parser.add_argument("--orchestrators", type=int, default=1, metavar="N",
                        help="orchestrator processes for the app (default 1)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs (path printed)")
    args = parser.parse_args(argv)
    args.ids = _ids(args.only)
    return args


def _ids(only: str | None) -> list[str]:
    if not only:
        return list(REAL)
    ids = [part.strip().upper() for part in only.split(",") if part.strip()]
    unknown = [i for i in ids if i not in REAL]
    if unknown:
        raise SystemExit(f"unknown scenario id(s) {', '.join(unknown)}; choose from {', '.join(REAL)}")
    return ids


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    logging.getLogger("ledgerflow").setLevel(logging.WARNING)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    started = time.monotonic()
    machine = env.machine()
    work = env.work_dir()
    print(f"ledgerflow bench ({mode}), {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, "
          f"{machine['cpus']} CPUs, load {machine['loadavg_start']}", flush=True)
    results: list[Result] = []
    server_versions: dict[str, str] = {}
    if not args.embedded_only and not args.smoke:
        try:
            results, server_versions = run_real(args.ids, scenarios.QUICK if args.quick else scenarios.FULL, work,
                                                orchestrators=args.orchestrators)
        except env.BenchError as exc:
            print(f"bench: could not set up PostgreSQL + Redis: {exc}", file=sys.stderr)
            return 2
        print(report.table(results, "PostgreSQL + Redis, separate processes"), flush=True)
    emb: list[Result] = []
    if not args.no_embedded:
        sizes = embedded.SMOKE if args.smoke else embedded.QUICK if args.quick else embedded.FULL
        emb = embedded.run(args.ids, sizes, work)
        print("\n" + report.table(emb, "Embedded default (SQLite + in-memory broker, one process)"), flush=True)
    machine["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    elapsed = time.monotonic() - started
    print(f"\ntotal {elapsed:.0f}s; load average at the end {machine['loadavg_end']}")
    if args.json:
        doc = report.document(results, emb, machine=machine, versions={**env.versions(), **server_versions},
                              extra={"mode": mode, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                     "seconds": round(elapsed, 1)})
        report.write_json(args.json, doc)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            if results:
                fh.write("PostgreSQL + Redis, separate processes:\n\n" + report.markdown(results) + "\n\n")
                fh.write("\n".join(f"- {r.id}: {n}" for r in results for n in r.notes) + "\n\n")
            if emb:
                fh.write("Embedded default:\n\n" + report.markdown(emb) + "\n\n")
                fh.write("\n".join(f"- {r.id}: {n}" for r in emb for n in r.notes) + "\n")
    if args.keep_logs:
        print(f"logs: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def run_real(ids: list[str], sizes: scenarios.Sizes, work: Any, *,
             orchestrators: int = 1) -> tuple[list[Result], dict[str, str]]:
    from bench.stack import start_stack

    servers = env.Servers.start(work)
    procs = env.Processes(work / "logs")
    results: list[Result] = []
    try:
        stack = start_stack(servers, procs, orchestrators=orchestrators)
        versions = servers.server_versions()
        for sid in ids:
            title, unit, target, fn = REAL[sid]
            t0 = time.monotonic()
            print(f"  {sid}: {title} ...", end="", flush=True)
            meter = steps.StepMeter.start(stack.store, stack.orchestrator_pids())
            try:
                out = fn(stack, sizes)
            except env.BenchError as exc:
                out = report.failed(sid, title, unit, target, exc)
            except Exception as exc:  # report, never fail
                out = report.failed(sid, title, unit, target, exc)
            batch = out if isinstance(out, list) else [out]
            cost = meter.note()
            for r in batch:
                r.seconds = time.monotonic() - t0
                r.notes.append(cost)
            print(f" {time.monotonic() - t0:.0f}s", flush=True)
            results.extend(batch)
        stack.client.close()
        stack.store.close()
    finally:
        _quiet_async_results()
        procs.stop_all()
        servers.stop()
    return results, versions


def _quiet_async_results() -> None:
    """The baseline chord's AsyncResults unsubscribe from Redis when collected; after the
    servers stop that prints a traceback at exit. Nothing waits for them any more."""
    from celery import result

    result.AsyncResult.__del__ = lambda self: None  # type: ignore[method-assign]
