"""Reduced-size reliability rows C1-C9 and D2-D3 (scenarios in tests/chaos/scenarios.py; the
full-size runs are tests/chaos/, behind the `chaos` marker). Each asserts that its fault
happened, runs the after-run checker, and prints its figures in the session summary."""

from __future__ import annotations

import pytest

from tests.chaos import scenarios

pytestmark = pytest.mark.integration


@pytest.mark.row("C1")
def test_c1_worker_kill9_every_few_seconds(make_stack, faults, chaos_rng, row) -> None:
    scenarios.c1_worker_kills(make_stack, faults, chaos_rng, row, workflows=30, fan_out=10, kill_every=2.0,
                              workers=2, max_kills=3, timeout=180)


@pytest.mark.row("C2")
def test_c2_long_activity_killed_part_way(make_stack, faults, row) -> None:
    scenarios.c2_long_activity_killed(make_stack, faults, row, seconds=2, kill_at=0.7, timeout=60)


@pytest.mark.row("C3")
def test_c3_orchestrator_dies_around_its_commit(make_stack, faults, chaos_rng, row) -> None:
    scenarios.c3_orchestrator_crash_loop(make_stack, faults, chaos_rng, row, workflows=16, crash_after=(2, 5),
                                         max_crashes=2, timeout=180)


@pytest.mark.row("C4")
def test_c4_frozen_orchestrator_is_fenced(make_stack, faults, row) -> None:
    scenarios.c4_frozen_orchestrator(make_stack, faults, row, others=10, hold=1.5, frozen_for=7, idle_timeout=3,
                                      timeout=120)


@pytest.mark.row("C5")
def test_c5_beat_outage_then_two_beats(make_stack, faults, chaos_rng, row) -> None:
    scenarios.c5_beat_outage(make_stack, faults, chaos_rng, row, timers=40, due_within=3, outage=4, timeout=120)


@pytest.mark.row("C6")
def test_c6_redis_restarts(make_stack, faults, chaos_rng, row) -> None:
    scenarios.c6_redis_restarts(make_stack, faults, chaos_rng, row, workflows=24, restarts=1, interval=(2, 3), timeout=180)


@pytest.mark.row("C7")
def test_c7_redis_loses_every_queued_activity(make_stack, faults, row) -> None:
    scenarios.c7_redis_loses_queue(make_stack, faults, row, activities=200, timeout=180)


@pytest.mark.row("C8")
def test_c8_postgres_crash_under_load(make_stack, faults, row) -> None:
    scenarios.c8_postgres_crash(make_stack, faults, row, workflows=20, down_for=3, timeout=180)


@pytest.mark.row("C9")
def test_c9_engine_connections_terminated(make_stack, faults, chaos_rng, row) -> None:
    scenarios.c9_terminate_connections(make_stack, faults, chaos_rng, row, workflows=30, every=1.5, timeout=180)


@pytest.mark.row("D2")
def test_d2_recorded_histories_replay(row) -> None:
    scenarios.d2_replay_recorded(row)


@pytest.mark.row("D3")
def test_d3_state_machine(row) -> None:
    scenarios.d3_state_machine(row, examples=40, steps=30)
