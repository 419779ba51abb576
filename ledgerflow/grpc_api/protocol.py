"""The Durable Task protocol's generated code, and Ledgerflow's states and history as its
messages.

The generated modules come from `dapr-ext-workflow` (it ships the protocol of Dapr's fork
of durabletask-protobuf, with `RerunWorkflowFromEvent`, `ListInstanceIDs` and
`GetInstanceHistory`, as the code its own client uses). They are imported here only, so a
move of that package's private path is one line to change.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from dapr.ext.workflow._durabletask.internal import history_events_pb2 as history_pb
from dapr.ext.workflow._durabletask.internal import orchestration_pb2 as orchestration_pb
from dapr.ext.workflow._durabletask.internal import orchestrator_service_pb2 as service_pb
from dapr.ext.workflow._durabletask.internal import orchestrator_service_pb2_grpc as service_grpc
from google.protobuf import empty_pb2, timestamp_pb2, wrappers_pb2

from ledgerflow.state import WorkflowState
from orchestrator.engine import codec
from orchestrator.engine import events as ev
from orchestrator.engine.status import RUNNING
from persistence.records import EventRecord

__all__ = ["empty_pb2", "history_pb", "orchestration_pb", "service_pb", "service_grpc", "state_message", "history_message",
           "text", "optional_text", "status_name",
           "event_message", "fire_at"]


def text(value: str | None) -> wrappers_pb2.StringValue | None:
    return None if value is None else wrappers_pb2.StringValue(value=value)


def optional_text(message: Any, field: str) -> str | None:
    """A `google.protobuf.StringValue` field's text, None when it is not set."""
    return getattr(message, field).value if message.HasField(field) else None


def timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)  # a naive datetime is taken as UTC, as Ledgerflow stores them
    return stamp


def status_name(value: int) -> str:
    """`ORCHESTRATION_STATUS_FAILED` -> `FAILED`."""
    return orchestration_pb.OrchestrationStatus.Name(value).removeprefix("ORCHESTRATION_STATUS_")


def _status(name: str) -> int:
    return orchestration_pb.OrchestrationStatus.Value(f"ORCHESTRATION_STATUS_{name}")


def _failure(failure: ev.FailureDetails | None) -> orchestration_pb.TaskFailureDetails | None:
    if failure is None:
        return None
    return orchestration_pb.TaskFailureDetails(errorType=failure.error_type, errorMessage=failure.message,
                                               stackTrace=text(failure.stack_trace))


def state_message(state: WorkflowState) -> orchestration_pb.WorkflowState:
    """The sidecar's WorkflowState; payloads only when `state` carries them."""
    return orchestration_pb.WorkflowState(
        instanceId=state.instance_id, name=state.name,
        workflowStatus=_status(state.runtime_status.name if state.runtime_status.name != "UNKNOWN" else RUNNING),
        createdTimestamp=timestamp(state.created_at), lastUpdatedTimestamp=timestamp(state.last_updated_at),
        input=text(state.serialized_input), output=text(state.serialized_output),
        customStatus=text(state.serialized_custom_status), failureDetails=_failure(state.failure_details),
    )


def history_message(record: EventRecord, instance_id: str) -> history_pb.HistoryEvent:
    """One stored event as the protocol's HistoryEvent; `eventId` is the task ID for the
    events that schedule a task (the IDs `RerunWorkflowFromEvent` takes), else -1."""
    return event_message(codec.decode(record.type, record.payload), instance_id, record.timestamp)


def event_message(event: ev.HistoryEvent, instance_id: str,
                  at: datetime | None = None) -> history_pb.HistoryEvent:
    """One engine event as the protocol's HistoryEvent, stamped `at` (default: its own time)."""
    field, body, event_id = _CONVERTERS[type(event)](event, instance_id)
    stamp = timestamp(event.timestamp if at is None else at)
    return history_pb.HistoryEvent(eventId=event_id, timestamp=stamp, **{field: body})


#: Dapr's SDKs back an indefinite `wait_for_external_event` with a timer at this instant
#: (9999-12-31T23:59:59.999999999Z); Ledgerflow stores it to the microsecond, and gives it
#: back exactly, so a replay recognises the timer as that "optional" one.
OPTIONAL_TIMER_FIRE_AT = timestamp_pb2.Timestamp(seconds=253402300799, nanos=999999999)


