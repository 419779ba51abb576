"""P1-P7 on PostgreSQL + Redis with real processes, each beside its baseline from the same run.

Every function takes the Stack and the sizes and returns a `report.Result`; times come from
the database (`created_at`/`completed_at`, history timestamps) or from the completion marks
of the baseline, never from polling intervals.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from bench import baseline
from bench.env import REPO, rss_mb, sampling
from bench.report import Result, median, ms, percentile
from bench.stack import ORCHESTRATOR_CONCURRENCY, Stack, timed
from orchestrator.cache import ReplayCache
from orchestrator.engine import codec
from orchestrator.engine import events as ev

#: Dapr v1.17's published figures (app 2 CPU + sidecar 1 CPU + PostgreSQL).
DAPR_CHAIN = (28.0, 1.04)  # workflows/s, p50 s: 5 chained activities, 30 clients
DAPR_FANOUT = (97.9, 1.06)  # fan-out of 5, 110 clients


@dataclass(frozen=True)
class Sizes:
    p1_workflows: int
    p1_steps: int
    p2_fanout: int
    p3_steps: int
    p4_timers: int
    p5_idle: int
    p6_starts: int
    p7_seconds: float
    p7a_clients: int = 30
    p7b_clients: int = 110
    p8_workflows: int = 200
    rounds: int = 2  # P1 and P2 alternate Ledgerflow and baseline this many times


FULL = Sizes(p1_workflows=200, p1_steps=10, p2_fanout=1000, p3_steps=10_000, p4_timers=10_000, p5_idle=10_000,
             p6_starts=10_000, p7_seconds=60)
QUICK = Sizes(p1_workflows=30, p1_steps=10, p2_fanout=300, p3_steps=400, p4_timers=300, p5_idle=300,
              p6_starts=500, p7_seconds=5, p8_workflows=50)


def _timeout(n: float, per_item: float, floor: float = 60) -> float:
    return max(floor, n * per_item)


# -- P1 --------------------------------------------------------------------------------------

def p1(stack: Stack, s: Sizes) -> Result:
    n, steps = s.p1_workflows, s.p1_steps
    rounds = [_p1_round(stack, n, steps, k) for k in range(s.rounds)]
    lf_time = median([x["lf"] for x in rounds])
    base_time = median([x["base"] for x in rounds])
    ratio = median([x["lf"] / x["base"] for x in rounds])
    r = Result("P1", f"{n} workflows x {steps} sequential no-op activities", lf_time, base_time, ratio,
               "s", "<= 2.0", met=ratio <= 2.0)
    r.p50_ms, r.p99_ms = ms([v for x in rounds for v in x["lf_lat"]])
    r.baseline_p50_ms, r.baseline_p99_ms = ms([v for x in rounds for v in x["base_lat"]])
    r.rss_mb = _merge_peaks([x["rss"] for x in rounds])
    r.notes.append(f"baseline: a Celery chain of {2 * steps} no-op tasks per workflow over two queues; "
                   f"orchestrator --concurrency {ORCHESTRATOR_CONCURRENCY} (threads) + worker --concurrency 2 (prefork) vs one Celery "
                   "worker -c 2 (prefork)")
    _rounds_note(r, [x["lf"] / x["base"] for x in rounds])
    _failed_note(r, [row for x in rounds for row in x["rows"]])
    return r


def _p1_round(stack: Stack, n: int, steps: int, k: int) -> dict[str, Any]:
    prefix = f"p1r{k}-{stack.run}"
    with sampling(stack.ledgerflow_pids()) as lf_rss:
        t0 = time.time()
        for iid in stack.ids(f"p1r{k}", n):
            stack.client.schedule_new_workflow("chain", input=steps, instance_id=iid)
        stack.wait_count(prefix, n, _timeout(n * steps, 0.1))
    rows = stack.instances(prefix)
    key = f"bench:p1:{stack.run}:{k}"
    sent: dict[str, float] = {}
    with sampling(stack.baseline_pids()) as base_rss:
        t1 = time.time()
        for i in range(n):
            sent[str(i)] = time.time()
            baseline.chain_of(stack.celery, 2 * steps, key, str(i)).apply_async()
        marks = stack.wait_marks(key, n, _timeout(n * steps, 0.1))
    return {
        "lf": max(r.completed_at.timestamp() for r in rows) - t0,
        "lf_lat": [(r.completed_at - r.created_at).total_seconds() for r in rows],
        "base": max(t for _, t in marks) - t1,
        "base_lat": [t - sent[token] for token, t in marks],
        "rss": {**lf_rss.peak, **{f"baseline {k}": v for k, v in base_rss.peak.items()}},
        "rows": rows,
    }


def _merge_peaks(peaks: list[dict[str, float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for peak in peaks:
        for name, mb in peak.items():
            out[name] = max(out.get(name, 0.0), mb)
    return out


def _rounds_note(r: Result, ratios: list[float]) -> None:
    if len(ratios) > 1:
        r.notes.append(f"{len(ratios)} rounds, Ledgerflow then baseline in each (the machine's load changes over "
                       "a run); figures are medians, ratio = median of the per-round ratios: "
                       + ", ".join(f"{x:.2f}" for x in ratios))


def _failed_note(r: Result, rows: list[Any]) -> None:
    bad = [x for x in rows if x.status != "COMPLETED"]
    if bad:
        r.met = False
        r.notes.append(f"{len(bad)} workflow(s) ended {bad[0].status}")


# -- P2 --------------------------------------------------------------------------------------

def p2(stack: Stack, s: Sizes) -> Result:
    n = s.p2_fanout
    rounds = [_p2_round(stack, n, k) for k in range(s.rounds)]
    lf_rate = median([x["lf"] for x in rounds])
    base_rate = median([x["base"] for x in rounds])
    ratio = median([x["lf"] / x["base"] for x in rounds])
    r = Result("P2", f"1 workflow fanning out {n} no-op activities, then fan-in", lf_rate, base_rate, ratio,
               "activities/s", ">= 0.5", met=ratio >= 0.5)
    r.rss_mb = _merge_peaks([x["rss"] for x in rounds])
    r.notes.append(f"baseline: a Celery chord of {n} no-op tasks (Redis result backend)")
    r.notes += [x["note"] for x in rounds if x["note"]][:1]
    _rounds_note(r, [x["lf"] / x["base"] for x in rounds])
    _failed_note(r, [x["row"] for x in rounds])
    return r


def _p2_round(stack: Stack, n: int, k: int) -> dict[str, Any]:
    iid = f"p2r{k}-{stack.run}"
    with sampling(stack.ledgerflow_pids()) as lf_rss:
        t0 = time.time()
        stack.client.schedule_new_workflow("fanout", input=n, instance_id=iid)
        stack.wait_count(iid, 1, _timeout(n, 0.1))
    row = stack.instances(iid)[0]
    history = [codec.decode(e.type, e.payload) for e in stack.store.history(iid)]
    steps = [e.timestamp for e in history if isinstance(e, ev.OrchestratorStarted)]
    ran = sorted(e.timestamp for e in history if isinstance(e, ev.TaskCompleted))
    note = ""
    if len(steps) >= 2 and ran:
        note = (f"Ledgerflow: {len(steps)} steps for {n} results (fan-in batched); first activity ran "
                f"{(ran[0] - steps[0]).total_seconds():.2f}s after the start, the last "
                f"{(ran[-1] - steps[0]).total_seconds():.2f}s, the workflow completed "
                f"{(row.completed_at.replace(tzinfo=None) - steps[0]).total_seconds():.2f}s after the start")
    key = f"bench:p2:{stack.run}:{k}"
    with sampling(stack.baseline_pids()) as base_rss:
        t1 = time.time()
        pending = baseline.chord_of(stack.celery, n, key, "chord").apply_async()
        marks = stack.wait_marks(key, 1, _timeout(n, 0.1))
        del pending
    return {"lf": n / (row.completed_at.timestamp() - t0), "base": n / (marks[0][1] - t1), "row": row,
            "note": note, "rss": {**lf_rss.peak, **{f"baseline {k}": v for k, v in base_rss.peak.items()}}}


# -- P3 --------------------------------------------------------------------------------------

def p3(stack: Stack, s: Sizes) -> Result:
    n = s.p3_steps
    iid = f"p3-{stack.run}"
    with sampling(stack.ledgerflow_pids()) as lf_rss:
        stack.client.schedule_new_workflow("chain", input=n, instance_id=iid)
        stack.wait_count(iid, 1, _timeout(n, 0.2))
    history = [codec.decode(e.type, e.payload) for e in stack.store.history(iid)]
    starts = [e.timestamp for e in history if isinstance(e, ev.OrchestratorStarted)]
    done = {e.task_id: e.timestamp for e in history if isinstance(e, ev.TaskCompleted)}
    scheduled = [(e.event_id, e.timestamp) for e in history if isinstance(e, ev.TaskScheduled)]
    cycles = [(b - a).total_seconds() for a, b in zip(starts, starts[1:])]
    out_hop = [(done[t] - at).total_seconds() for t, at in scheduled if t in done]
    back_hop = [(b - done[t]).total_seconds() for (t, _), b in zip(scheduled, starts[1:]) if t in done]
    window = 10
    early = median(cycles[1:1 + window])
    late = median(cycles[-window:])
    ratio = late / early if early and late else None
    r = Result("P3", f"one workflow of {n} sequential steps", _ms(late), _ms(early), ratio, "ms/step",
               "<= 1.5", met=ratio is not None and ratio <= 1.5)
    r.p50_ms, r.p99_ms = ms(cycles)
    r.rss_mb = lf_rss.peak
    r.notes.append(f"step time = time between consecutive steps of the workflow (OrchestratorStarted timestamps; "
                   f"one no-op activity per step); ledgerflow = median of the last {window} steps (events "
                   f"~{len(history) - 3 * window}-{len(history)}), baseline = median of steps 2-{window + 1}")
    r.notes.append(f"per step, median: step+publish+hop to worker {_fmt_ms(median(out_hop))} ms, "
                   f"result hop back+deliver {_fmt_ms(median(back_hop))} ms; early window of those "
                   f"{_fmt_ms(median(out_hop[1:1 + window]))}/{_fmt_ms(median(back_hop[1:1 + window]))} ms, "
                   f"late {_fmt_ms(median(out_hop[-window:]))}/{_fmt_ms(median(back_hop[-window:]))} ms")
    r.notes.append(f"whole run: {len(cycles)} steps, {len(history)} events, mean {_fmt_ms(_mean(cycles))} ms/step")
    wide = min(100, len(cycles) // 4)
    if wide >= 20:
        first, last = median(cycles[1:1 + wide]), median(cycles[-wide:])
        r.notes.append(f"over {wide}-step windows (less noise on a shared machine): first {_fmt_ms(first)} ms, "
                       f"last {_fmt_ms(last)} ms, ratio {last / first:.2f}" if first and last else "")
    _failed_note(r, stack.instances(iid))
    return r


def _ms(value: float | None) -> float | None:
    return None if value is None else value * 1000


def _fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.2f}"


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


# -- P4 --------------------------------------------------------------------------------------

def p4(stack: Stack, s: Sizes) -> Result:
    n = s.p4_timers
    rate = _arm_rate(stack)
    lead = 3 + 1.2 * n / rate
    due = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=lead)
    prefix = f"p4-{stack.run}"
    ids = stack.ids("p4", n)
    with sampling(stack.ledgerflow_pids()) as lf_rss:
        for iid in ids:
            stack.client.schedule_new_workflow("timer_at", input=due.isoformat(), instance_id=iid)
        armed_before_due = 0
        while datetime.now(timezone.utc) < due - timedelta(seconds=0.2):
            armed_before_due = stack.timers_armed(prefix) + stack.count(prefix, ("COMPLETED",))
            if armed_before_due >= n:
                break
            time.sleep(0.1)
        moved = _wait_timers_moved(stack, prefix, due, _timeout(n, 0.05))
        stack.wait_count(prefix, n, (due - datetime.now(timezone.utc)).total_seconds() + _timeout(n, 0.05))
    rows = stack.instances(prefix)
    fired = [datetime.fromisoformat(_json_str(r.output)).replace(tzinfo=timezone.utc) for r in rows
             if r.status == "COMPLETED"]
    late = [(f - due).total_seconds() for f in fired]
    early = sum(1 for x in late if x < 0)
    worst = max(late) if late else None
    done_late = max((r.completed_at - due).total_seconds() for r in rows if r.completed_at)
    met = worst is not None and worst <= 10 and early == 0 and len(fired) == n
    r = Result("P4", f"{n} workflows waiting on a timer due at the same second", worst, None, worst, "s late (max)",
               "<= 10, none early", met=met)
    r.p50_ms, r.p99_ms = (percentile(late, 50) or 0) * 1000, (percentile(late, 99) or 0) * 1000
    r.rss_mb = lf_rss.peak
    r.notes.append(f"fired = workflow time of the step that resumed after the timer; {early} early; "
                   f"last completion {done_late:.2f}s after due; p50/p99 are lateness")
    if moved is not None:
        r.notes.append(f"every timer row was fired into its inbox (TimerFired) by {moved:.1f}s after due; "
                       "the rest of the lateness is the orchestrator stepping the woken workflows")
    r.notes.append(f"{min(armed_before_due, n)} of {n} timers armed (or done) before the due time "
                   f"(lead {lead:.0f}s from a measured {rate:.0f} starts+arms/s); beat ticks every 1.0 s")
    _failed_note(r, rows)
    return r


def _wait_timers_moved(stack: Stack, prefix: str, due: datetime, timeout: float) -> float | None:
    """Seconds after `due` when no timer row of `prefix` was left (all fired into inboxes)."""
    deadline = time.monotonic() + max(0.0, (due - datetime.now(timezone.utc)).total_seconds()) + timeout
    while time.monotonic() < deadline:
        now = datetime.now(timezone.utc)
        if now >= due and stack.timers_armed(prefix) == 0:
            return (now - due).total_seconds()
        time.sleep(0.1)
    return None


def _arm_rate(stack: Stack, n: int = 100) -> float:
    """Workflows started and stepped to their timer per second (to choose P4's lead time)."""
    far = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
    prefix = f"p4cal-{stack.run}"
    ids = stack.ids("p4cal", n)
    t0 = time.perf_counter()
    for iid in ids:
        stack.client.schedule_new_workflow("timer_at", input=far, instance_id=iid)
    while stack.timers_armed(prefix) < n and time.perf_counter() - t0 < 60:
        time.sleep(0.05)
    rate = n / (time.perf_counter() - t0)
    for iid in ids:
        stack.client.terminate_workflow(iid)
    stack.wait_count(prefix, n, 60)
    return rate


def _json_str(text: str | None) -> str:
    import json

    return json.loads(text) if text else ""


# -- P5 --------------------------------------------------------------------------------------

def p5(stack: Stack, s: Sizes) -> Result:
    n = s.p5_idle
    capacity = ReplayCache().capacity
    pid = stack.procs.named["orchestrator"].pid
    prefix = f"p5-{stack.run}"
    ids = stack.ids("p5", n)
    checkpoints: list[tuple[int, float]] = [(0, rss_mb(pid)[0])]
    with sampling(stack.ledgerflow_pids()) as lf_rss:
        for i, iid in enumerate(ids, 1):
            stack.client.schedule_new_workflow("wait_event", instance_id=iid)
            if i in (min(n, capacity), n):
                stack.wait_count(prefix, i, _timeout(i, 0.05), statuses=("RUNNING",))
                checkpoints.append((i, rss_mb(pid)[0]))
        t0 = time.time()
        for iid in ids:
            stack.client.raise_workflow_event(iid, "go", data=1)
        stack.wait_count(prefix, n, _timeout(n, 0.05))
    rows = stack.instances(prefix)
    elapsed = max(r.completed_at.timestamp() for r in rows) - t0
    cached = min(n, capacity)
    rss_cap = dict(checkpoints)[cached]
    per_1000 = (rss_cap - checkpoints[0][1]) / (cached / 1000)
    after_cap = checkpoints[-1][1] - rss_cap
    bounded = n <= capacity or after_cap <= max(0.25 * (rss_cap - checkpoints[0][1]), 5)
    met = bounded and all(r.status == "COMPLETED" for r in rows)
    r = Result("P5", f"{n} idle workflows waiting for an event, then one event each", per_1000, None, per_1000,
               "MB per 1,000 cached", "bounded; all complete", met=met)
    r.rss_mb = lf_rss.peak
    r.notes.append("orchestrator RSS at 0 / " + " / ".join(f"{k} idle: {v:.0f} MB" for k, v in checkpoints)
                   + f" (cache capacity {capacity}: {cached} live generators kept)")
    if n > capacity:
        r.notes.append(f"RSS grew {after_cap:.1f} MB from {capacity} to {n} idle workflows "
                       f"({'bounded' if bounded else 'NOT bounded'})")
    r.notes.append(f"{n} events raised and completed in {elapsed:.1f}s ({n / elapsed:.0f} workflows/s; "
                   f"{n - cached} of them replayed from history after eviction)")
    _failed_note(r, rows)
    return r


# -- P6 --------------------------------------------------------------------------------------

def p6(stack: Stack, s: Sizes) -> list[Result]:
    import ledgerflow as wf

    n = s.p6_starts
    db_url = stack.servers.database("p6")
    app_id = f"p6{stack.run}"
    client = wf.DaprWorkflowClient(app_id=app_id, database_url=db_url, broker_url=stack.broker_url)
    try:
        for i in range(20):  # warm: connections, migrations check, producer pool
            client.schedule_new_workflow("chain", input=1, instance_id=f"p6w-{stack.run}-{i}")
        _, lf_secs = timed(lambda: [client.schedule_new_workflow("chain", input=1, instance_id=iid)
                                    for iid in stack.ids("p6", n)])
    finally:
        client.close()
    noop = stack.celery.tasks["bench.noop"]
    for i in range(20):
        noop.apply_async(args=[i], queue=baseline.QUEUE_IDLE)
    _, base_secs = timed(lambda: [noop.apply_async(args=[i], queue=baseline.QUEUE_IDLE) for i in range(n)])
    http_rate, http_note = _http_starts(stack, db_url, app_id, n)
    _drop_queues(stack, [baseline.QUEUE_IDLE, f"ledgerflow.{app_id}.workflows"])
    _drop_rows(stack, db_url, app_id)
    lf_rate, base_rate = n / lf_secs, n / base_secs
    client_r = Result("P6", f"start {n} workflows through the client (one thread)", lf_rate, base_rate,
                      lf_rate / base_rate, "starts/s", "report", met=None)
    client_r.notes.append("baseline: apply_async of a registered no-op task, one thread, same broker; "
                          "nothing consumes either queue while starting")
    http_r = Result("P6-http", f"start {n} workflows through HTTP (one keep-alive connection)", http_rate,
                    base_rate, http_rate / base_rate if http_rate else None, "starts/s", "report")
    http_r.notes.append(http_note)
    return [client_r, http_r]


def _http_starts(stack: Stack, db_url: str, app_id: str, n: int) -> tuple[float | None, str]:
    """Starts/s through `ledgerflow api` (a separate process), or None and why not."""
    import httpx

    from tests.fixtures.redis import free_port

    port = free_port()
    env = {**stack.env, "LEDGERFLOW_DATABASE_URL": db_url, "LEDGERFLOW_APP_ID": app_id}
    env.pop("LEDGERFLOW_API_TOKEN", None)
    proc = stack.procs.ledgerflow("api", env, "api", "--host", "127.0.0.1", "--port", str(port))
    base = f"http://127.0.0.1:{port}/v1.0"
    try:
        with httpx.Client(timeout=30) as http:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if http.get(f"{base}/healthz").status_code < 500:
                        break
                except httpx.TransportError:
                    pass
                if not proc.is_alive() or time.monotonic() > deadline:
                    return None, "not measured: `ledgerflow api` did not come up: " + proc.log_tail(3)
                time.sleep(0.2)

            def start(iid: str) -> None:
                reply = http.post(f"{base}/workflows/dapr/chain/start", params={"instanceID": iid}, content=b"1")
                if reply.status_code != 202:
                    raise RuntimeError(f"HTTP start answered {reply.status_code}: {reply.text[:200]}")

            for i in range(20):
                start(f"p6hw-{stack.run}-{i}")
            _, secs = timed(lambda: [start(iid) for iid in stack.ids("p6h", n)])
    finally:
        stack.procs.stop("api")
    return n / secs, ("`ledgerflow api` in its own process, started by POST /v1.0/workflows/dapr/chain/start "
                      "from one httpx client (keep-alive); baseline as P6")


def _drop_queues(stack: Stack, names: list[str]) -> None:
    import redis

    client = redis.Redis.from_url(stack.broker_url)
    client.delete(*names)


def _drop_rows(stack: Stack, db_url: str, app_id: str) -> None:
    if db_url == stack.db_url or stack.servers.postgres is None:
        import sqlalchemy as sa

        from persistence.store import Store

        with Store(db_url) as store, store.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM instances WHERE app_id = :a"), {"a": app_id})


# -- P7 --------------------------------------------------------------------------------------

def p7(stack: Stack, s: Sizes) -> list[Result]:
    a = _dapr_like(stack, "P7", "chain", 5, s.p7a_clients, s.p7_seconds, DAPR_CHAIN,
                   f"Dapr (a): 5 chained no-op activities, {s.p7a_clients} clients looping for {s.p7_seconds:.0f}s")
    b = _dapr_like(stack, "P7-fanout", "fanout", 5, s.p7b_clients, s.p7_seconds, DAPR_FANOUT,
                   f"Dapr (b): fan-out of 5, {s.p7b_clients} clients looping for {s.p7_seconds:.0f}s")
    return [a, b]


def _dapr_like(stack: Stack, rid: str, workflow: str, size: int, clients: int, seconds: float,
               dapr: tuple[float, float], title: str) -> Result:
    import ledgerflow as wf

    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    client = wf.DaprWorkflowClient(app_id=stack.app_id, database_url=stack.db_url, broker_url=stack.broker_url)
    stop_at = time.monotonic() + seconds

    def loop() -> None:
        while time.monotonic() < stop_at:
            t0 = time.monotonic()
            try:
                iid = client.schedule_new_workflow(workflow, input=size)
                state = client.wait_for_workflow_completion(iid, timeout_in_seconds=120)
                ok = state is not None and state.runtime_status.name == "COMPLETED"
            except Exception as exc:
                ok, state = False, None
                with lock:
                    errors.append(repr(exc))
            end = time.monotonic()
            if ok and end <= stop_at:
                with lock:
                    latencies.append(end - t0)
            elif not ok and state is not None:
                with lock:
                    errors.append(f"{iid} {state.runtime_status.name}")

    threads = [threading.Thread(target=loop, name=f"bench-client-{i}", daemon=True) for i in range(clients)]
    with sampling(stack.ledgerflow_pids()) as lf_rss:
        for t in threads:
            t.start()
        for t in threads:
            t.join(seconds + 180)
    client.close()
    rate = len(latencies) / seconds
    p50 = percentile(latencies, 50)
    ratio = rate / dapr[0]
    met = ratio > 1 and p50 is not None and p50 <= dapr[1] / 5
    r = Result(rid, title, rate, dapr[0], ratio, "workflows/s", f"> 1 and p50 <= {dapr[1] / 5:.3g} s", met=met)
    r.p50_ms, r.p99_ms = ms(latencies)
    r.baseline_p50_ms = dapr[1] * 1000
    r.rss_mb = lf_rss.peak
    r.notes.append(f"baseline = Dapr v1.17's published figure, not measured here; {len(latencies)} workflows "
                   f"completed in the window; latency = start -> completion as "
                   f"DaprWorkflowClient.wait_for_workflow_completion sees it")
    if errors:
        r.notes.append(f"{len(errors)} error(s), first: {errors[0]}")
    return r


# -- P8 --------------------------------------------------------------------------------------

def p8(stack: Stack, s: Sizes) -> Result:
    """`s.p8_workflows` concurrent workflows of 10 no-op steps: Ledgerflow's processes beside
    DBOS Transact (bench/dbos_peer.py, its own process) on the same PostgreSQL."""
    n, steps = s.p8_workflows, 10
    title = f"{n} concurrent workflows of {steps} no-op steps"
    prefix = f"p8-{stack.run}"
    t0 = time.time()
    for iid in stack.ids("p8", n):
        stack.client.schedule_new_workflow("chain", input=steps, instance_id=iid)
    stack.wait_count(prefix, n, _timeout(n * steps, 0.1))
    rows = stack.instances(prefix)
    lf_seconds = max(r.completed_at.timestamp() for r in rows) - t0
    lf_rate = n / lf_seconds
    r = Result("P8", title, lf_rate, None, None, "workflows/s", ">= 1.0", met=None)
    r.p50_ms, r.p99_ms = ms([(x.completed_at - x.created_at).total_seconds() for x in rows])
    _failed_note(r, rows)
    try:
        peer = _run_dbos(stack, n, steps)
    except Exception as exc:  # report, never fail
        r.notes.append(f"DBOS not measured: {exc}")
        return r
    r.baseline = n / peer["seconds"]
    r.ratio = lf_rate / r.baseline
    r.met = r.ratio >= 1.0
    r.notes.append(f"baseline: DBOS Transact {peer['version']} in its own process (DBOS.start_workflow of a workflow "
                   f"calling {steps} @DBOS.step functions, {n} at once), system tables in a fresh database on the "
                   f"same PostgreSQL; DBOS CPU {peer['cpu_seconds'] * 1000 / (n * steps):.2f} ms/step")
    return r


def _run_dbos(stack: Stack, n: int, steps: int) -> dict[str, Any]:
    import json
    import subprocess
    import sys
    from importlib import metadata

    try:
        version = metadata.version("dbos")
    except metadata.PackageNotFoundError:
        raise RuntimeError("the dbos package is not installed (pip install -e '.[bench]')") from None
    url = stack.servers.database("dbos").replace("postgresql+psycopg://", "postgresql://")
    out = subprocess.run([sys.executable, "-m", "bench.dbos_peer", url, str(n), str(steps)], capture_output=True,
                         text=True, timeout=_timeout(n * steps, 0.1, floor=120), cwd=str(REPO))
    if out.returncode != 0:
        raise RuntimeError(f"bench.dbos_peer exited {out.returncode}: {out.stderr.strip()[-500:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["version"] = version
    return result
