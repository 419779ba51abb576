"""Reduced-size rows V1-V5: the recovery targets of issue 13 with the default settings
(scenarios in tests/chaos/liveness_rows.py and, for V2, tests/chaos/scenarios.py C7)."""

from __future__ import annotations

import pytest

from tests.chaos import liveness_rows, scenarios

pytestmark = pytest.mark.integration


@pytest.mark.row("V1")
def test_v1_a_killed_worker_s_call_runs_again_within_15_s(make_stack, faults, row) -> None:
    liveness_rows.v1_worker_killed(make_stack, faults, row, kills=2, seconds=10, timeout=60)


@pytest.mark.row("V2")
def test_v2_activities_flushed_from_redis_are_re_sent_within_10_s(make_stack, faults, row) -> None:
    scenarios.c7_redis_loses_queue(make_stack, faults, row, activities=200, flush=True, timeout=180)


@pytest.mark.row("V3")
def test_v3_a_killed_orchestrator_s_instances_step_again_within_10_s(make_stack, faults, row) -> None:
    liveness_rows.v3_orchestrator_killed(make_stack, faults, row, rounds=1, hold=3)


@pytest.mark.row("V4")
def test_v4_a_long_activity_on_a_healthy_worker_runs_once(make_stack, row) -> None:
    liveness_rows.v4_long_activity_runs_once(make_stack, row, seconds=16)


@pytest.mark.row("V5")
def test_v5_a_backlog_behind_a_slow_pool_is_never_re_sent(make_stack, row) -> None:
    liveness_rows.v5_backlog_is_not_re_sent(make_stack, row, activities=300, sleep=0.1, timeout=300)
