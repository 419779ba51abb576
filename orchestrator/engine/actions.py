"""Actions: what a step asks the outside world to do. Imperatives, one per side effect.

The service turns each action into rows written in the step's transaction (timer rows,
outbox rows, child instances, messages to other instances) and publishes after commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from orchestrator.engine.events import EventRaised, FailureDetails, ParentInfo


@dataclass(frozen=True, slots=True)
class Action:
    pass


@dataclass(frozen=True, slots=True)
class ScheduleTask(Action):
    task_id: int
    name: str
    input: str | None
    app_id: str | None = None
    attempt: int = 1
    #: Stable across retries: the sequence number of the first attempt.
    first_task_id: int | None = None
    #: "OWN_HISTORY" or "LINEAGE" when the caller propagates its history.
    propagation: str | None = None


@dataclass(frozen=True, slots=True)
class CreateTimer(Action):
    timer_id: int
    fire_at: datetime


@dataclass(frozen=True, slots=True)
class CreateSubOrchestration(Action):
    task_id: int
    name: str
    instance_id: str
    input: str | None
    app_id: str | None = None
    attempt: int = 1
    propagation: str | None = None


@dataclass(frozen=True, slots=True)
class TerminateSubOrchestration(Action):
    """Terminate a child this workflow created and that has not finished."""

    instance_id: str
    app_id: str | None
    output: str | None


@dataclass(frozen=True, slots=True)
class CompleteOrchestration(Action):
    """End this run: COMPLETED, FAILED, TERMINATED or CONTINUED_AS_NEW.

    `parent` is copied from ExecutionStarted so the service can report to the parent
    without reading history again. For CONTINUED_AS_NEW, `result` is the next run's input
    and `carryover_events` are the unconsumed events to feed it.
    """

    status: str
    result: str | None = None
    failure: FailureDetails | None = None
    parent: ParentInfo | None = None
    carryover_events: tuple[EventRaised, ...] = ()
    #: The history this run received, kept across continue-as-new.
    propagated: str | None = None
