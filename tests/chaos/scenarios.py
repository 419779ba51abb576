"""The reliability rows of ../shared/RELIABILITY.md, each written once and run at two sizes:
reduced in the default suite (tests/integration/reliability/) and full behind the `chaos`
marker (tests/chaos/). A scenario takes the harness fixtures (tests/fixtures/chaos.py) and a
size, injects its faults (asserting each happened), waits, runs the checker, and records its
figures on the row report.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from random import Random
from typing import Any

from tests.fixtures.chaos import ChaosStack, Faults, Prober, RowReport, percentile, spread
from tests.fixtures.processes import wait_for

MakeStack = Callable[..., ChaosStack]


def _latencies(stack: ChaosStack, ids: list[str]) -> list[float]:
    rows = stack.sql("SELECT instance_id, created_at, completed_at FROM instances WHERE app_id = :a "
                     "AND completed_at IS NOT NULL AND parent_instance_id IS NULL", a=stack.app_id)
    wanted = set(ids)
    return [(done - created).total_seconds() for iid, created, done in rows if iid in wanted]


def _longest_gap(times: list[float], start: float, end: float) -> float:
    """The longest stretch between `start` and `end` with no activity starting."""
    points = sorted([start, *[t for t in times if start <= t <= end], end])
    return max((b - a for a, b in zip(points, points[1:])), default=0.0)


# -- C1: kill -9 activity workers all the time ---------------------------------------------------


def c1_worker_kills(make_stack: MakeStack, faults: Faults, rng: Random, row: RowReport, *, workflows: int,
                    fan_out: int, kill_every: float, workers: int = 3, max_kills: int | None = None,
                    timeout: float = 600) -> None:
    stack = make_stack()
    stack.start_orchestrator()
    for i in range(workers):
        stack.start_worker(f"worker-{i}", 2)
    stack.start_beat()
    stack.warm_up()
    client = stack.client()
    t0 = time.time()
    ids = stack.schedule_many(client, "fan", ({"n": fan_out, "sleep": 0.02} for _ in range(workflows)))
    spawned = [workers]
    # The first kill lands as soon as activities run (a fixed delay could come after a short
    # workload had finished); later kills follow the seeded schedule.
    next_kill: list[float | None] = [None]

    def chaos() -> None:
        if max_kills is not None and faults.count("kill9") >= max_kills:
            return
        if next_kill[0] is None:
            if not stack.ledger.rows("start"):
                return
        elif time.monotonic() < next_kill[0]:
            return
        live = stack.alive("worker-")
        if live:
            victim = rng.choice(live)
            faults.kill9(victim)
            stack.start_worker(f"worker-{spawned[0]}", 2)
            spawned[0] += 1
        next_kill[0] = time.monotonic() + kill_every * rng.uniform(0.5, 1.5)

    waited = stack.wait_terminal(ids, timeout, on_tick=chaos, interval=0.25)
    t1 = time.time()
    faults.require("kill9", 1 if max_kills is None else min(max_kills, 1))
    report = stack.check(expected_output={iid: fan_out * (fan_out - 1) for iid in ids})
    starts = [r.t for r in stack.ledger.rows("start")]
    lat = _latencies(stack, ids)
    row.figure("workflows", f"{len(ids)} x fan-out {fan_out}")
    row.figure("worker kills", faults.count("kill9"))
    row.figure("activity executions", len(starts))
    row.figure("duplicate executions", stack.ledger.duplicates())
    row.figure("latency", spread(lat))
    row.figure("longest recovery gap", f"{_longest_gap(starts, t0 + 1, t1):.1f}s (default settings)")
    row.figure("wall", f"{waited:.1f}s")
    row.figure("checker", report.summary())
    assert len(starts) >= len(ids) * fan_out


# -- C2: a long activity killed part-way ----------------------------------------------------------


def c2_long_activity_killed(make_stack: MakeStack, faults: Faults, row: RowReport, *, seconds: float,
                            kill_at: float, timeout: float = 300) -> None:
    """Two kills of a `seconds` activity at `kill_at`: of the pool process running it (the
    worker's main process requeues at once) and of the whole worker (nobody acks: the
    reconcile tick sends it again to a new worker when its liveness mark goes stale)."""
    stack = make_stack()
    stack.start_all(workers=1)
    stack.warm_up()
    client = stack.client()
    results = {}
    for variant in ("pool-process", "whole-worker"):
        iid = stack.schedule(client, "long_call", seconds)
        first = wait_for(lambda: [r for r in stack.ledger.rows("start") if r.instance_id == iid], 60,
                         message="the long activity to start", logs=stack.procs)[0]
        time.sleep(max(0.0, first.t + kill_at - time.time()))
        worker = stack.alive("worker-")[0]
        if variant == "pool-process":
            assert first.pid in _children(worker.pid), "the activity does not run in a pool process of the worker"
            os_kill9(first.pid)
            faults.record("kill9-pool-process", f"pid {first.pid}")
        else:
            faults.kill9(worker)
            stack.start_worker(f"worker-{len(stack.processes)}")
        killed = time.time()
        assert not [r for r in stack.ledger.rows("done") if r.instance_id == iid], "the activity finished first"
        again = wait_for(lambda: [r for r in stack.ledger.rows("start") if r.instance_id == iid][1:], timeout,
                         message=f"the killed activity to be redelivered ({variant})", logs=stack.procs)[0]
        assert again.execution_id == first.execution_id, "the execution id changed across the redelivery"
        stack.wait_terminal([iid], timeout)
        results[variant] = again.t - killed
    stack.check(expected_output={iid: 42 for iid in stack.acknowledged[2:]})
    row.figure("activity", f"{seconds:g}s, killed at {kill_at:g}s")
    row.figure("redelivery after pool-process kill", f"{results['pool-process']:.1f}s")
    row.figure("redelivery after whole-worker kill", f"{results['whole-worker']:.1f}s (default settings)")


def _children(pid: int) -> list[int]:
    from tests.fixtures.chaos import child_pids

    return child_pids(pid)


def os_kill9(pid: int) -> None:
    import os
    import signal

    from tests.fixtures.chaos import pid_alive

    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(pid), 10, message=f"pid {pid} to die")


# -- C3: the orchestrator dies just after (and just before) its step commit ------------------------


def c3_orchestrator_crash_loop(make_stack: MakeStack, faults: Faults, rng: Random, row: RowReport, *,
                               workflows: int, crash_after: tuple[int, int], max_crashes: int,
                               timeout: float = 600) -> None:
    """The orchestrator exits (os._exit) at its Nth batch with work, alternately right after
    the commit and right before it, N drawn from `crash_after`; it is respawned each time,
    `max_crashes` times, then a clean one finishes the run."""
    stack = make_stack()
    for i in range(2):
        stack.start_worker(f"worker-{i}")
    stack.start_beat()
    kinds = ["after", "before"]
    lives: list[tuple[str, Any]] = []

    def spawn() -> None:
        n = len(lives)
        if faults.count("orchestrator-crash") >= max_crashes:
            lives.append(("clean", stack.start_orchestrator(f"orchestrator-{n}")))
            return
        kind = kinds[n % 2]
        env = {f"LEDGERFLOW_FAULT_EXIT_{kind.upper()}_COMMIT": str(rng.randint(*crash_after))}
        lives.append((kind, stack.start_orchestrator(f"orchestrator-{n}", env=env)))

    spawn()
    client = stack.client()
    ids = stack.schedule_many(client, "chain", ({"x": i, "n": 3} for i in range(workflows)))

    def chaos() -> None:
        kind, proc = lives[-1]
        if proc.is_alive():
            return
        assert kind != "clean", f"the clean orchestrator died:\n{proc.log_tail()}"
        assert proc.returncode == 137, f"orchestrator exited {proc.returncode}, not at its fault point"
        faults.record("orchestrator-crash", f"{kind} commit, pid {proc.pid}")
        spawn()

    waited = stack.wait_terminal(ids, timeout, on_tick=chaos, interval=0.2)
    faults.require("orchestrator-crash", min(max_crashes, 2))
    report = stack.check(expected_output={iid: i * 8 for i, iid in enumerate(ids)})
    steps = stack.log_lines("orchestrator", "step: ")
    cached = stack.log_lines("orchestrator", "(cached)")
    row.figure("workflows", f"{len(ids)} x chain of 3")
    row.figure("crashes", {k: sum(1 for f in faults.log if f.kind == "orchestrator-crash" and f.detail.startswith(k))
                           for k in kinds})
    row.figure("replays per workflow", f"{(steps - cached) / max(1, len(ids)):.2f} (cold steps {steps - cached} "
                                       f"of {steps})")
    row.figure("duplicate executions", stack.ledger.duplicates())
    row.figure("wall", f"{waited:.1f}s")
    row.figure("checker", report.summary())


# -- C4: a frozen orchestrator holding an instance ------------------------------------------------


def c4_frozen_orchestrator(make_stack: MakeStack, faults: Faults, row: RowReport, *, others: int, hold: float,
                           frozen_for: float, idle_timeout: float = 10, timeout: float = 300) -> None:
    """SIGSTOP the orchestrator inside a step (it holds the instance's row lock); a second
    orchestrator must take the instance over and keep the other workflows going; SIGCONT the
    first: its late writes must be refused (fenced), the history must not fork. The server
    ends the frozen session after LEDGERFLOW_DB_IDLE_IN_TRANSACTION_TIMEOUT (`idle_timeout`)."""
    stack = make_stack(env={"LEDGERFLOW_DB_IDLE_IN_TRANSACTION_TIMEOUT": str(idle_timeout)})
    a = stack.start_orchestrator("orchestrator-a")
    stack.start_worker("worker-0")
    stack.start_beat()
    stack.warm_up()
    client = stack.client()
    iid = stack.schedule(client, "held", {"hold": hold, "value": 5})
    holder = wait_for(lambda: stack.ledger.rows("hold"), 30, message="the held step to start", logs=stack.procs)[0]
    assert holder.pid == a.pid
    faults.sigstop(a)
    stopped = time.time()
    b = stack.start_orchestrator("orchestrator-b")
    ids = stack.schedule_many(client, "chain", ({"x": i, "n": 2} for i in range(others)))
    stack.wait_terminal(ids, timeout)
    others_done = time.time() - stopped
    takeover = wait_for(lambda: [r for r in stack.ledger.rows("hold") if r.pid == b.pid], timeout,
                        message="the second orchestrator to take the held instance over", logs=stack.procs)[0]
    stack.wait_terminal([iid], timeout)
    time.sleep(max(0.0, stopped + frozen_for - time.time()))
    faults.sigcont(a)
    time.sleep(hold + 3)  # the stale writer wakes up inside its step and tries to commit
    assert a.is_alive() or a.returncode is not None
    fenced = sum(1 for line in a.log_text().splitlines() if "not committed" in line and "unavailable" in line)
    assert fenced >= 1, f"the stale orchestrator's step was not refused:\n{a.log_tail()}"
    stack.check(expected_output={iid: 10, **{x: i * 4 for i, x in enumerate(ids)}})
    held_rows = [e for e in stack.sql("SELECT type FROM history_events WHERE instance_id = :i", i=iid)]
    row.figure("takeover", f"{takeover.t - stopped:.1f}s after SIGSTOP (idle-in-transaction timeout {idle_timeout:g}s)")
    row.figure("other workflows", f"{len(ids)} finished {others_done:.1f}s after SIGSTOP")
    row.figure("fenced writes (stale steps refused at commit)", fenced)
    row.figure("held instance history", f"{len(held_rows)} events")


# -- C5: beat down, then two beats -------------------------------------------------------------


def _timer_lateness(stack: ChaosStack, ids: list[str]) -> tuple[list[float], int]:
    """(lateness of each timer as seen by its workflow, TimerFired events)."""
    import json

    created: dict[str, datetime] = {}
    fired_count = 0
    for iid, type_name, payload in stack.sql(
            "SELECT instance_id, type, payload FROM history_events WHERE type IN ('TimerCreated', 'TimerFired') "
            "AND instance_id IN (SELECT instance_id FROM instances WHERE app_id = :a)", a=stack.app_id):
        if type_name == "TimerCreated":
            created[iid] = datetime.fromisoformat(json.loads(payload)["fire_at"])
        else:
            fired_count += 1
    outputs = stack.outputs(ids)
    late = []
    for iid in ids:
        seen = outputs.get(iid)
        if isinstance(seen, str) and iid in created:
            late.append((datetime.fromisoformat(seen) - created[iid]).total_seconds())
    return late, fired_count


def c5_beat_outage(make_stack: MakeStack, faults: Faults, rng: Random, row: RowReport, *, timers: int,
                   due_within: float, outage: float, tick: float = 0.5, timeout: float = 600) -> None:
    stack = make_stack()
    stack.start_orchestrator()
    stack.start_worker("worker-0")
    beat = stack.start_beat("beat-0", tick)
    stack.warm_up()
    client = stack.client()
    faults.kill9(beat)  # first, so that every timer falls due during the outage
    killed = time.time()
    t0 = time.time()
    ids = stack.schedule_many(client, "sleeper", (round(rng.uniform(due_within / 2, due_within), 3)
                                                  for _ in range(timers)))
    scheduled = time.time() - t0
    app = stack.app_id
    wait_for(lambda: stack.sql("SELECT count(*) FROM timers WHERE app_id = :a", a=app)[0][0] == len(ids), 300,
             message="every timer row to be written", logs=stack.procs)
    time.sleep(max(0.0, killed + outage - time.time()))
    left = stack.sql("SELECT count(*) FROM timers WHERE app_id = :a", a=app)[0][0]
    due_unfired = stack.sql("SELECT count(*) FROM timers WHERE app_id = :a AND fire_at < now()", a=app)[0][0]
    assert due_unfired > 0, "no timer fell due during the outage: the fault proved nothing"
    resumed = time.time()
    stack.start_beat("beat-1", tick)
    stack.start_beat("beat-2", tick)
    faults.record("two-beats", "beat-1 and beat-2 started together")
    drained = wait_for(lambda: stack.sql("SELECT count(*) FROM timers WHERE app_id = :a", a=app)[0][0] == 0 and
                       time.time(), 120, message="every timer to fire", logs=stack.procs) - resumed
    stack.wait_terminal(ids, timeout)
    report = stack.check()
    late, fired = _timer_lateness(stack, ids)
    assert fired == len(ids) + 1, f"{fired} TimerFired events for {len(ids)} timers (+1 warm-up)"
    assert min(late) >= 0, f"a timer fired {-min(late):.3f}s early"
    boot = 6.0  # a new beat process: Python + Celery start-up before its first tick
    row.figure("timers", f"{len(ids)} due within {due_within:g}s (scheduled in {scheduled:.1f}s)")
    row.figure("beat outage", f"{resumed - killed:.1f}s; {due_unfired} of {left} timers due and unfired at its end")
    row.figure("all due timers claimed", f"{drained:.1f}s after two beats were started (tick {tick:g}s)")
    row.figure("lateness", spread(late))
    row.figure("duplicate fires", fired - len(ids) - 1)
    row.figure("checker", report.summary())
    assert drained <= boot + 2 * tick + 5, f"due timers took {drained:.1f}s to fire once the beats were back"
    assert max(late) <= (resumed - killed) + due_within + boot + 30, "a timer was later than outage + a tick + drain"


# -- C6: Redis restarted again and again -------------------------------------------------------


def _reconciled(stack: ChaosStack) -> tuple[int, int]:
    """(inboxes woken, activity calls re-sent) by reconcile ticks, from the orchestrators' logs
    (one line per re-sent call; woken inboxes are counted in the tick's summary line and one
    line each after a broker data loss)."""
    import re

    woken = 0
    for name, proc in stack.processes.items():
        if name.startswith("orchestrator"):
            text = proc.log_text()
            woken += sum(int(m.group(1)) for m in re.finditer(r"tick: \d+ timer\(s\) fired, (\d+) stale inbox", text))
            woken += text.count("woke instance ")
    return woken, stack.log_lines("orchestrator", "re-sent activity ")


def _all_alive(stack: ChaosStack) -> None:
    dead = {n: p for n, p in stack.processes.items() if not p.is_alive()}
    assert not dead, "process(es) died: " + "\n".join(f"{n} (exit {p.returncode}):\n{p.log_tail(30)}"
                                                      for n, p in dead.items())


def _probe(stack: ChaosStack, client: Any, timeout: float) -> float:
    """Seconds from starting a one-activity workflow to its activity starting in a worker."""
    t0 = time.time()
    iid = stack.schedule(client, "chain", {"x": 3, "n": 1})
    found = wait_for(lambda: [r for r in stack.ledger.rows("start") if r.instance_id == iid], timeout,
                     message="a probe workflow's activity to run", logs=stack.procs)
    return found[0].t - t0


def c6_redis_restarts(make_stack: MakeStack, faults: Faults, rng: Random, row: RowReport, *, workflows: int,
                      restarts: int, interval: tuple[float, float], timeout: float = 600) -> None:
    stack = make_stack()
    stack.start_all(workers=2)
    stack.warm_up()
    client = stack.client()
    # First a restart while the orchestrator is inside a step (it holds an unacked message):
    # kombu used to turn that into an "Unrecoverable error" and the orchestrator exited.
    held = stack.schedule(client, "held", {"hold": 2, "value": 4})
    wait_for(lambda: stack.ledger.rows("hold"), 30, message="the held step to start", logs=stack.procs)
    faults.redis_restart(stack.redis)
    time.sleep(2.5)
    _all_alive(stack)
    per_batch = max(1, workflows // (restarts + 1))
    # each chain of 4 lasts about one restart interval, so every restart hits work in flight
    sleep = round(sum(interval) / 2 / 4, 2)
    ids: list[str] = []
    recoveries = []
    for r in range(restarts):
        ids += stack.schedule_many(client, "chain", ({"x": len(ids) + i, "n": 4, "sleep": sleep}
                                                     for i in range(per_batch)))
        time.sleep(rng.uniform(*interval))
        faults.redis_restart(stack.redis)
        recoveries.append(_probe(stack, client, 60))
        _all_alive(stack)
    ids += stack.schedule_many(client, "chain", ({"x": len(ids) + i, "n": 4, "sleep": 0.05}
                                                 for i in range(workflows - len(ids))))
    stack.wait_terminal(ids, timeout)
    # every worker must consume again: a final burst that needs all of them
    tail = time.time()
    burst = stack.schedule_many(client, "fan", ({"n": 4, "sleep": 0.3} for _ in range(8)))
    stack.wait_terminal(burst, 120)
    pids_after = {r.pid for r in stack.ledger.rows("start") if r.t >= tail}
    stuck = [w.name for w in stack.alive("worker-") if not set(_children(w.pid)) & pids_after]
    faults.require("redis-restart", restarts + 1)
    lost = [f.detail for f in faults.log if f.kind == "redis-restart"]
    report = stack.check(expected_output={held: 8, **{iid: (i * 16) for i, iid in enumerate(ids)}})
    row.figure("restarts (redis keys before -> after)", lost)
    woken, resent = _reconciled(stack)
    row.figure("workflows", f"{len(ids)} chains of 4 ({sleep:g}s activities) across {restarts} Redis restarts")
    row.figure("consuming again after a restart (probe activity started)", spread(recoveries))
    row.figure("messages recovered by reconcile", f"{woken} inbox wake-ups, {resent} activity re-sends")
    row.figure("stuck workers", len(stuck))
    row.figure("duplicate executions", stack.ledger.duplicates())
    row.figure("checker", report.summary())
    assert max(recoveries) < 30, f"workers took {max(recoveries):.1f}s to consume after a restart"
    assert not stuck, f"worker(s) {stuck} never consumed again after the Redis restarts"


# -- C7: Redis loses every queued activity ------------------------------------------------------


def c7_redis_loses_queue(make_stack: MakeStack, faults: Faults, row: RowReport, *, activities: int,
                         flush: bool = False, timeout: float = 600) -> None:
    """Activities queued in Redis (no worker yet), then every one lost: redis-server killed
    and started again without persistence, or (`flush`) a FLUSHALL. The broker-loss recovery
    re-sends each of them within 10 s of Redis answering again."""
    stack = make_stack()
    stack.start_orchestrator()
    stack.start_beat()
    client = stack.client()
    n = 10
    ids = stack.schedule_many(client, "fan", ({"n": n} for _ in range(activities // n)))
    queue = f"ledgerflow.{stack.app_id}.activities"
    queued = wait_for(lambda: (q := int(stack.redis.command("LLEN", queue))) >= len(ids) * n and q, 120,
                      message=f"{len(ids) * n} activities queued in Redis", logs=stack.procs)
    if flush:
        keys = int(stack.redis.command("DBSIZE"))
        stack.redis.command("FLUSHALL")
        faults.record("redis-flushall", f"keys {keys} -> {int(stack.redis.command('DBSIZE'))}")
    else:
        faults.redis_restart(stack.redis)
    assert int(stack.redis.command("LLEN", queue)) == 0, "the queue survived the fault"
    t0 = time.time()
    for i in range(2):
        stack.start_worker(f"worker-{i}", 2)
    resent_after = wait_for(lambda: _reconciled(stack)[1] >= queued and time.time() - t0, 60,
                            message=f"the {queued} lost activities to be re-sent", logs=stack.procs)
    stack.wait_terminal(ids, timeout)
    waited = time.time() - t0
    report = stack.check(expected_output={iid: n * (n - 1) for iid in ids})
    woken, resent = _reconciled(stack)
    _all_alive(stack)
    row.figure("fault", "FLUSHALL" if flush else "redis-server killed and started without persistence")
    row.figure("activities queued, then lost with Redis", queued)
    row.figure("recovered (re-sent from the outbox)", resent)
    row.figure("all lost activities re-sent", f"{resent_after:.1f}s after Redis answered again (default settings)")
    row.figure("recovery", f"all {len(ids)} workflows COMPLETED {waited:.1f}s after Redis answered again")
    row.figure("duplicate executions", stack.ledger.duplicates())
    row.figure("checker", report.summary())
    assert resent >= queued, f"only {resent} of the {queued} lost activities were re-sent"
    assert resent_after <= 10, f"the lost activities were re-sent {resent_after:.1f}s after Redis came back"


# -- C8: PostgreSQL crashes under load ------------------------------------------------------------


def c8_postgres_crash(make_stack: MakeStack, faults: Faults, row: RowReport, *, workflows: int, down_for: float,
                      timeout: float = 600) -> None:
    stack = make_stack()
    # As in production: a commit is on disk (here: in the OS) before it is acknowledged. The
    # test server's default (synchronous_commit off) lets a crash lose the last commits, which
    # only the activity lease (an hour by default) would repair.
    stack.execute([f'ALTER DATABASE "{stack.db_name}" SET synchronous_commit = on'])
    stack.start_all(workers=2)
    stack.start_api(token=uuid.uuid4().hex)
    stack.warm_up()
    client = stack.client()
    ids = stack.schedule_many(client, "chain", ({"x": i, "n": 5, "sleep": 0.1} for i in range(workflows)))
    wait_for(lambda: stack.ledger.count() >= len(ids), 120, message="the load to be under way", logs=stack.procs)
    probers = {"client": Prober.client(stack, ids[0]).start(), "api": Prober.http(stack, ids[0]).start()}
    time.sleep(0.5)
    before = {name: p.snapshot() for name, p in probers.items()}
    faults.pg_stop_immediate(stack.pg)
    down = time.time()
    time.sleep(down_for)
    during = {name: _minus(p.snapshot(), before[name]) for name, p in probers.items()}
    faults.pg_start(stack.pg)
    up = time.time()
    drain = stack.wait_terminal(ids, timeout)
    time.sleep(1.0)
    for p in probers.values():
        p.stop()
    after = {name: _minus(p.snapshot(), during[name], before[name]) for name, p in probers.items()}
    report = stack.check(expected_output={iid: i * 32 for i, iid in enumerate(ids)})
    _all_alive(stack)
    api_all = probers["api"].snapshot()
    fivexx = {k: v for k, v in api_all.items() if k.startswith("5") and k != "503"}
    row.figure("workflows", f"{len(ids)} chains of 5; PostgreSQL down {up - down:.1f}s (stop -m immediate, "
                            "synchronous_commit on)")
    row.figure("API answers while down", during["api"])
    row.figure("client calls while down", during["client"])
    row.figure("5xx other than 503", sum(fivexx.values()))
    row.figure("API answers after restart", after["api"])
    row.figure("drain after restart", f"{drain:.1f}s")
    row.figure("duplicate executions", stack.ledger.duplicates())
    row.figure("checker", report.summary())
    assert before["api"] and set(before["api"]) == {"200"}, f"the API did not answer before the fault: {before}"
    assert during["api"].get("503", 0) > 0, f"the API never answered 503 while PostgreSQL was down: {during}"
    assert set(during["api"]) <= {"200", "503"}, f"the API answered otherwise while PostgreSQL was down: {during}"
    assert not fivexx, f"the API answered 5xx other than 503: {api_all}"
    assert after["api"].get("200", 0) > 0, f"the API did not recover after the restart: {after}"
    assert set(during["client"]) <= {"ok", "StoreUnavailable"}, \
        f"the client saw unexpected errors while PostgreSQL was down: {during}"


def _minus(counts: dict[str, int], *earlier: dict[str, int]) -> dict[str, int]:
    """Counts since the snapshots ``earlier`` (label -> count), without the zeros."""
    out = dict(counts)
    for snap in earlier:
        for k, v in snap.items():
            out[k] = out.get(k, 0) - v
    return {k: v for k, v in out.items() if v}


# -- C9: every engine connection terminated, again and again ---------------------------------------


def c9_terminate_connections(make_stack: MakeStack, faults: Faults, rng: Random, row: RowReport, *, workflows: int,
                             every: float, sleep: float = 0.2, timeout: float = 600) -> None:
    stack = make_stack()
    stack.start_all(workers=2)
    stack.warm_up()
    client = stack.client()
    next_at = [time.monotonic() + every * rng.uniform(0.2, 0.5)]
    killed = [0]

    def chaos() -> None:
        if time.monotonic() >= next_at[0]:
            killed[0] += faults.pg_terminate(stack.pg, stack.db_name)
            next_at[0] = time.monotonic() + every

    expected: dict[str, int] = {}
    for i in range(workflows):
        iid = stack.schedule(client, "chain", {"x": i, "n": 3, "sleep": sleep})
        if iid is not None:
            expected[iid] = i * 8
        if i % 10 == 0:
            chaos()
    ids = list(expected)
    waited = stack.wait_terminal(ids, timeout, on_tick=chaos, interval=0.25)
    faults.require("pg-terminate", 2)
    assert killed[0] > 0, "no engine connection was terminated"
    report = stack.check(expected_output=expected)
    failed_steps = stack.log_lines("orchestrator", "StoreUnavailable") + stack.log_lines("orchestrator", "OperationalError")
    _all_alive(stack)
    row.figure("workflows", f"{len(ids)} chains of 3 ({len(stack.unconfirmed)} starts unconfirmed)")
    row.figure("terminations", f"{faults.count('pg-terminate')} rounds, {killed[0]} backends")
    row.figure("retried steps (database errors in orchestrator logs)", failed_steps)
    row.figure("duplicate executions", stack.ledger.duplicates())
    row.figure("wall", f"{waited:.1f}s")
    row.figure("checker", report.summary())


# -- N1: the network resets every Redis connection ------------------------------------------------


def n1_redis_resets(make_stack: MakeStack, faults: Faults, row: RowReport, *, workflows: int, every: float,
                    duration: float, timeout: float = 600) -> None:
    stack = make_stack(redis_proxy=True)
    stack.start_all(workers=2)
    stack.warm_up()
    client = stack.client()
    proxy = stack.redis_proxy
    assert proxy is not None
    batches = max(1, int(duration / every))
    per = max(1, workflows // batches)
    ids: list[str] = []
    t_end = time.monotonic() + duration
    while time.monotonic() < t_end or len(ids) < workflows:
        if len(ids) < workflows:
            ids += stack.schedule_many(client, "chain", ({"x": len(ids) + i, "n": 3, "sleep": 0.05}
                                                         for i in range(min(per, workflows - len(ids)))))
        time.sleep(every)
        if time.monotonic() < t_end:
            n = proxy.reset_all()
            faults.record("redis-reset", f"{n} connection(s)")
    stack.wait_terminal(ids, timeout)
    resets = [f for f in faults.log if f.kind == "redis-reset"]
    assert proxy.stats.connections_reset > 0, "the proxy reset no connection"
    report = stack.check(expected_output={iid: i * 8 for i, iid in enumerate(ids)})
    dups = stack.ledger.duplicates()
    _all_alive(stack)
    row.figure("workflows", f"{len(ids)} chains of 3")
    row.figure("resets", f"{len(resets)} rounds, {proxy.stats.connections_reset} connections reset")
    row.figure("duplicate executions", f"{dups} ({dups / max(1, len(resets)):.2f} per reset round)")
    row.figure("checker", report.summary())


# -- N2: PostgreSQL blackholed -----------------------------------------------------------------


def n2_postgres_blackhole(make_stack: MakeStack, faults: Faults, row: RowReport, *, workflows: int, hole: float,
                          timeout: float = 600) -> None:
    stack = make_stack(pg_proxy=True)
    stack.start_all(workers=2)
    stack.warm_up()
    client = stack.client(database_url=stack.engine_db_url)
    ids = stack.schedule_many(client, "chain", ({"x": i, "n": 4, "sleep": 0.1} for i in range(workflows)))
    wait_for(lambda: stack.ledger.count() >= len(ids), 120, message="the load to be under way", logs=stack.procs)
    prober = Prober.client(stack, ids[0], 0.25, through_proxy=True).start()
    proxy = stack.pg_proxy
    assert proxy is not None
    proxy.set_mode("blackhole")
    faults.record("pg-blackhole", f"{hole:g}s")
    time.sleep(hole)
    held = proxy.stats.held_chunks
    proxy.set_mode("pass")
    assert held > 0, "nothing was sent to PostgreSQL during the blackhole: the fault proved nothing"
    drain = stack.wait_terminal(ids, timeout)
    time.sleep(1)
    prober.stop()
    report = stack.check(expected_output={iid: i * 16 for i, iid in enumerate(ids)})
    longest = max(prober.durations)
    _all_alive(stack)
    row.figure("workflows", f"{len(ids)} chains of 4; PostgreSQL blackholed {hole:g}s")
    row.figure("client calls", dict(prober.results))
    row.figure("longest request", f"{longest:.1f}s")
    row.figure("drain after the blackhole", f"{drain:.1f}s")
    row.figure("duplicate executions", stack.ledger.duplicates())
    row.figure("checker", report.summary())
    assert longest < 30, f"a request hung {longest:.1f}s"


# -- L1, L2: load ---------------------------------------------------------------------------------


class _RssSampler:
    """Peak resident memory of the stack's processes (each with its children), sampled."""

    def __init__(self, stack: ChaosStack, every: float = 0.5) -> None:
        import threading

        from tests.fixtures.chaos import tree_rss_kb

        self.stack = stack
        self.peak: dict[str, int] = {}
        self._measure = tree_rss_kb
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)

    def start(self) -> _RssSampler:
        self._thread.start()
        return self

    def _run(self, every: float) -> None:
        while not self._stop.wait(every):
            for name, proc in list(self.stack.processes.items()):
                if proc.is_alive():
                    kind = name.split("-")[0]
                    self.peak[kind] = max(self.peak.get(kind, 0), self._measure(proc.pid))

    def stop(self) -> dict[str, str]:
        self._stop.set()
        self._thread.join(5)
        return {k: f"{v / 1024:.0f} MB" for k, v in sorted(self.peak.items())}


