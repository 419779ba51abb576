"""Persistence keeps a copy of the engine's status names (it cannot import the engine):
the two sets must be equal, name for name."""

from __future__ import annotations

from orchestrator.engine import status
from persistence import records

_NAMES = ("PENDING", "RUNNING", "SUSPENDED", "STALLED", "COMPLETED", "FAILED", "TERMINATED",
          "STATUSES", "TERMINAL_STATUSES")


def test_persistence_status_names_equal_the_engines() -> None:
    for name in _NAMES:
        assert getattr(records, name) == getattr(status, name), name


def test_every_status_constant_is_in_its_set() -> None:
    stored = {v for k, v in vars(status).items() if k.isupper() and isinstance(v, str)} - {status.CONTINUED_AS_NEW}
    assert stored == status.STATUSES
    assert status.TERMINAL_STATUSES < status.STATUSES
