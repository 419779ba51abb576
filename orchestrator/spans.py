"""What one orchestration step reports to traces and metrics, taken around the replay engine.

The engine stays pure: a report is made from the events the step took in (new to history)
and the completion it produced, never from replayed history, so a replay after a restart
or a cache miss reports nothing twice. Reports are sent after the step's transaction
committed (a rolled-back step reports nothing; its retry does).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from opentelemetry.trace import SpanKind

from orchestrator import inbox
from orchestrator.engine import events as ev
from orchestrator.engine import actions as act
from orchestrator.engine.executor import ExecutionResult, Replay
from orchestrator.engine.status import CONTINUED_AS_NEW, FAILED
from orchestrator.logs import log_ids
from persistence.records import InstanceRecord, as_utc
from telemetry import metrics, tracing

log = logging.getLogger("ledgerflow.orchestrator")


def traced(inst: InstanceRecord) -> bool:
    """Whether this instance's steps make spans (it has a trace and this process exports)."""
    return inst.trace_context is not None and tracing.tracer() is not None


def open_activities(replay: Replay, events: Sequence[ev.HistoryEvent]) -> dict[int, str]:
    """Before the step: the names of the activity calls whose results it takes in."""
    names = {}
    for event in events:
        if isinstance(event, (ev.TaskCompleted, ev.TaskFailed)):
            name = replay.open_activity(event.task_id)
            if name is not None:
                names[event.task_id] = name
    return names


def send(reports: Sequence[StepReport]) -> None:
    """Send committed steps' reports; a failure here is logged and never fails a step."""
    for report in reports:
        try:
            report.send()
        except Exception:
            log.exception("could not report a step to traces/metrics", extra=log_ids(report.inst))


def failed_run(inst: InstanceRecord, failure: ev.FailureDetails, at: datetime) -> StepReport:
    """The report of a run the service ended FAILED itself (tampered history, history limit,
    a child refused): counted as finished, and its run span closed with the failure."""
    result = ExecutionResult([], [], FAILED, completion=act.CompleteOrchestration(FAILED, failure=failure))
    return StepReport(inst, [], result, {} if traced(inst) else None, at)


@dataclass
class StepReport:
    inst: InstanceRecord
    events: Sequence[ev.HistoryEvent]
    result: ExecutionResult
    #: task id -> activity name of the results taken in; None when the step is not traced
    activities: dict[int, str] | None
    at: datetime

    def send(self) -> None:
        inst, completion = self.inst, self.result.completion
        m = metrics.metrics()
        if any(isinstance(e, ev.ExecutionStarted) for e in self.events):
            m.workflows_started.labels(workflow=inst.name).inc()
        if completion is not None and completion.status != CONTINUED_AS_NEW:
            m.workflows_finished.labels(workflow=inst.name, status=completion.status).inc()
        if self.activities is not None:
            self._spans()

    def _spans(self) -> None:
        inst, end = self.inst, self.at
        run = tracing.run_parent(inst.trace_context, inst.instance_id, inbox.run_token(inst), inst.generation)
        if run is None:
            return
        for event in self.events:
            if isinstance(event, (ev.TaskCompleted, ev.TaskFailed)) and event.task_id in (self.activities or {}):
                name = (self.activities or {})[event.task_id]
                failed = event.failure if isinstance(event, ev.TaskFailed) else None
                tracing.emit(f"activity:{name}", tracing.activity_parent(run, event.task_id), run, event.timestamp,
                             end, self._attrs("activity", name, event.task_id, "Failed" if failed else "Completed"),
                             kind=SpanKind.CLIENT, error=(failed.error_type, failed.message) if failed else None)
            elif isinstance(event, ev.TimerFired):
                attrs = self._attrs("timer", inst.name, event.timer_id)
                attrs["durabletask.fire_at"] = as_utc(event.fire_at).isoformat()
                tracing.emit(f"orchestration:{inst.name}:timer", run.child("timer", event.timer_id), run,
                             event.fire_at, end, attrs)
            elif isinstance(event, ev.EventRaised):
                attrs = self._attrs("event", event.name)
                attrs["durabletask.event.target_instance_id"] = inst.instance_id
                tracing.emit(f"orchestration_event:{event.name}", None, run, event.timestamp, end, attrs)
        completion = self.result.completion
        if completion is not None:
            failure = completion.failure if completion.status == FAILED else None
            tracing.emit(f"orchestration:{inst.name}", run, tracing.Parent.parse(inst.trace_context), self._run_start(),
                         end, self._attrs("orchestration", inst.name, status=completion.status.capitalize()),
                         kind=SpanKind.SERVER, error=(failure.error_type, failure.message) if failure else None)

    def _attrs(self, kind: str, name: str, task_id: int | None = None, status: str | None = None) -> dict[str, object]:
        return tracing.attributes(kind, name, self.inst.instance_id, self.inst.app_id, task_id, status)

    def _run_start(self) -> datetime:
        """The run's start: the instance's creation (or, for a later generation, its start
        event when this very step took it in, else the creation too)."""
        started = next((e for e in self.events if isinstance(e, ev.ExecutionStarted)), None)
        if self.inst.generation and started is not None:
            return started.timestamp
        return self.inst.start_at or self.inst.created_at
