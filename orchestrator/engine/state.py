"""One run's replay bookkeeping: what the code scheduled and what history delivered.

`Replay` owns a `RunState` and hands it to the `WorkflowContext` it creates: workflow code
writes to it through the context (a call schedules an action, `set_custom_status` sets the
status), and the executor reads and completes it as history is applied. Neither reaches
into the other's private attributes.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from orchestrator.engine import actions as act
from orchestrator.engine.events import EventRaised
from orchestrator.engine.tasks import CompletableTask, TimerTask


@dataclass(eq=False, slots=True)
class RunState:
    """The state a replay builds up for one run (one generation) of an instance."""

    instance_id: str
    #: the workflow's clock: the timestamp of the OrchestratorStarted being applied
    now: datetime = datetime(1970, 1, 1)
    is_replaying: bool = False
    #: the next sequence number a scheduling call takes
    sequence: int = 0
    #: actions scheduled and not yet matched to a recorded scheduling event, by sequence
    pending_actions: dict[int, act.Action] = field(default_factory=dict)
    #: tasks waiting for a completion, by sequence (task ID)
    pending_tasks: dict[int, CompletableTask[Any]] = field(default_factory=dict)
    #: raised events no waiter took yet, by case-folded name, oldest first
    received_events: dict[str, deque[EventRaised]] = field(default_factory=dict)
    #: wait_for_external_event tasks not yet completed, by case-folded name
    event_waiters: dict[str, deque[CompletableTask[Any]]] = field(default_factory=dict)
    #: child workflows started and not yet finished: task ID -> (instance ID, app ID)
    open_children: dict[int, tuple[str, str | None]] = field(default_factory=dict)
    custom_status: str | None = None
    #: (encoded input, save_events) once the code called continue_as_new
    continue_as_new: tuple[str | None, bool] | None = None
    #: the workflow version this run records (None: unversioned)
    version: str | None = None
    #: patches the history recorded, the code asked about, and this step recorded
    recorded_patches: set[str] = field(default_factory=set)
    queried_patches: set[str] = field(default_factory=set)
    step_patches: list[str] = field(default_factory=list)
    #: the PropagatedHistory text the caller passed down (ExecutionStarted.propagated)
    propagated: str | None = None

    # -- what scheduling calls do --------------------------------------------------------

    def next_sequence(self) -> int:
        seq = self.sequence
        self.sequence += 1
        return seq

    def schedule(self, seq: int, action: act.Action, task: CompletableTask[Any]) -> None:
        """Record `action` at `seq` and the task its completion will complete."""
        self.pending_actions[seq] = action
        self.pending_tasks[seq] = task

    def new_timer(self, fire_at: datetime) -> TimerTask:
        seq = self.next_sequence()
        task = TimerTask(seq, fire_at)
        self.schedule(seq, act.CreateTimer(seq, fire_at), task)
        return task

    def is_patched(self, patch_name: str) -> bool:
        """A patch is on if history recorded it, or if this step runs live (then it is recorded)."""
        self.queried_patches.add(patch_name)
        if patch_name in self.recorded_patches:
            return True
        if self.is_replaying:
            return False
        self.recorded_patches.add(patch_name)
        self.step_patches.append(patch_name)
        return True

    # -- what the executor does ----------------------------------------------------------

    def take_actions(self) -> list[act.Action]:
        """The actions not matched by history, in sequence order; none remain pending."""
        actions = [self.pending_actions[k] for k in sorted(self.pending_actions)]
        self.pending_actions.clear()
        return actions

    def open_task(self, task_id: int) -> CompletableTask[Any] | None:
        """The task `task_id` waits on, if its scheduling was recorded (None when it was
        never scheduled, is already done, or was scheduled in this very step)."""
        if task_id in self.pending_actions:
            return None
        return self.pending_tasks.get(task_id)

    def buffer_event(self, event: EventRaised) -> None:
        self.received_events.setdefault(event.name.casefold(), deque()).append(event)

    def unconsumed_events(self) -> list[EventRaised]:
        return [e for q in self.received_events.values() for e in q]

    def unused_patches(self) -> set[str]:
        """Patches the history recorded that the code no longer asks about."""
        return self.recorded_patches - self.queried_patches
