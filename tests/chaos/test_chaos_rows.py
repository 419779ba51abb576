"""The reliability rows of ../shared/RELIABILITY.md at full size (the sizes the plan names).

    python -m pytest -m chaos tests/chaos                       # every row, full size
    python -m pytest -m chaos tests/chaos -k c1                 # one row
    LEDGERFLOW_CHAOS_SCALE=0.2 python -m pytest -m chaos tests/chaos   # smaller machines
    LEDGERFLOW_CHAOS_SEED=123 ...                               # replay a run's fault times
    LEDGERFLOW_CHAOS_RESULTS=rows.jsonl ...                     # figures as JSON lines too

Each row prints its figures and PASS/FAIL in the "reliability rows" section at the end of the
session. LEDGERFLOW_CHAOS_SCALE multiplies the workload counts (workflows, timers, activities,
events) - never fault counts, durations or limits - and the row's figures say what ran.
The same scenarios run reduced in the default suite (tests/integration/reliability/).
"""

from __future__ import annotations

import os

import pytest

from tests.chaos import api_rows, liveness_rows, scenarios, security_rows

pytestmark = [pytest.mark.chaos, pytest.mark.integration]

SCALE = float(os.environ.get("LEDGERFLOW_CHAOS_SCALE", "1") or 1)


def n(count: int, least: int = 1) -> int:
    return max(least, round(count * SCALE))


# -- crashes ---------------------------------------------------------------------------------------


@pytest.mark.row("C1")
def test_c1(make_stack, faults, chaos_rng, row) -> None:
    scenarios.c1_worker_kills(make_stack, faults, chaos_rng, row, workflows=n(1000), fan_out=10, kill_every=2.0,
                              workers=3, timeout=3600)


@pytest.mark.row("C2")
def test_c2(make_stack, faults, row) -> None:
    scenarios.c2_long_activity_killed(make_stack, faults, row, seconds=30, kill_at=5, timeout=300)


@pytest.mark.row("C3")
def test_c3(make_stack, faults, chaos_rng, row) -> None:
    scenarios.c3_orchestrator_crash_loop(make_stack, faults, chaos_rng, row, workflows=n(500), crash_after=(5, 30),
                                         max_crashes=20, timeout=3600)


@pytest.mark.row("C4")
def test_c4(make_stack, faults, row) -> None:
    # the default idle-in-transaction timeout (60 s): the takeover time a deployment gets
    scenarios.c4_frozen_orchestrator(make_stack, faults, row, others=n(200), hold=3, frozen_for=75, idle_timeout=60,
                                     timeout=600)


@pytest.mark.row("C5")
def test_c5(make_stack, faults, chaos_rng, row) -> None:
    scenarios.c5_beat_outage(make_stack, faults, chaos_rng, row, timers=n(1000), due_within=10, outage=60,
                             timeout=900)


@pytest.mark.row("C6")
def test_c6(make_stack, faults, chaos_rng, row) -> None:
    scenarios.c6_redis_restarts(make_stack, faults, chaos_rng, row, workflows=n(200), restarts=20, interval=(5, 15), timeout=1800)


@pytest.mark.row("C7")
def test_c7(make_stack, faults, row) -> None:
    scenarios.c7_redis_loses_queue(make_stack, faults, row, activities=n(2000, 10), timeout=1800)


@pytest.mark.row("C8")
def test_c8(make_stack, faults, row) -> None:
    scenarios.c8_postgres_crash(make_stack, faults, row, workflows=n(200), down_for=10, timeout=1800)


@pytest.mark.row("C9")
def test_c9(make_stack, faults, chaos_rng, row) -> None:
    scenarios.c9_terminate_connections(make_stack, faults, chaos_rng, row, workflows=n(1000), every=3, sleep=0.05, timeout=3600)


# -- recovery with the default settings (issue 13) ----------------------------------------------------


@pytest.mark.row("V1")
def test_v1(make_stack, faults, row) -> None:
    liveness_rows.v1_worker_killed(make_stack, faults, row, kills=6, seconds=60, timeout=300)


@pytest.mark.row("V2")
def test_v2(make_stack, faults, row) -> None:
    scenarios.c7_redis_loses_queue(make_stack, faults, row, activities=n(2000, 10), flush=True, timeout=1800)


@pytest.mark.row("V3")
def test_v3(make_stack, faults, row) -> None:
    liveness_rows.v3_orchestrator_killed(make_stack, faults, row, rounds=5, hold=3)


@pytest.mark.row("V4")
def test_v4(make_stack, row) -> None:
    liveness_rows.v4_long_activity_runs_once(make_stack, row, seconds=600)


@pytest.mark.row("V5")
def test_v5(make_stack, row) -> None:
    # 10,000 calls at 2 x 17/s: the last ones wait about 5 minutes in the queue
    liveness_rows.v5_backlog_is_not_re_sent(make_stack, row, activities=n(10_000), sleep=0.06, timeout=3600)


