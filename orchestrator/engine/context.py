"""The workflow context: what workflow code calls.

Every call that schedules work takes the next sequence number and records a pending
action in the run's `RunState`; the executor, which owns that state, matches those actions
against recorded history events (replay) or returns them as new actions. Nothing here
performs I/O or reads a clock.
"""

from __future__ import annotations

import random as _random
import uuid
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from orchestrator.engine import actions as act
from orchestrator.engine import clock
from orchestrator.engine.errors import TaskFailedError
from orchestrator.engine.events import FailureDetails
from orchestrator.engine.propagation import parse as parse_propagated
from orchestrator.engine.propagation import scope_name
from orchestrator.engine.registry import registered_name
from orchestrator.engine.retry import RetryPolicy, next_delay
from orchestrator.engine.serialization import from_json, to_json
from orchestrator.engine.state import RunState
from orchestrator.engine.tasks import CompletableTask, Task

_GUID_NAMESPACE = uuid.UUID("9e952958-5e33-4daf-827f-2fa12937b875")
#: Failures that no retry policy retries.
_NOT_RETRIED = frozenset({"NonRetryableError", "WorkflowAccessPolicyDenied", "ActivityDeliveryLimitExceeded"})


class ScheduledTask(CompletableTask[Any]):
    """An activity or child workflow call, retried on durable timers when it has a policy."""

    def __init__(self, state: RunState, action: act.Action, policy: RetryPolicy | None) -> None:
        super().__init__()
        self.state = state
        self.action = action
        self.policy = policy
        self.attempts_made = 0
        self.first_attempt_at = state.now

    def on_failed(self, failure: FailureDetails, task_id: int) -> None:
        """A failure of the current attempt: retry after a durable timer, or fail for good."""
        self.attempts_made += 1
        delay = None
        if self.policy is not None and failure.error_type not in _NOT_RETRIED:
            delay = next_delay(self.policy, self.attempts_made, self.first_attempt_at, self.state.now)
        if delay is None:
            kind = "Activity task" if isinstance(self.action, act.ScheduleTask) else "Sub-orchestration task"
            prefix = f"{self.state.instance_id}: " if isinstance(self.action, act.ScheduleTask) else ""
            self.fail(TaskFailedError(f"{prefix}{kind} #{task_id} failed: {failure.message}", failure))
            return
        timer = self.state.new_timer(self.state.now + delay)
        timer._listeners.append(_RetryTrigger(self))

    def retry(self) -> None:
        seq = self.state.next_sequence()
        self.action = _with_task_id(self.action, seq, self.attempts_made + 1)
        self.state.schedule(seq, self.action, self)


class _RetryTrigger:
    """Parent hook on a retry timer: when it fires, schedule the next attempt."""

    def __init__(self, task: ScheduledTask) -> None:
        self.task = task

    def _on_child_completed(self, child: Task[Any]) -> None:
        self.task.retry()


def _with_task_id(action: act.Action, task_id: int, attempt: int) -> act.Action:
    if isinstance(action, act.ScheduleTask):
        return act.ScheduleTask(task_id, action.name, action.input, action.app_id, attempt, action.first_task_id,
                                action.propagation)
    assert isinstance(action, act.CreateSubOrchestration)
    return act.CreateSubOrchestration(task_id, action.name, action.instance_id, action.input, action.app_id, attempt,
                                      action.propagation)


