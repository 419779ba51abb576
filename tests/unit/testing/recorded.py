"""An order workflow, the history it recorded, and that history in the shapes users export."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ledgerflow import history
from ledgerflow.registration import Registrar
from orchestrator.engine import codec
from orchestrator.engine import events as ev
from persistence.records import EventRecord, as_utc
from tests.unit.engine import factories as f

INSTANCE = "order-1"


def order(ctx: Any, _: Any = None) -> Any:
    yield ctx.call_activity("reserve")
    yield ctx.create_timer(timedelta(hours=1))
    yield ctx.call_activity("charge")
    return "done"


def registrar(workflow: Any = order) -> Registrar:
    wfr = Registrar()
    wfr.register_workflow(workflow, name="order")
    return wfr


def recorded(steps: int = 4) -> list[ev.HistoryEvent]:
    """The history of `order` after `steps` steps (4: completed)."""
    run = f.Run(registrar().registry, INSTANCE)
    run.start("order", t=f.at(0))
    fed = [[f.task_completed(0, t=f.at(1))], [f.timer_fired(1, f.at(3601))], [f.task_completed(2, t=f.at(3602))]]
    for index, events in enumerate(fed[: steps - 1]):
        run.step(events, t=f.at((1, 3601, 3602)[index]))
    return run.history


def records(events: list[ev.HistoryEvent]) -> list[EventRecord]:
    return [EventRecord(0, i, *codec.encode(e), timestamp=as_utc(e.timestamp))
            for i, e in enumerate(events)]


def cli_json(events: list[ev.HistoryEvent]) -> list[dict[str, Any]]:
    """What `ledgerflow wf history ID -o json` prints."""
    return [entry.to_json() for entry in history.describe(records(events))]


def http_json(events: list[ev.HistoryEvent]) -> dict[str, Any]:
    """The HTTP history endpoint's body."""
    return {"instanceID": INSTANCE, "events": cli_json(events)}
