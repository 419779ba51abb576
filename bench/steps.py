"""What a scenario cost the orchestrators: CPU milliseconds per step and the batch sizes seen.

CPU comes from /proc (user + system time of every orchestrator process and its threads);
steps and batches from the database: a batch's steps share one `OrchestratorStarted`
timestamp (the batch's clock), so grouping those events by timestamp gives the batch sizes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone

import sqlalchemy as sa

from persistence.store import Store

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


@dataclass
class StepMeter:
    """Started before a scenario, read after it."""

    store: Store
    pids: dict[str, int]
    since: datetime
    cpu: dict[str, float]

    @classmethod
    def start(cls, store: Store, pids: dict[str, int]) -> StepMeter:
        return cls(store, pids, datetime.now(timezone.utc), {n: cpu_seconds(p) for n, p in pids.items()})

    def note(self) -> str:
        used = sum(cpu_seconds(p) - self.cpu[n] for n, p in self.pids.items())
        stmt = sa.text("SELECT count(*) FROM history_events WHERE type = 'OrchestratorStarted' "
                       "AND timestamp >= :since GROUP BY timestamp")
        with self.store.engine.connect() as conn:
            sizes = sorted(int(r[0]) for r in conn.execute(stmt, {"since": self.since}))
        steps = sum(sizes)
        if not steps:
            return f"orchestrator CPU {used:.1f}s; no steps recorded"
        mid = sizes[len(sizes) // 2]
        return (f"orchestrator CPU {used * 1000 / steps:.2f} ms/step ({used:.1f}s over {steps} steps in "
                f"{len(self.pids)} process(es)); batches: {len(sizes)}, mean {steps / len(sizes):.1f}, "
                f"median {mid}, max {sizes[-1]} steps")
