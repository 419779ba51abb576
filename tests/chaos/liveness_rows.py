"""The recovery targets of issue 13, with the default settings (no LEDGERFLOW_* knob set):

| row | fault | target |
|---|---|---|
| V1 | a whole worker SIGKILLed mid-activity | the call runs again within 15 s |
| V2 | Redis FLUSHALL with activities queued | all re-sent within 10 s (C7 with `flush=True`) |
| V3 | an orchestrator SIGKILLed mid-step (a start, a result) | its instances step again within 10 s |
| V4 | an activity running long on a healthy worker | it runs exactly once |
| V5 | activities queued behind a slow pool | none is re-sent |

Each row asserts its fault happened (or, for V4 and V5, that the condition that could have
fooled a lease held: the call outlived the liveness window, the queue stayed long).
"""

from __future__ import annotations

import time
from typing import Any

from tests.chaos.scenarios import MakeStack, _all_alive, _reconciled
from tests.fixtures.chaos import ChaosStack, Faults, RowReport, child_pids, spread
from tests.fixtures.processes import wait_for

#: The issue's targets.
WORKER_TARGET = 15.0
ORCHESTRATOR_TARGET = 10.0


def _starts(stack: ChaosStack, iid: str) -> list[Any]:
    return [r for r in stack.ledger.rows("start") if r.instance_id == iid]


def _worker_of(stack: ChaosStack, pid: int) -> Any:
    [worker] = [w for w in stack.alive("worker-") if pid in (w.pid, *child_pids(w.pid))]
    return worker


# -- V1 ------------------------------------------------------------------------------------------


def v1_worker_killed(make_stack: MakeStack, faults: Faults, row: RowReport, *, kills: int, seconds: float,
                     timeout: float = 300) -> None:
    """`kills` times: start a `seconds` activity, SIGKILL the whole process group of the worker
    running it part-way (a replacement worker is started, as a supervisor would), and time
    until the same call (same execution id) starts again."""
    stack = make_stack()
    stack.start_all(workers=1)
    stack.warm_up()
    client = stack.client()
    gaps: list[float] = []
    for _ in range(kills):
        iid = stack.schedule(client, "long_call", seconds)
        first = wait_for(lambda: _starts(stack, iid), 60, message="the long activity to start", logs=stack.procs)[0]
        victim = _worker_of(stack, first.pid)
        faults.kill9(victim, "kill9-worker")
        killed = time.time()
        stack.start_worker(f"worker-{len(stack.processes)}")
        assert not [r for r in stack.ledger.rows("done") if r.instance_id == iid], "the activity finished first"
        again = wait_for(lambda: _starts(stack, iid)[1:], timeout, message="the killed call to run again",
                         logs=stack.procs)[0]
        assert again.execution_id == first.execution_id, "the execution id changed across the re-send"
        gaps.append(again.t - killed)
        stack.wait_terminal([iid], timeout)
    faults.require("kill9-worker", kills)
    report = stack.check(expected_output={iid: 42 for iid in stack.acknowledged[2:]})
    row.figure("activity", f"{seconds:g}s, whole worker SIGKILLed while it ran, {kills} time(s)")
    row.figure("runs again after the kill", spread(gaps))
    row.figure("checker", report.summary())
    assert max(gaps) <= WORKER_TARGET, f"a killed call ran again only after {max(gaps):.1f}s"


# -- V3 ------------------------------------------------------------------------------------------


def v3_orchestrator_killed(make_stack: MakeStack, faults: Faults, row: RowReport, *, rounds: int, hold: float,
                           timeout: float = 120) -> None:
    """Two orchestrators. `rounds` times each: a step is held `hold` seconds inside the
    orchestrator's transaction - the first step of a start (`held`), or the step taking an
    activity's result (`held_result`: the result exists only in the message it holds) - and
    the orchestrator holding it is SIGKILLed; the other one must step the instance again."""
    stack = make_stack()
    for i in range(2):
        stack.start_orchestrator(f"orchestrator-{i}")
    stack.start_worker("worker-0")
    stack.start_beat()
    stack.warm_up()
    client = stack.client()
    gaps: dict[str, list[float]] = {"held": [], "held_result": []}
    spawned = 2
    for _ in range(rounds):
        for workflow in gaps:
            iid = stack.schedule(client, workflow, {"hold": hold, "value": 4})
            holds = wait_for(lambda: [r for r in stack.ledger.rows("hold") if r.instance_id == iid], 60,
                             message=f"the {workflow} step to start", logs=stack.procs)
            [victim] = [p for n, p in stack.processes.items() if n.startswith("orchestrator") and p.pid == holds[0].pid
                        and p.is_alive()]
            faults.kill9(victim, "kill9-orchestrator")
            killed = time.time()
            again = wait_for(lambda: [r for r in stack.ledger.rows("hold") if r.instance_id == iid][1:], timeout,
                             message=f"the {workflow} instance to step again", logs=stack.procs)[0]
            gaps[workflow].append(again.t - killed)
            stack.start_orchestrator(f"orchestrator-{spawned}")  # back to two for the next round
            spawned += 1
            stack.wait_terminal([iid], timeout)
    faults.require("kill9-orchestrator", 2 * rounds)
    report = stack.check(expected_output={iid: 8 for iid in stack.acknowledged[2:]})
    _all_alive_but_killed(stack)
    row.figure("step held", f"{hold:g}s inside the transaction; the holder SIGKILLed, {rounds} round(s) per kind")
    row.figure("first step (start) stepped again after the kill", spread(gaps["held"]))
    row.figure("result step (deliver) stepped again after the kill", spread(gaps["held_result"]))
    row.figure("calls re-sent by liveness", _reconciled(stack)[1])
    row.figure("duplicate executions", stack.ledger.duplicates())
    row.figure("checker", report.summary())
    worst = max(max(g) for g in gaps.values())
    assert worst <= ORCHESTRATOR_TARGET, f"an instance stepped again only {worst:.1f}s after its orchestrator died"


