"""History events: what happened to a workflow instance, in order.

Events are past-tense nouns. Each is a frozen, slotted dataclass; the codec turns them into
(type name, JSON payload) pairs for storage. Payload fields that carry user data (`input`,
`result`) hold JSON text exactly as the serializer produced it, never decoded objects, so a
replay sees byte-for-byte what the first run saw.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class FailureDetails:
    """Why a task or a workflow failed."""

    message: str
    error_type: str
    stack_trace: str | None = None


@dataclass(frozen=True, slots=True)
class ParentInfo:
    """Who started a child workflow, so its completion can be reported back."""

    name: str
    instance_id: str
    task_id: int
    app_id: str | None = None


@dataclass(frozen=True, slots=True)
class HistoryEvent:
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class ExecutionStarted(HistoryEvent):
    name: str
    input: str | None = None
    parent: ParentInfo | None = None
    scheduled_start: datetime | None = None
    #: The history its caller propagated to it (JSON text, see engine/propagation.py).
    propagated: str | None = None
    #: The calling workflow's attestation of this start (JSON text; the caller's identity).
    caller: str | None = None


@dataclass(frozen=True, slots=True)
class OrchestratorStarted(HistoryEvent):
    """Opens every step. Its timestamp is the workflow's clock for that step.

    The engine fills in `version` (the workflow version chosen when the run began) and
    `patches` (the patches first evaluated as applied in this step) before the event is
    stored, so a replay knows which code paths the recorded history took.
    """

    version: str | None = None
    patches: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TaskScheduled(HistoryEvent):
    event_id: int
    name: str
    input: str | None = None
    app_id: str | None = None
    attempt: int = 1


@dataclass(frozen=True, slots=True)
class TaskCompleted(HistoryEvent):
    task_id: int
    result: str | None = None


@dataclass(frozen=True, slots=True)
class TaskFailed(HistoryEvent):
    task_id: int
    failure: FailureDetails


@dataclass(frozen=True, slots=True)
class TimerCreated(HistoryEvent):
    event_id: int
    fire_at: datetime


@dataclass(frozen=True, slots=True)
class TimerFired(HistoryEvent):
    timer_id: int
    fire_at: datetime


@dataclass(frozen=True, slots=True)
class SubOrchestrationInstanceCreated(HistoryEvent):
    event_id: int
    name: str
    instance_id: str
    input: str | None = None
    app_id: str | None = None
    attempt: int = 1


@dataclass(frozen=True, slots=True)
class SubOrchestrationInstanceCompleted(HistoryEvent):
    task_id: int
    result: str | None = None


@dataclass(frozen=True, slots=True)
class SubOrchestrationInstanceFailed(HistoryEvent):
    task_id: int
    failure: FailureDetails


@dataclass(frozen=True, slots=True)
class EventRaised(HistoryEvent):
    name: str
    input: str | None = None


@dataclass(frozen=True, slots=True)
class ExecutionSuspended(HistoryEvent):
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ExecutionResumed(HistoryEvent):
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ExecutionTerminated(HistoryEvent):
    output: str | None = None
    recursive: bool = True


@dataclass(frozen=True, slots=True)
class ExecutionCompleted(HistoryEvent):
    status: str
    result: str | None = None
    failure: FailureDetails | None = None


@dataclass(frozen=True, slots=True)
class ContinuedAsNew(HistoryEvent):
    input: str | None = None
    carryover_events: tuple[EventRaised, ...] = field(default_factory=tuple)


EVENT_TYPES: tuple[type[HistoryEvent], ...] = (
    ExecutionStarted,
    OrchestratorStarted,
    TaskScheduled,
    TaskCompleted,
    TaskFailed,
    TimerCreated,
    TimerFired,
    SubOrchestrationInstanceCreated,
    SubOrchestrationInstanceCompleted,
    SubOrchestrationInstanceFailed,
    EventRaised,
    ExecutionSuspended,
    ExecutionResumed,
    ExecutionTerminated,
    ExecutionCompleted,
    ContinuedAsNew,
)


def result_task_id(event: HistoryEvent) -> int | None:
    """The task, timer or child id a result event answers; None for any other event."""
    if isinstance(event, TimerFired):
        return event.timer_id
    if isinstance(event, (TaskCompleted, TaskFailed, SubOrchestrationInstanceCompleted,
                          SubOrchestrationInstanceFailed)):
        return event.task_id
    return None
