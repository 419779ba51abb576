"""Reduced-size reliability rows T1-T3 (timers), R1-R4 (management operations under stress) and
D1 (code changed under a running workflow); full size in tests/chaos/."""

from __future__ import annotations

import pytest

from tests.chaos import scenarios

pytestmark = pytest.mark.integration


@pytest.mark.row("T1")
def test_t1_many_timers_none_early(make_stack, row) -> None:
    scenarios.t1_many_timers(make_stack, row, workflows=50, seconds=3, timeout=120)


@pytest.mark.row("T2")
def test_t2_timers_across_restarts_of_everything(make_stack, faults, chaos_rng, row) -> None:
    scenarios.t2_restart_everything(make_stack, faults, chaos_rng, row, timers=30, window=(3, 8), timeout=180)


@pytest.mark.row("T3")
def test_t3_timer_due_while_suspended(make_stack, row) -> None:
    scenarios.t3_timer_while_suspended(make_stack, row, seconds=1.5, suspended_for=1.5)


@pytest.mark.row("R1")
def test_r1_purge_running_force_purge_late_results(make_stack, row) -> None:
    scenarios.r1_purge(make_stack, row, activity_seconds=2)


@pytest.mark.row("R2")
def test_r2_terminate_tree_across_apps(make_stack, faults, row) -> None:
    scenarios.r2_terminate_tree(make_stack, faults, row, children=12, other_every=3, timeout=120)


@pytest.mark.row("R3")
def test_r3_concurrent_operations_on_one_id(make_stack, chaos_rng, row) -> None:
    scenarios.r3_concurrent_operations(make_stack, chaos_rng, row, threads=20, seconds=4)


@pytest.mark.row("R4")
def test_r4_events_across_continue_as_new(make_stack, row) -> None:
    scenarios.r4_events_across_continue_as_new(make_stack, row, events=40, per_generation=4, timeout=120)


@pytest.mark.row("D1")
def test_d1_code_changed_under_a_running_workflow(make_stack, faults, row) -> None:
    scenarios.d1_code_changed(make_stack, faults, row)
