"""Rerun from an event (Dapr 1.16's `dapr workflow rerun`): which part of an old history a
new instance starts from.

The new instance's history is the old one's up to (not including) the event that scheduled
task N: an activity call, a timer or a child workflow. Replaying that prefix brings the
workflow code back to where it scheduled N, and the engine issues N again, as a new action.
A call scheduled before N whose result is not in the prefix is left out too, so it is
issued again as well (its result would otherwise never come); every result in the prefix
is kept, so finished work is not done twice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from orchestrator.engine import codec
from orchestrator.engine import events as ev
from persistence.records import EventRecord, NewEvent

#: Events that schedule task N, and the events that carry its result.
_SCHEDULING = (ev.TaskScheduled, ev.TimerCreated, ev.SubOrchestrationInstanceCreated)
_RESULTS = (ev.TaskCompleted, ev.TaskFailed, ev.SubOrchestrationInstanceCompleted, ev.SubOrchestrationInstanceFailed)


class RerunEventError(ValueError):
    """The event ID names nothing a rerun can start from."""

    code = "ERR_RERUN_EVENT"
    http_status = 404  # no such event in the history (gRPC: INVALID_ARGUMENT)


class RerunSignedError(ValueError):
    """The source's history is signed: its copy would be an unsigned history, which the
    signing checks rightly take for tampering; Ledgerflow does not rerun signed histories."""

    code = "ERR_RERUN_SIGNED"
    http_status = 409


def prefix(records: Sequence[EventRecord], event_id: int, new_input: str | None = None,
           overwrite_input: bool = False) -> list[NewEvent]:
    """The events a rerun from `event_id` starts with, numbered from 0; with
    `overwrite_input`, the ExecutionStarted carries `new_input` instead of the old input."""
    events = [codec.decode(r.type, r.payload) for r in sorted(records, key=lambda r: r.sequence)]
    cut = next((i for i, e in enumerate(events) if isinstance(e, _SCHEDULING) and e.event_id == event_id), None)
    if cut is None:
        scheduled = sorted({e.event_id for e in events if isinstance(e, _SCHEDULING)})
        raise RerunEventError(f"event ID {event_id} is not an activity call, timer or child workflow of this "
                              f"workflow's history (those are: {', '.join(map(str, scheduled)) or 'none'}); "
                              "see `ledgerflow workflow history`")
    kept = events[:cut]
    finished = {_result_of(e) for e in kept} - {None}
    kept = [e for e in kept if not (isinstance(e, _SCHEDULING) and e.event_id not in finished)]
    if overwrite_input:
        kept = [dataclasses.replace(e, input=new_input) if isinstance(e, ev.ExecutionStarted) else e for e in kept]
    return [NewEvent(sequence=i, type=t, payload=p, timestamp=e.timestamp)
            for i, (e, (t, p)) in enumerate((e, codec.encode(e)) for e in kept)]


def _result_of(event: ev.HistoryEvent) -> int | None:
    if isinstance(event, _RESULTS):
        return event.task_id
    if isinstance(event, ev.TimerFired):
        return event.timer_id
    return None
