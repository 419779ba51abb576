"""Reduced-size reliability rows B1-B5: bad input at a real `ledgerflow api` process over a
real stack (scenarios in tests/chaos/api_rows.py; full size in tests/chaos/, behind the
`chaos` marker)."""

from __future__ import annotations

import pytest

from tests.chaos import api_rows

pytestmark = pytest.mark.integration


@pytest.mark.row("B1")
def test_b1_bad_ids_on_every_route(make_stack, row) -> None:
    api_rows.b1_bad_ids(make_stack, row, versions=["/v1.0"])


@pytest.mark.row("B2")
def test_b2_bad_bodies(make_stack, row) -> None:
    api_rows.b2_bad_bodies(make_stack, row, versions=["/v1.0"], oversize=8 << 20)


@pytest.mark.row("B3")
def test_b3_slowloris(make_stack, row) -> None:
    api_rows.b3_slowloris(make_stack, row, connections=100, duration=6, header_timeout=2)


@pytest.mark.row("B4")
def test_b4_schemathesis(make_stack, chaos_rng, row) -> None:
    api_rows.b4_schemathesis(make_stack, chaos_rng, row, max_examples=5, versions=["/v1.0"], timeout=300)


@pytest.mark.row("B5")
def test_b5_auth_on_every_operation(make_stack, row) -> None:
    api_rows.b5_auth(make_stack, row)
