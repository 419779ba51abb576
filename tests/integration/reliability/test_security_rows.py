"""Reduced-size reliability rows S1-S2 on the real stack (signing processes over PostgreSQL and
Redis); full size in tests/chaos/. S1-S6 and A1-A2 at the level of every stored field run
in-process in tests/integration/security/ (also reported as rows)."""

from __future__ import annotations

import pytest

from tests.chaos import security_rows

pytestmark = pytest.mark.integration


@pytest.mark.row("S1")
def test_s1_completed_signed_workflows_tampered(make_stack, faults, row) -> None:
    security_rows.s1_completed_tampered(make_stack, faults, row, workflows=10)


@pytest.mark.row("S2")
def test_s2_running_signed_workflows_tampered(make_stack, faults, row) -> None:
    security_rows.s2_running_tampered(make_stack, faults, row, workflows=10)
