"""The SDK's answer to an orchestrator work item (`WorkflowResponse`) as the engine's actions
and the history events the step records for them, as `Replay.step` records its own.

Each action the SDK returns gets the event a replay will match it with: `scheduleTask` ->
TaskScheduled, `createTimer` -> TimerCreated, `createChildWorkflow` ->
SubOrchestrationInstanceCreated, under the action's sequence number; `completeWorkflow` ends
the run (ExecutionCompleted, or ContinuedAsNew with the events it carries over).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ledgerflow.grpc_api import protocol as p
from orchestrator.engine import actions as act
from orchestrator.engine import events as ev

CONTINUED_AS_NEW = "CONTINUED_AS_NEW"
#: the SDK's `workflowVersionNotAvailable`: this app cannot run the recorded version
VERSION_NOT_AVAILABLE = "VERSION_NOT_AVAILABLE"
#: the error type of a run that asked for an action the sidecar does not carry out
UNSUPPORTED = "UnsupportedWorkflowAction"


@dataclass
class Decided:
    """What one answer decided: actions in order, the events recorded for them, the end of
    the run (if it ended), and whether the app could not run the recorded version."""

    actions: list[act.Action] = field(default_factory=list)
    events: list[ev.HistoryEvent] = field(default_factory=list)
    completion: act.CompleteOrchestration | None = None
    version_not_available: bool = False


def decide(response: Any, now: datetime, parent: ev.ParentInfo | None) -> Decided:
    """The actions and events of `response` (a WorkflowResponse), at workflow time `now`."""
    out = Decided()
    for action in response.actions:
        kind = action.WhichOneof("workflowActionType")
        if kind == "completeWorkflow":
            out.completion = _completion(action.completeWorkflow, now, parent)
        elif kind == "workflowVersionNotAvailable":
            out.version_not_available = True
        elif kind in _SCHEDULERS:
            engine_action = _SCHEDULERS[kind](action.id, getattr(action, kind))
            out.actions.append(engine_action)
            out.events.append(_event_for(engine_action, now))
        else:  # the run fails, saying why, rather than do half of what the code asked
            failure = ev.FailureDetails(
                f"the workflow asked for a '{kind}' action, which Ledgerflow's sidecar does not carry out; "
                "use activities, timers, child workflows and external events", UNSUPPORTED)
            return Decided(completion=act.CompleteOrchestration("FAILED", failure=failure, parent=parent))
    return out


def _target(message: Any) -> str | None:
    router = getattr(message, "router", None)
    return (router.targetAppID or None) if router is not None else None


def _schedule_task(task_id: int, a: Any) -> act.ScheduleTask:
    return act.ScheduleTask(task_id, a.name, p.optional_text(a, "input"), _target(a), first_task_id=task_id)


def _create_timer(timer_id: int, a: Any) -> act.CreateTimer:
    return act.CreateTimer(timer_id, naive(a.fireAt.ToDatetime(tzinfo=timezone.utc)))


def _create_child(task_id: int, a: Any) -> act.CreateSubOrchestration:
    return act.CreateSubOrchestration(task_id, a.name, a.instanceId, p.optional_text(a, "input"), _target(a))


_SCHEDULERS = {"scheduleTask": _schedule_task, "createTimer": _create_timer, "createChildWorkflow": _create_child}


def _event_for(action: act.Action, now: datetime) -> ev.HistoryEvent:
    if isinstance(action, act.ScheduleTask):
        return ev.TaskScheduled(now, action.task_id, action.name, action.input, action.app_id)
    if isinstance(action, act.CreateTimer):
        return ev.TimerCreated(now, action.timer_id, action.fire_at)
    assert isinstance(action, act.CreateSubOrchestration)
    return ev.SubOrchestrationInstanceCreated(now, action.task_id, action.name, action.instance_id, action.input,
                                              action.app_id)


def _completion(a: Any, now: datetime, parent: ev.ParentInfo | None) -> act.CompleteOrchestration:
    status = p.status_name(a.workflowStatus)
    failure = None
    if a.HasField("failureDetails"):
        f = a.failureDetails
        failure = ev.FailureDetails(f.errorMessage, f.errorType or "Exception", p.optional_text(f, "stackTrace"))
    carry = tuple(ev.EventRaised(now, e.eventRaised.name, p.optional_text(e.eventRaised, "input"))
                  for e in a.carryoverEvents if e.HasField("eventRaised"))
    return act.CompleteOrchestration(status, p.optional_text(a, "result"), failure, parent, carry)


def completion_event(completion: act.CompleteOrchestration, now: datetime) -> ev.HistoryEvent:
    if completion.status == CONTINUED_AS_NEW:
        return ev.ContinuedAsNew(now, completion.result, completion.carryover_events)
    return ev.ExecutionCompleted(now, completion.status, completion.result, completion.failure)


def naive(value: datetime) -> datetime:
    """Naive UTC, as the engine keeps time."""
    return value.astimezone(timezone.utc).replace(tzinfo=None) if value.tzinfo else value
