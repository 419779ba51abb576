"""Workflow time: naive UTC, as Dapr's `current_utc_datetime` is.

The one home of the conversion for every layer that may import the engine (the
orchestrator, the workers, the SDK).  Persistence cannot import the engine and keeps
aware UTC in `persistence.records.as_utc`.  The engine itself never reads the wall clock;
callers around it pass `workers.activity.wall_clock()` or the store's `utcnow()`.
"""

from __future__ import annotations

from datetime import datetime, timezone


def naive_utc(value: datetime) -> datetime:
    """`value` as naive UTC; a naive datetime is taken to be UTC already."""
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value