def _cpu_seconds(pid: int) -> float:
    import os

    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except FileNotFoundError:
        return 0.0


def l1_many_workflows(make_stack: MakeStack, row: RowReport, *, workflows: int, workers: int = 2,
                      timeout: float = 1800) -> None:
    stack = make_stack()
    stack.start_all(workers=workers, worker_concurrency=2)
    stack.start_api(token=uuid.uuid4().hex)
    stack.warm_up()
    rss = _RssSampler(stack).start()
    t0 = time.time()
    ids = stack.api_start_many("chain", [{"x": i, "n": 3} for i in range(workflows)])
    started = time.time() - t0
    stack.wait_terminal(ids, timeout)
    wall = time.time() - t0
    peak = rss.stop()
    report = stack.check(expected_output={iid: i * 8 for i, iid in enumerate(ids)})
    lat = _latencies(stack, ids)
    counts = dict(stack.sql("SELECT status, count(*) FROM instances WHERE instance_id NOT LIKE 'warmup-%' "
                            "GROUP BY status"))
    executions = stack.ledger.count()
    row.figure("workflows", f"{len(ids)} x 3 activities, started through the HTTP API (4 clients)")
    row.figure("start rate", f"{len(ids) / started:.0f} starts/s")
    row.figure("throughput", f"{len(ids) / wall:.1f} workflows/s, {3 * len(ids) / wall:.0f} activities/s "
                             f"({wall:.1f}s wall)")
    row.figure("latency", f"p50 {percentile(lat, 50):.2f}s p95 {percentile(lat, 95):.2f}s "
                          f"p99 {percentile(lat, 99):.2f}s")
    row.figure("database counts", f"{counts}; activity executions {executions} (with the warm-up)")
    row.figure("peak RSS", peak)
    row.figure("checker", report.summary())
    assert report.top_level == len(ids) + 2
    assert counts == {"COMPLETED": len(ids)}, f"the database holds {counts}, the client started {len(ids)}"


