"""Which results a step takes in: only those the run is still waiting for.

Brokers deliver at least once and workers may run a call twice, so a result can arrive again
after it was applied; a message can also name a task that was never scheduled. Such a result
is dropped here, before the engine sees it and before its attestation is checked, and the
step that carried it appends nothing for it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.engine import events as ev
from orchestrator.engine.executor import Replay
from orchestrator.logs import log_ids
from persistence.records import InboxRecord, InstanceRecord

log = logging.getLogger("ledgerflow.orchestrator")

_ACTIVITY_RESULTS = (ev.TaskCompleted, ev.TaskFailed)


@dataclass(frozen=True)
class Incoming:
    """One message the run waits for, decoded."""

    message: InboxRecord
    event: ev.HistoryEvent
    #: for an activity or child result: the app that was called (and must have attested it
    #: when signing is on); None for anything else
    callee_app: str | None = None


def awaited_results(inst: InstanceRecord, replay: Replay,
                    pairs: Sequence[tuple[InboxRecord, ev.HistoryEvent]]) -> list[Incoming]:
    """`pairs` without the results for tasks that are not open (never scheduled, already
    completed, or a second copy in this very step); other events pass unchanged."""
    out: list[Incoming] = []
    seen: set[int] = set()
    for message, event in pairs:
        task_id = ev.result_task_id(event)
        if task_id is None:
            out.append(Incoming(message, event))
            continue
        kind = "timer" if isinstance(event, ev.TimerFired) else (
            "activity" if isinstance(event, _ACTIVITY_RESULTS) else "child")
        expected = replay.expected_completion(task_id)
        if expected is None or expected[0] != kind or task_id in seen:
            log.warning("rejected %s for task %s: no such %s task is open (never scheduled or already done)",
                        type(event).__name__, task_id, kind,
                        extra=log_ids(inst))
            continue
        seen.add(task_id)
        out.append(Incoming(message, event, None if kind == "timer" else expected[1] or inst.app_id))
    return out
