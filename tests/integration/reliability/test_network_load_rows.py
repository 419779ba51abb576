"""Reduced-size reliability rows N1-N2 (network faults through our TCP proxy) and L1-L4 (load,
history and payload limits); full size in tests/chaos/."""

from __future__ import annotations

import pytest

from tests.chaos import scenarios

pytestmark = pytest.mark.integration


@pytest.mark.row("N1")
def test_n1_redis_connections_reset(make_stack, faults, row) -> None:
    scenarios.n1_redis_resets(make_stack, faults, row, workflows=30, every=1.5, duration=6, timeout=180)


@pytest.mark.row("N2")
def test_n2_postgres_blackholed(make_stack, faults, row) -> None:
    scenarios.n2_postgres_blackhole(make_stack, faults, row, workflows=20, hole=5, timeout=180)


@pytest.mark.row("L1")
def test_l1_many_workflows(make_stack, row) -> None:
    scenarios.l1_many_workflows(make_stack, row, workflows=60, timeout=300)


@pytest.mark.row("L2")
def test_l2_big_fan_out(make_stack, row) -> None:
    scenarios.l2_big_fan_out(make_stack, row, workflows=4, fan_out=100, timeout=300)


@pytest.mark.row("L3")
def test_l3_history_cap(make_stack, row) -> None:
    scenarios.l3_history_cap(make_stack, row, cap=2000, batch=100, replay_at=[1000], timeout=180)


@pytest.mark.row("L4")
def test_l4_payload_limit(make_stack, row) -> None:
    scenarios.l4_payload_limit(make_stack, row, limit=64 * 1024, huge=16 * 1024 * 1024, timeout=120)