class WorkflowContext:
    """Dapr's DaprWorkflowContext: the workflow's only window on the world."""

    def __init__(self, state: RunState) -> None:
        """`state` is the run's bookkeeping, owned by the `Replay` that built this context."""
        self._state = state
        self._guid_counter = 0
        self._random: _random.Random | None = None
        self._propagated_history: Any = None

    # -- what workflow code reads ------------------------------------------------------

    @property
    def instance_id(self) -> str:
        return self._state.instance_id

    @property
    def current_utc_datetime(self) -> datetime:
        return self._state.now

    @property
    def is_replaying(self) -> bool:
        return self._state.is_replaying

    def now(self) -> datetime:
        """The workflow's deterministic clock (the same as `current_utc_datetime`)."""
        return self._state.now

    def new_guid(self) -> str:
        """A UUID that is the same on every replay of this point of the workflow."""
        name = f"{self._state.instance_id}_{self._state.now.isoformat()}_{self._guid_counter}"
        self._guid_counter += 1
        return str(uuid.uuid5(_GUID_NAMESPACE, name))

    def random(self) -> _random.Random:
        """A random generator seeded by the instance ID: replays draw the same numbers."""
        if self._random is None:
            self._random = _random.Random(self._state.instance_id)
        return self._random

    def set_custom_status(self, custom_status: Any) -> None:
        self._state.custom_status = to_json(custom_status, what="set_custom_status value")

    def get_propagated_history(self) -> Any:
        """The PropagatedHistory this workflow's caller passed down, or None."""
        if self._propagated_history is None and self._state.propagated:
            self._propagated_history = parse_propagated(self._state.propagated, verified=True)
        return self._propagated_history

    def is_patched(self, patch_name: str) -> bool:
        """True on code paths added after this run began only if the run took them live."""
        return self._state.is_patched(patch_name)

    # -- what workflow code schedules --------------------------------------------------

    def create_timer(self, fire_at: datetime | timedelta) -> Task[None]:
        if isinstance(fire_at, timedelta):
            when = self._state.now + fire_at
        else:
            when = clock.naive_utc(fire_at)
        return self._state.new_timer(when)

    def call_activity(
        self,
        activity: Callable[..., Any] | str,
        *,
        input: Any = None,
        retry_policy: RetryPolicy | None = None,
        app_id: str | None = None,
        propagation: Any = None,
    ) -> Task[Any]:
        name = registered_name(activity)
        encoded = to_json(input, what=f"Input of call_activity('{name}')")
        seq = self._state.next_sequence()
        action = act.ScheduleTask(seq, name, encoded, app_id, 1, seq, scope_name(propagation))
        task = ScheduledTask(self._state, action, retry_policy)
        self._state.schedule(seq, action, task)
        return task

    def call_child_workflow(
        self,
        workflow: Callable[..., Any] | str,
        *,
        input: Any = None,
        instance_id: str | None = None,
        retry_policy: RetryPolicy | None = None,
        app_id: str | None = None,
        propagation: Any = None,
    ) -> Task[Any]:
        name = registered_name(workflow)
        encoded = to_json(input, what=f"Input of call_child_workflow('{name}')")
        seq = self._state.next_sequence()
        child_id = instance_id or f"{self._state.instance_id}:{seq:04x}"
        action = act.CreateSubOrchestration(seq, name, child_id, encoded, app_id, 1, scope_name(propagation))
        task = ScheduledTask(self._state, action, retry_policy)
        self._state.schedule(seq, action, task)
        return task

    def wait_for_external_event(self, name: str, timeout: timedelta | float | None = None) -> Task[Any]:
        """The next event named `name` (case-insensitive), oldest first.

        `timeout` None or negative waits forever; 0 fails at once unless an event is
        already buffered; a positive timeout fails with TimeoutError when it runs out.
        """
        key = name.casefold()
        task: CompletableTask[Any] = CompletableTask()
        buffered = self._state.received_events.get(key)
        if buffered:
            task.complete(from_json(buffered.popleft().input))
            return task
        seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
        if seconds is not None and seconds == 0:
            task.fail(TimeoutError(f"Timed out after {timeout} waiting for external event '{name}'"))
            return task
        self._state.event_waiters.setdefault(key, deque()).append(task)
        if seconds is not None and seconds > 0:
            timer = self._state.new_timer(self._state.now + timedelta(seconds=seconds))
            timer._listeners.append(_EventTimeout(self._state, key, task, name, timeout))
        return task

    def continue_as_new(self, new_input: Any = None, *, save_events: bool = False) -> None:
        """End this run and start the next with `new_input` (and the unconsumed events)."""
        self._state.continue_as_new = (to_json(new_input, what="Input of continue_as_new"), save_events)


class _EventTimeout:
    """Parent hook on an event-wait timer: fail the wait and stop it consuming events."""

    def __init__(self, state: RunState, key: str, task: CompletableTask[Any], name: str, timeout: Any) -> None:
        self.state, self.key, self.task, self.name, self.timeout = state, key, task, name, timeout

    def _on_child_completed(self, child: Task[Any]) -> None:
        if self.task.is_complete:
            return
        waiters = self.state.event_waiters.get(self.key)
        if waiters and self.task in waiters:
            waiters.remove(self.task)
        self.task.fail(TimeoutError(f"Timed out after {self.timeout} waiting for external event '{self.name}'"))