def fire_at(value: datetime) -> timestamp_pb2.Timestamp:
    """A timer's fire time as the protocol's Timestamp (the optional timer's exactly)."""
    stamp = timestamp(value)
    assert stamp is not None
    if stamp.seconds == OPTIONAL_TIMER_FIRE_AT.seconds:
        return OPTIONAL_TIMER_FIRE_AT
    return stamp


Converted = tuple[str, Any, int]


def _started(e: ev.ExecutionStarted, iid: str) -> Converted:
    parent = None if e.parent is None else orchestration_pb.ParentInstanceInfo(
        taskScheduledId=e.parent.task_id, name=text(e.parent.name),
        workflowInstance=orchestration_pb.WorkflowInstance(instanceId=e.parent.instance_id))
    body = history_pb.ExecutionStartedEvent(
        name=e.name, input=text(e.input), workflowInstance=orchestration_pb.WorkflowInstance(instanceId=iid),
        parentInstance=parent, scheduledStartTimestamp=timestamp(e.scheduled_start))
    return "executionStarted", body, -1


_CONVERTERS: dict[type, Callable[[Any, str], Converted]] = {
    ev.ExecutionStarted: _started,
    ev.OrchestratorStarted: lambda e, _: ("workflowStarted", history_pb.WorkflowStartedEvent(
        version=orchestration_pb.WorkflowVersion(name=e.version or "", patches=e.patches)
        if e.version or e.patches else None), -1),
    ev.TaskScheduled: lambda e, _: (
        "taskScheduled", history_pb.TaskScheduledEvent(name=e.name, input=text(e.input)), e.event_id),
    ev.TaskCompleted: lambda e, _: (
        "taskCompleted", history_pb.TaskCompletedEvent(taskScheduledId=e.task_id, result=text(e.result)), -1),
    ev.TaskFailed: lambda e, _: (
        "taskFailed", history_pb.TaskFailedEvent(taskScheduledId=e.task_id, failureDetails=_failure(e.failure)), -1),
    ev.TimerCreated: lambda e, _: (
        "timerCreated", history_pb.TimerCreatedEvent(fireAt=fire_at(e.fire_at)), e.event_id),
    ev.TimerFired: lambda e, _: (
        "timerFired", history_pb.TimerFiredEvent(fireAt=fire_at(e.fire_at), timerId=e.timer_id), -1),
    ev.SubOrchestrationInstanceCreated: lambda e, _: (
        "childWorkflowInstanceCreated",
        history_pb.ChildWorkflowInstanceCreatedEvent(instanceId=e.instance_id, name=e.name, input=text(e.input)),
        e.event_id),
    ev.SubOrchestrationInstanceCompleted: lambda e, _: (
        "childWorkflowInstanceCompleted",
        history_pb.ChildWorkflowInstanceCompletedEvent(taskScheduledId=e.task_id, result=text(e.result)), -1),
    ev.SubOrchestrationInstanceFailed: lambda e, _: (
        "childWorkflowInstanceFailed",
        history_pb.ChildWorkflowInstanceFailedEvent(taskScheduledId=e.task_id, failureDetails=_failure(e.failure)),
        -1),
    ev.EventRaised: lambda e, _: ("eventRaised", history_pb.EventRaisedEvent(name=e.name, input=text(e.input)), -1),
    ev.ExecutionSuspended: lambda e, _: (
        "executionSuspended", history_pb.ExecutionSuspendedEvent(input=text(e.reason)), -1),
    ev.ExecutionResumed: lambda e, _: ("executionResumed", history_pb.ExecutionResumedEvent(input=text(e.reason)), -1),
    ev.ExecutionTerminated: lambda e, _: (
        "executionTerminated", history_pb.ExecutionTerminatedEvent(input=text(e.output), recurse=e.recursive), -1),
    ev.ExecutionCompleted: lambda e, _: (
        "executionCompleted",
        history_pb.ExecutionCompletedEvent(workflowStatus=_status(e.status), result=text(e.result),
                                           failureDetails=_failure(e.failure)), -1),
    ev.ContinuedAsNew: lambda e, _: ("continueAsNew", history_pb.ContinueAsNewEvent(input=text(e.input)), -1),
}
