"""Status names: the one set for every layer that may import the engine.

An instance is stored in one of `STATUSES`; a run ends with one of `TERMINAL_STATUSES` or
`CONTINUED_AS_NEW` (never stored: the instance starts its next generation as RUNNING).
Persistence cannot import the engine and keeps an equal copy in `persistence.records`
(tests/unit/persistence/test_status_names.py proves them equal).
"""

from __future__ import annotations

PENDING = "PENDING"
RUNNING = "RUNNING"
SUSPENDED = "SUSPENDED"
STALLED = "STALLED"
COMPLETED = "COMPLETED"
FAILED = "FAILED"
TERMINATED = "TERMINATED"
CONTINUED_AS_NEW = "CONTINUED_AS_NEW"

STATUSES: frozenset[str] = frozenset({PENDING, RUNNING, SUSPENDED, STALLED, COMPLETED, FAILED, TERMINATED})
TERMINAL_STATUSES: frozenset[str] = frozenset({COMPLETED, FAILED, TERMINATED})