def _all_alive_but_killed(stack: ChaosStack) -> None:
    dead = [n for n, p in stack.processes.items() if not p.is_alive() and p.returncode != -9]
    assert not dead, f"process(es) died on their own: {dead}\n{stack.logs()}"


# -- V4 ------------------------------------------------------------------------------------------


def v4_long_activity_runs_once(make_stack: MakeStack, row: RowReport, *, seconds: float, timeout: float = 60) -> None:
    """One activity of `seconds` on a healthy worker runs exactly once: it is never re-sent,
    though it outlives the liveness window many times over."""
    from brokers import liveness

    stack = make_stack()
    stack.start_all(workers=2)
    stack.warm_up()
    client = stack.client()
    iid = stack.schedule(client, "long_call", seconds)
    wait_for(lambda: _starts(stack, iid), 60, message="the long activity to start", logs=stack.procs)
    key = liveness.live_key(stack.app_id)
    held = wait_for(lambda: int(stack.redis.command("ZCARD", key)), 10, message="the call's liveness mark",
                    logs=stack.procs)
    stack.wait_terminal([iid], seconds + timeout)
    report = stack.check(expected_output={iid: 42 for iid in stack.acknowledged[2:]})
    [done] = [r for r in stack.ledger.rows("done") if r.instance_id == iid]
    [start] = _starts(stack, iid)
    ran = done.t - start.t
    resent = _reconciled(stack)[1]
    _all_alive(stack)
    row.figure("activity", f"{ran:.0f}s on a healthy worker ({ran / liveness.STALE_SECONDS:.0f}x the liveness window "
                           f"of {liveness.STALE_SECONDS:g}s; held calls seen: {held})")
    row.figure("executions", len(_starts(stack, iid)))
    row.figure("re-sent", resent)
    row.figure("checker", report.summary())
    assert ran >= seconds and ran > 3 * liveness.STALE_SECONDS, "the activity did not outlive the liveness window"
    assert resent == 0 and stack.ledger.duplicates() == 0


# -- V5 ------------------------------------------------------------------------------------------


def v5_backlog_is_not_re_sent(make_stack: MakeStack, row: RowReport, *, activities: int, sleep: float,
                              timeout: float = 900) -> None:
    """`activities` calls queued at once behind one slow worker (2 processes, `sleep` s each):
    the last ones wait for minutes, and none is re-sent for waiting. The worker starts once
    every call is in the queue, so the backlog is whole whatever the machine's load."""
    stack = make_stack()
    stack.start_orchestrator()
    stack.start_beat()
    client = stack.client()
    n = 10
    t0 = time.time()
    ids = stack.schedule_many(client, "fan", ({"n": n, "sleep": sleep} for _ in range(activities // n)))
    queue = f"ledgerflow.{stack.app_id}.activities"
    longest = wait_for(lambda: (q := int(stack.redis.command("LLEN", queue))) >= len(ids) * n and q, 120,
                       message="every call to be queued", logs=stack.procs)
    stack.start_worker("worker-0", 2)
    stack.wait_terminal(ids, timeout)
    wall = time.time() - t0
    report = stack.check(expected_output={iid: n * (n - 1) for iid in ids})
    last_start = max(r.t for r in stack.ledger.rows("start") if r.instance_id in set(ids))
    resent = _reconciled(stack)[1]
    _all_alive(stack)
    row.figure("backlog", f"{len(ids) * n} activities ({sleep:g}s each) behind 1 worker of 2 processes; "
                          f"longest queue {longest}; the last started {last_start - t0:.0f}s after it was sent")
    row.figure("re-sent", resent)
    row.figure("duplicate executions", stack.ledger.duplicates())
    row.figure("wall", f"{wall:.0f}s")
    row.figure("checker", report.summary())
    assert resent == 0, f"{resent} queued call(s) were re-sent for waiting"
    assert stack.ledger.duplicates() == 0