def l2_big_fan_out(make_stack: MakeStack, row: RowReport, *, workflows: int, fan_out: int, workers: int = 2,
                   timeout: float = 1800) -> None:
    stack = make_stack()
    stack.start_all(workers=workers, worker_concurrency=2)
    stack.warm_up()
    orch = stack.processes["orchestrator"]
    cpu0 = _cpu_seconds(orch.pid)
    steps0 = stack.log_lines("orchestrator", "step: ")
    client = stack.client()
    rss = _RssSampler(stack).start()
    t0 = time.time()
    ids = stack.schedule_many(client, "fan", ({"n": fan_out} for _ in range(workflows)))
    stack.wait_terminal(ids, timeout)
    wall = time.time() - t0
    peak = rss.stop()
    steps = stack.log_lines("orchestrator", "step: ") - steps0
    cpu = _cpu_seconds(orch.pid) - cpu0
    report = stack.check(expected_output={iid: fan_out * (fan_out - 1) for iid in ids})
    lat = _latencies(stack, ids)
    row.figure("workflows", f"{len(ids)} x fan-out {fan_out}")
    row.figure("activities/s", f"{len(ids) * fan_out / wall:.0f} ({wall:.1f}s wall)")
    row.figure("orchestrator CPU per step under fan-in", f"{1000 * cpu / max(1, steps):.2f} ms ({steps} steps)")
    row.figure("latency", spread(lat))
    row.figure("peak RSS", peak)
    row.figure("duplicate executions", stack.ledger.duplicates())
    row.figure("checker", report.summary())