# -- network ---------------------------------------------------------------------------------------


@pytest.mark.row("N1")
def test_n1(make_stack, faults, row) -> None:
    scenarios.n1_redis_resets(make_stack, faults, row, workflows=n(300), every=5, duration=120, timeout=1800)


@pytest.mark.row("N2")
def test_n2(make_stack, faults, row) -> None:
    scenarios.n2_postgres_blackhole(make_stack, faults, row, workflows=n(200), hole=20, timeout=1800)


# -- load ------------------------------------------------------------------------------------------


@pytest.mark.row("L1")
def test_l1(make_stack, row) -> None:
    scenarios.l1_many_workflows(make_stack, row, workflows=n(10_000), workers=2, timeout=7200)


@pytest.mark.row("L2")
def test_l2(make_stack, row) -> None:
    scenarios.l2_big_fan_out(make_stack, row, workflows=n(1000), fan_out=100, workers=2, timeout=7200)


@pytest.mark.row("L3")
def test_l3(make_stack, row) -> None:
    scenarios.l3_history_cap(make_stack, row, cap=50_000, batch=500, replay_at=[1_000, 10_000], timeout=1800)


@pytest.mark.row("L4")
def test_l4(make_stack, row) -> None:
    scenarios.l4_payload_limit(make_stack, row, limit=4 * 1024 * 1024, huge=16 * 1024 * 1024, timeout=600)


# -- timers ----------------------------------------------------------------------------------------


@pytest.mark.row("T1")
def test_t1(make_stack, row) -> None:
    scenarios.t1_many_timers(make_stack, row, workflows=n(1000), seconds=30, timeout=900)


@pytest.mark.row("T2")
def test_t2(make_stack, faults, chaos_rng, row) -> None:
    scenarios.t2_restart_everything(make_stack, faults, chaos_rng, row, timers=n(500), window=(10, 120),
                                    timeout=1800)


@pytest.mark.row("T3")
def test_t3(make_stack, row) -> None:
    scenarios.t3_timer_while_suspended(make_stack, row, seconds=5, suspended_for=10)


# -- management ------------------------------------------------------------------------------------


@pytest.mark.row("R1")
def test_r1(make_stack, row) -> None:
    scenarios.r1_purge(make_stack, row, activity_seconds=10)


@pytest.mark.row("R2")
def test_r2(make_stack, faults, row) -> None:
    scenarios.r2_terminate_tree(make_stack, faults, row, children=50, other_every=3, timeout=600)


@pytest.mark.row("R3")
def test_r3(make_stack, chaos_rng, row) -> None:
    scenarios.r3_concurrent_operations(make_stack, chaos_rng, row, threads=50, seconds=30)


@pytest.mark.row("R4")
def test_r4(make_stack, row) -> None:
    scenarios.r4_events_across_continue_as_new(make_stack, row, events=n(500), per_generation=10, senders=8,
                                               timeout=900)


# -- determinism -----------------------------------------------------------------------------------


@pytest.mark.row("D1")
def test_d1(make_stack, faults, row) -> None:
    scenarios.d1_code_changed(make_stack, faults, row)


@pytest.mark.row("D2")
def test_d2(row) -> None:
    scenarios.d2_replay_recorded(row, repeat=10)


@pytest.mark.row("D3")
def test_d3(row) -> None:
    scenarios.d3_state_machine(row, examples=500, steps=50, derandomize=False)


# -- signed histories on the real stack -----------------------------------------------------------


@pytest.mark.row("S1")
def test_s1(make_stack, faults, row) -> None:
    security_rows.s1_completed_tampered(make_stack, faults, row, workflows=n(200))


@pytest.mark.row("S2")
def test_s2(make_stack, faults, row) -> None:
    security_rows.s2_running_tampered(make_stack, faults, row, workflows=n(200))


# -- bad input at the HTTP API ---------------------------------------------------------------------



@pytest.mark.row("B1")
def test_b1(make_stack, row) -> None:
    api_rows.b1_bad_ids(make_stack, row, versions=api_rows.VERSIONS, threads=8)


@pytest.mark.row("B2")
def test_b2(make_stack, row) -> None:
    api_rows.b2_bad_bodies(make_stack, row, versions=api_rows.VERSIONS, depth=100_000, oversize=64 << 20)


@pytest.mark.row("B3")
def test_b3(make_stack, row) -> None:
    # the default header timeout (10 s): what a deployment gets
    api_rows.b3_slowloris(make_stack, row, connections=500, duration=40, header_timeout=10)


@pytest.mark.row("B4")
def test_b4(make_stack, chaos_rng, row) -> None:
    api_rows.b4_schemathesis(make_stack, chaos_rng, row, max_examples=n(100, 5), versions=api_rows.VERSIONS,
                             timeout=3600)


@pytest.mark.row("B5")
def test_b5(make_stack, row) -> None:
    api_rows.b5_auth(make_stack, row)
