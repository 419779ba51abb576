"""The rules one app's orchestrators run its workflows by (from its Dapr `Configuration` and
Ledgerflow's settings), grouped so the service takes them as one value."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

#: Most events in one run's history (LEDGERFLOW_MAX_HISTORY_EVENTS).
DEFAULT_MAX_HISTORY_EVENTS = 50_000


@dataclass(frozen=True)
class AppRules:
    #: activity name -> the pool (queue suffix) its calls go to
    pools: dict[str, str] = field(default_factory=dict)
    #: workflow name -> most instances of it running at once, across all processes
    workflow_limits: dict[str, int] = field(default_factory=dict)
    #: "anyTerminal" | "completed" | "failed" | "terminated" -> age after which to purge
    retention: dict[str, timedelta] = field(default_factory=dict)
    #: a step that would take a run's history to this many events fails the run instead
    #: (HistoryLimitExceeded); 0: no limit
    max_history_events: int = DEFAULT_MAX_HISTORY_EVENTS
    #: a sent activity call no live worker holds and with no result is sent again after this
    #: (doubling with each re-send of the same call, up to 16x)
    activity_lease: timedelta = timedelta(hours=1)