# -- L3: history at and past the cap -----------------------------------------------------------


def _replay_seconds(stack: ChaosStack, iid: str, sizes: list[int]) -> dict[int, float]:
    """Time to load and replay the first n events of the stored history (a cold step)."""
    from orchestrator.engine import codec
    from orchestrator.engine.executor import Replay
    from persistence.store import Store
    from tests.fixtures import chaos_app

    store = Store(stack.db_url)
    try:
        out = {}
        for n in sizes:
            t0 = time.perf_counter()
            records = store.history(iid)[:n]
            events = [codec.decode(r.type, r.payload) for r in records]
            replay = Replay(chaos_app.wfr.registry, iid)
            assert replay.replay(events) is None
            out[len(events)] = time.perf_counter() - t0
        return out
    finally:
        store.close()


def l3_history_cap(make_stack: MakeStack, row: RowReport, *, cap: int, batch: int, replay_at: list[int],
                   timeout: float = 900) -> None:
    stack = make_stack(env={"LEDGERFLOW_MAX_HISTORY_EVENTS": str(cap)})
    stack.start_all(workers=1)
    stack.warm_up()
    client = stack.client()
    rss = _RssSampler(stack).start()
    rounds = cap // (2 * batch) + 5  # enough to pass the cap
    t0 = time.time()
    iid = stack.schedule(client, "grow", {"rounds": rounds, "batch": batch})
    below = stack.schedule(client, "grow", {"rounds": max(1, cap // (4 * batch)), "batch": batch})
    stack.wait_terminal([iid, below], timeout)
    wall = time.time() - t0
    peak = rss.stop()
    state = client.get_workflow_state(iid)
    assert state.runtime_status.name == "FAILED", state
    assert state.failure_details.error_type == "HistoryLimitExceeded", state.failure_details
    assert str(cap) in state.failure_details.message
    events = stack.sql("SELECT count(*) FROM history_events WHERE instance_id = :i", i=iid)[0][0]
    assert events <= cap, f"{events} events stored, over the cap of {cap}"
    report = stack.check(expect_status=None, expected_output={below: max(1, cap // (4 * batch))})
    assert client.get_workflow_state(below).runtime_status.name == "COMPLETED"
    timings = _replay_seconds(stack, iid, [n for n in replay_at if n <= events] + [events])
    row.figure("cap", f"{cap} events (LEDGERFLOW_MAX_HISTORY_EVENTS); grew {batch} timers per round")
    row.figure("outcome", f"FAILED {state.failure_details.error_type} with {events} events stored, after {wall:.1f}s")
    row.figure("replay time (load + decode + replay)", {n: f"{s * 1000:.0f} ms" for n, s in timings.items()})
    row.figure("peak RSS", peak)
    row.figure("checker", report.summary())


# -- L4: payloads at, just over and far over the limit ---------------------------------------------


def l4_payload_limit(make_stack: MakeStack, row: RowReport, *, limit: int, huge: int, timeout: float = 300) -> None:
    import httpx

    stack = make_stack(env={"LEDGERFLOW_MAX_PAYLOAD_BYTES": str(limit), "LEDGERFLOW_API_MAX_BODY_BYTES": str(limit)})
    stack.start_all(workers=1)
    stack.start_api(token=uuid.uuid4().hex)
    stack.warm_up()
    client = stack.client()
    rss = _RssSampler(stack, 0.1).start()
    api: dict[str, int] = {}
    api_ids = {}
    with httpx.Client(base_url=stack.api_url, headers=stack.api_headers(), timeout=120) as http:
        for name, size in {"API start, body at the limit": limit, "API start, 1 byte over": limit + 1,
                           f"API start, {huge >> 20} MB": huge}.items():
            iid = uuid.uuid4().hex
            r = http.post("/v1.0/workflows/dapr/measure/start", params={"instanceID": iid},
                          content=b'"' + b"z" * (size - 2) + b'"')
            api[name] = r.status_code
            if r.status_code == 202:
                api_ids[name] = iid
                stack.acknowledged.append(iid)
    # a JSON string of n characters is n + 2 bytes
    cases = {"output at the limit": ("big_result", limit - 2), "output 1 byte over": ("big_result", limit - 1),
             f"output of {huge >> 20} MB": ("big_result", huge),
             "input at the limit": ("big_input", limit - 2), "input 1 byte over": ("big_input", limit - 1)}
    ids = {name: stack.schedule(client, wfname, size) for name, (wfname, size) in cases.items()}
    stack.wait_terminal(list(ids.values()) + list(api_ids.values()), timeout)
    peak = rss.stop()
    out = stack.outputs(list(ids.values()) + list(api_ids.values()))
    assert api == {"API start, body at the limit": 202, "API start, 1 byte over": 413,
                   f"API start, {huge >> 20} MB": 413}, api
    assert out[api_ids["API start, body at the limit"]] == {"length": limit - 2}
    results = {name: out[iid] for name, iid in ids.items()}
    assert results["output at the limit"] == {"length": limit - 2}, results["output at the limit"]
    assert results["input at the limit"] == {"length": limit - 2}, results["input at the limit"]
    for name in ("output 1 byte over", f"output of {huge >> 20} MB", "input 1 byte over"):
        got = results[name]
        assert got.get("failed") == "PayloadTooLargeError", (name, got)
        assert str(limit) in got["message"] and "LEDGERFLOW_MAX_PAYLOAD_BYTES" in got["message"], got
    report = stack.check()
    row.figure("limit", f"{limit} bytes of JSON (LEDGERFLOW_MAX_PAYLOAD_BYTES)")
    row.figure("results", {k: ("OK" if "length" in v else v["failed"]) for k, v in results.items()})
    row.figure("peak RSS", peak)
    row.figure("HTTP API", api)
    row.figure("checker", report.summary())


# -- T1-T3: timers --------------------------------------------------------------------------------


def t1_many_timers(make_stack: MakeStack, row: RowReport, *, workflows: int, seconds: float,
                   timeout: float = 600) -> None:
    stack = make_stack()
    stack.start_all(workers=1)
    stack.warm_up()
    client = stack.client()
    t0 = time.time()
    ids = stack.schedule_many(client, "sleeper", (seconds for _ in range(workflows)))
    scheduled = time.time() - t0
    stack.wait_terminal(ids, timeout + seconds)
    report = stack.check()
    late, fired = _timer_lateness(stack, ids)
    assert fired == len(ids) + 1
    assert len(late) == len(ids)
    assert min(late) >= 0, f"a timer fired {-min(late):.3f}s early"
    row.figure("timers", f"{len(ids)} x {seconds:g}s (started in {scheduled:.1f}s)")
    row.figure("lateness", spread(late))
    row.figure("early", sum(1 for x in late if x < 0))
    row.figure("checker", report.summary())


def t2_restart_everything(make_stack: MakeStack, faults: Faults, rng: Random, row: RowReport, *, timers: int,
                          window: tuple[float, float], timeout: float = 600) -> None:
    """Timers of `window` seconds while every component is restarted at a random moment of
    the window: orchestrator, worker, beat (kill -9), Redis (kill -9, no persistence) and
    PostgreSQL (fast stop, start)."""
    stack = make_stack()
    stack.start_all(workers=1)
    stack.warm_up()
    client = stack.client()
    t0 = time.time()
    ids = stack.schedule_many(client, "timers_then_work", (round(rng.uniform(*window), 3) for _ in range(timers)))
    lo, hi = window
    plan = sorted((t0 + rng.uniform(lo * 0.2, hi * 0.8), what)
                  for what in ("orchestrator", "worker", "beat", "redis", "postgres"))
    for at, what in plan:
        time.sleep(max(0.0, at - time.time()))
        if what == "redis":
            faults.redis_restart(stack.redis)
        elif what == "postgres":
            stack.pg.restart(mode="fast")
            faults.record("postgres-restart", f"postmaster {stack.pg.pid}")
        else:
            proc = stack.alive(what)[0]
            faults.kill9(proc, f"kill9-{what}")
            if what == "orchestrator":
                stack.start_orchestrator(f"orchestrator-{len(stack.processes)}")
            elif what == "worker":
                stack.start_worker(f"worker-{len(stack.processes)}")
            else:
                stack.start_beat(f"beat-{len(stack.processes)}")
    stack.wait_terminal(ids, timeout)
    for kind in ("kill9-orchestrator", "kill9-worker", "kill9-beat", "redis-restart", "postgres-restart"):
        faults.require(kind)
    report = stack.check()
    late, fired = _timer_lateness(stack, ids)
    assert fired == len(ids) + 1, f"{fired} TimerFired events for {len(ids)} timers (+1 warm-up)"
    assert min(late) >= 0, f"a timer fired {-min(late):.3f}s early"
    row.figure("timers", f"{len(ids)} of {lo:g}-{hi:g}s, each followed by an activity")
    row.figure("restarts", ", ".join(f"{what} at +{at - t0:.1f}s" for at, what in plan))
    row.figure("lateness", spread(late))
    row.figure("duplicate fires", fired - len(ids) - 1)
    row.figure("duplicate executions", stack.ledger.duplicates())
    row.figure("checker", report.summary())


def t3_timer_while_suspended(make_stack: MakeStack, row: RowReport, *, seconds: float, suspended_for: float) -> None:
    stack = make_stack()
    stack.start_all(workers=1)
    stack.warm_up()
    client = stack.client()
    iid = stack.schedule(client, "sleeper", seconds)
    client.wait_for_workflow_start(iid, timeout_in_seconds=30)
    wait_for(lambda: stack.sql("SELECT count(*) FROM timers WHERE instance_id = :i", i=iid)[0][0] == 1, 30,
             message="the timer row", logs=stack.procs)
    client.pause_workflow(iid)
    paused = time.time()
    time.sleep(seconds + suspended_for)
    assert stack.sql("SELECT count(*) FROM timers WHERE instance_id = :i", i=iid)[0][0] == 0, "the timer never fell due"
    state = client.get_workflow_state(iid)
    assert state.runtime_status.name == "SUSPENDED", state
    resumed = datetime.now(timezone.utc).replace(tzinfo=None)
    client.resume_workflow(iid)
    final = client.wait_for_workflow_completion(iid, timeout_in_seconds=60)
    assert final.runtime_status.name == "COMPLETED", final
    seen = datetime.fromisoformat(json_loads(final.serialized_output))
    assert seen >= resumed, f"the workflow saw its timer at {seen}, before the resume at {resumed}"
    stack.check()
    row.figure("timer", f"{seconds:g}s, suspended at once for {time.time() - paused - 0:.1f}s in total")
    row.figure("workflow continued", f"{(seen - resumed).total_seconds():.3f}s after the resume")


def json_loads(text: str) -> Any:
    import json

    return json.loads(text)


# -- R1-R4: management operations under stress ---------------------------------------------------


def _rows_of(stack: ChaosStack, iid: str) -> dict[str, int]:
    return {table: stack.sql(f"SELECT count(*) FROM {table} WHERE instance_id = :i", i=iid)[0][0]
            for table in ("instances", "history_events", "inbox", "outbox", "timers", "history_signatures")}


def r1_purge(make_stack: MakeStack, row: RowReport, *, activity_seconds: float) -> None:
    from ledgerflow import errors as lf_errors

    stack = make_stack()
    stack.start_all(workers=1)
    stack.warm_up()
    client = stack.client()
    iid = stack.schedule(client, "long_call", activity_seconds)
    wait_for(lambda: [r for r in stack.ledger.rows("start") if r.instance_id == iid], 30,
             message="the activity to start", logs=stack.procs)
    try:
        client.purge_workflow(iid)
    except lf_errors.InstanceActiveError:
        refused = True
    else:
        refused = False
    assert refused, "purging a running workflow was not refused"
    assert _rows_of(stack, iid)["instances"] == 1
    deleted = client._manager.purge(iid, force=True)
    left = _rows_of(stack, iid)
    assert sum(left.values()) == 0, f"rows left after a force purge: {left}"
    wait_for(lambda: [r for r in stack.ledger.rows("done") if r.instance_id == iid], activity_seconds + 30,
             message="the purged workflow's activity to finish", logs=stack.procs)
    time.sleep(3)  # its late result is delivered now; a tick runs reconcile meanwhile
    late = _rows_of(stack, iid)
    assert sum(late.values()) == 0, f"the late result resurrected the purged workflow: {late}"
    assert client.get_workflow_state(iid) is None
    stack.acknowledged.remove(iid)
    stack.check()
    row.figure("purge of a running workflow", "refused (InstanceActiveError)")
    row.figure("force purge mid-activity", f"{deleted} rows deleted, 0 left")
    row.figure("leftover rows after the late result", sum(late.values()))


def r2_terminate_tree(make_stack: MakeStack, faults: Faults, row: RowReport, *, children: int, other_every: int,
                      timeout: float = 300) -> None:
    stack = make_stack()
    stack.start_all(workers=1)
    other = stack.other_app_id
    stack.start_orchestrator("orchestrator-other", app_id=other)
    stack.start_worker("worker-other", app_id=other)
    stack.start_beat("beat-other", app_ids=[other])
    stack.warm_up()
    client = stack.client()
    iid = stack.schedule(client, "parent_of_children", {"n": children, "seconds": 4.0, "other_app": other,
                                                       "other_every": other_every})
    kids = [f"{iid}-c{i}" for i in range(children)]
    wait_for(lambda: len(stack.statuses(kids)) == children and
             len({r.instance_id for r in stack.ledger.rows("start")} & set(kids)) >= 2, 120,
             message="the children and their activities to start", logs=stack.procs)
    client.terminate_workflow(iid)
    t0 = time.time()
    faults.kill9(stack.processes["worker-0"])
    stack.start_worker("worker-1")
    done = stack.wait_terminal([iid, *kids], timeout)
    st = stack.statuses([iid, *kids])
    wrong = {k: v for k, v in st.items() if v != "TERMINATED"}
    assert not wrong, f"not TERMINATED: {wrong}"
    in_other = sum(1 for i in range(children) if i % other_every == 0)
    report = stack.check(expect_status=None, app_ids=[other])
    row.figure("tree", f"1 parent + {children} children ({in_other} in another app); a child worker killed")
    row.figure("time to full termination", f"{done:.1f}s")
    row.figure("checker", report.summary())


def r3_concurrent_operations(make_stack: MakeStack, rng: Random, row: RowReport, *, threads: int, seconds: float) -> None:
    """`threads` clients hammer one instance ID with start, raise, suspend, resume, terminate
    and purge at random. Allowed answers: success, InstanceActiveError, InstanceNotFoundError.
    Afterwards the instance must be in a state the model allows, with a clean history."""
    import threading
    from collections import Counter

    from ledgerflow import errors as lf_errors

    stack = make_stack()
    stack.start_all(workers=1)
    stack.warm_up()
    iid = f"r3-{rng.randrange(10**6)}"
    outcomes: Counter[str] = Counter()
    unexpected: list[str] = []
    lock = threading.Lock()
    seeds = [rng.randrange(2**31) for _ in range(threads)]
    deadline = time.monotonic() + seconds

    def hammer(seed: int) -> None:
        r = Random(seed)
        client = stack.client()
        ops = {
            "start": lambda: client.schedule_new_workflow("waiter", instance_id=iid),
            "raise": lambda: client.raise_workflow_event(iid, "go", data=r.randrange(100)),
            "suspend": lambda: client.pause_workflow(iid),
            "resume": lambda: client.resume_workflow(iid),
            "terminate": lambda: client.terminate_workflow(iid),
            "purge": lambda: client.purge_workflow(iid),
        }
        while time.monotonic() < deadline:
            op = r.choice(list(ops))
            try:
                ops[op]()
                result = "ok"
            except (lf_errors.InstanceActiveError, lf_errors.InstanceNotFoundError) as exc:
                result = type(exc).__name__
            except Exception as exc:  # a 500 in HTTP terms
                result = "UNEXPECTED"
                with lock:
                    unexpected.append(f"{op}: {exc!r}")
            with lock:
                outcomes[f"{op} {result}"] += 1

    workers = [threading.Thread(target=hammer, args=(s,)) for s in seeds]
    for t in workers:
        t.start()
    for t in workers:
        t.join(seconds + 120)
    client = stack.client()
    state = client.get_workflow_state(iid)
    if state is not None and state.runtime_status.name not in TERMINAL_NAMES:
        if state.runtime_status.name == "SUSPENDED":
            client.resume_workflow(iid)
        client.terminate_workflow(iid)
        state = client.wait_for_workflow_completion(iid, timeout_in_seconds=60)
    violations = list(unexpected)
    if state is not None:
        assert state.runtime_status.name in TERMINAL_NAMES, state
        stack.acknowledged.append(iid)
    report = stack.check(expect_status=None)
    row.figure("operations", sum(outcomes.values()))
    row.figure("answers", dict(sorted(outcomes.items())))
    row.figure("final state", state.runtime_status.name if state is not None else "purged")
    row.figure("invariant violations", len(violations))
    row.figure("checker", report.summary())
    assert not violations, f"{violations[:10]}\nPostgreSQL log:\n{stack.pg.log_tail(60)}"


TERMINAL_NAMES = ("COMPLETED", "FAILED", "TERMINATED")


def r4_events_across_continue_as_new(make_stack: MakeStack, row: RowReport, *, events: int, per_generation: int,
                                     senders: int = 4, timeout: float = 300) -> None:
    import threading

    stack = make_stack()
    stack.start_all(workers=1)
    stack.warm_up()
    client = stack.client()
    iid = stack.schedule(client, "counter", {"count": 0, "per_generation": per_generation, "until": events})
    client.wait_for_workflow_start(iid, timeout_in_seconds=30)
    share = [events // senders + (1 if i < events % senders else 0) for i in range(senders)]

    def send(n: int) -> None:
        c = stack.client()
        for _ in range(n):
            c.raise_workflow_event(iid, "inc")

    t0 = time.time()
    threads = [threading.Thread(target=send, args=(n,)) for n in share]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    raised = time.time() - t0
    try:
        stack.wait_terminal([iid], timeout)
    finally:
        inst = stack.sql("SELECT status, output, input, generation FROM instances WHERE instance_id = :i", i=iid)[0]
    counted = json_loads(inst[1]) if inst[1] else json_loads(inst[2])["count"]
    row.figure("events", f"{events} raised by {senders} clients in {raised:.1f}s; continue-as-new every "
                         f"{per_generation}")
    row.figure("generations", inst[3] + 1)
    row.figure("events lost", events - counted)
    assert inst[0] == "COMPLETED" and counted == events, f"{inst[0]}: counted {counted} of {events}"
    stack.check(expected_output={iid: events})


# -- D1: code changed under a running workflow ------------------------------------------------------


def d1_code_changed(make_stack: MakeStack, faults: Faults, row: RowReport) -> None:
    stack = make_stack()
    stack.start_all(workers=1)
    stack.warm_up()
    client = stack.client()
    variants = ["reorder", "rename", "timer"]
    ids = {v: stack.schedule(client, "evolving", None) for v in variants}
    wait_for(lambda: stack.ledger.count(name="step_b") >= len(variants) and
             stack.sql("SELECT count(*) FROM inbox i JOIN instances n ON n.instance_id = i.instance_id "
                       "WHERE n.app_id = :a", a=stack.app_id)[0][0] == 0,
             60, message="every instance to wait for its event", logs=stack.procs)
    time.sleep(1)
    before = len(stack.ledger.rows("start"))
    errors = {}
    for variant, iid in ids.items():
        faults.kill9(next(p for n, p in stack.processes.items() if n.startswith("orchestrator") and p.is_alive()))
        stack.start_orchestrator(f"orchestrator-{variant}", env={"LEDGERFLOW_CHAOS_VARIANT": variant})
        client.raise_workflow_event(iid, "go")
        state = client.wait_for_workflow_completion(iid, timeout_in_seconds=60)
        assert state.runtime_status.name == "FAILED", (variant, state)
        assert state.failure_details.error_type == "NonDeterminismError", (variant, state.failure_details)
        errors[variant] = state.failure_details.message
    after = stack.ledger.rows("start")[before:]
    assert not after, f"activities ran after the code change: {[(r.name, r.instance_id) for r in after]}"
    assert "step_b" in errors["reorder"] and "step_a" in errors["reorder"], errors["reorder"]
    assert "step_b2" in errors["rename"] and "step_b" in errors["rename"], errors["rename"]
    assert "timer" in errors["timer"].lower() and "step_b" in errors["timer"], errors["timer"]
    outbox = stack.sql("SELECT count(*) FROM outbox WHERE instance_id IN :ids".replace(
        ":ids", "(" + ",".join(f"'{i}'" for i in ids.values()) + ")"))[0][0]
    assert outbox == 0
    stack.check(expect_status=None)
    row.figure("changes detected", f"{len(errors)} of {len(variants)} (reorder, rename, activity -> timer)")
    row.figure("activities dispatched after the change", len(after))
    for variant, message in errors.items():
        row.figure(f"error ({variant})", message[:160])


# -- D2: recorded histories replayed against the current code ---------------------------------------


def d2_replay_recorded(row: RowReport, *, repeat: int = 1) -> None:
    """Every history in tests/integration/reliability/recorded_histories.json, replayed step by
    step: fed the events each step received, the current code must write exactly the events
    that step recorded, and the full replay must end as the run ended."""
    import dataclasses
    import json
    from pathlib import Path

    from orchestrator.engine import codec
    from orchestrator.engine import events as ev
    from orchestrator.engine.executor import Replay
    from tests.fixtures import chaos_app

    engine_written = (ev.TaskScheduled, ev.TimerCreated, ev.SubOrchestrationInstanceCreated,
                      ev.ExecutionCompleted, ev.ContinuedAsNew)

    def comparable(e: ev.HistoryEvent) -> ev.HistoryEvent:
        if isinstance(e, ev.ExecutionCompleted) and e.failure is not None:
            return dataclasses.replace(e, failure=dataclasses.replace(e.failure, stack_trace=None))
        return e

    path = Path(__file__).resolve().parents[1] / "integration" / "reliability" / "recorded_histories.json"
    runs = json.loads(path.read_text())
    registry = chaos_app.wfr.registry
    mismatches: list[str] = []
    t0 = time.perf_counter()
    steps_replayed = 0
    for _ in range(repeat):
        for run in runs:
            history = [codec.decode(t, p) for t, p in run["events"]]
            steps: list[list[ev.HistoryEvent]] = []
            for e in history:
                if isinstance(e, ev.OrchestratorStarted) or not steps:
                    steps.append([])
                steps[-1].append(e)
            done = 0
            for step in steps:
                replay = Replay(registry, run["instance_id"])
                stall = replay.replay(history[:done])
                fed = [e for e in step if not isinstance(e, engine_written)]
                result = replay.step(fed)
                got = [comparable(e) for e in result.new_events]
                want = [comparable(e) for e in step]
                if stall is not None or got != want:
                    mismatches.append(f"{run['instance_id']} step at event {done}: {stall or ''} "
                                      f"wrote {[type(e).__name__ for e in got]}, recorded {[type(e).__name__ for e in want]}")
                    break
                done += len(step)
                steps_replayed += 1
            final = Replay(registry, run["instance_id"])
            assert final.replay(history) is None
            completion = final.completion
            if completion is None or completion.status != run["status"]:
                mismatches.append(f"{run['instance_id']}: full replay ends {completion and completion.status}, "
                                  f"recorded {run['status']}")
    elapsed = time.perf_counter() - t0
    row.figure("histories", f"{len(runs)} ({sum(len(r['events']) for r in runs)} events), x{repeat}")
    row.figure("mismatches", len(mismatches))
    row.figure("replay time", f"{elapsed:.2f}s for {steps_replayed} step replays "
                              f"({1000 * elapsed / max(1, steps_replayed):.2f} ms each)")
    assert not mismatches, mismatches[:10]


# -- D3: the state machine ---------------------------------------------------------------------


def d3_state_machine(row: RowReport, *, examples: int, steps: int, derandomize: bool = True) -> None:
    from tests.chaos import statemachine

    t0 = time.time()
    stats = statemachine.run(examples, steps, derandomize)  # raises at the first violation
    checks, histories = stats.pop("invariant checks", 0), stats.pop("histories checked", 0)
    row.figure("examples x steps", f"{examples} x {steps} ({'fixed' if derandomize else 'random'} seed)")
    row.figure("operations", dict(sorted(stats.items())))
    row.figure("invariant checks", f"{checks} ({histories} histories checked), 0 violations")
    assert checks > 0, "the invariant never ran"
    row.figure("wall", f"{time.time() - t0:.1f}s")
