"""Reduced-size reliability rows C1-C9 (tests/chaos/scenarios.py; full size: tests/chaos/)."""

from __future__ import annotations

import pytest

from tests.chaos import scenarios

pytestmark = pytest.mark.integration


@pytest.mark.row("C1")
def test_c1_worker_kill9_every_few_seconds(make_stack, faults, chaos_rng, row) -> None:
    scenarios.c1_worker_kills(make_stack, faults, chaos_rng, row, workflows=30, fan_out=10, kill_every=2.0,
                              workers=2, max_kills=3, timeout=180)


@pytest.mark.row("D2")
def test_d2_recorded_histories_replay(row) -> None:
    scenarios.d2_replay_recorded(row)


@pytest.mark.row("D3")
def test_d3_state_machine(row) -> None:
    scenarios.d3_state_machine(row, examples=60, steps=40)
