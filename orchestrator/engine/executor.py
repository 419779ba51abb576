"""The replay engine: (workflow code, past history, new events) -> (new history, actions).

`execute` replays `old_events` with `is_replaying` true, applies `new_events`, and returns
what to append and what to do. It never raises: an exception from workflow code becomes a
FAILED completion; a mismatch between code and history a NonDeterminismError failure; a
recorded version or patch that this code cannot honour a STALLED result that consumes
nothing. A `Replay` object can be kept between steps (the orchestrator's cache of live
generators) and fed only the events that came since.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NoReturn

from orchestrator.engine import actions as act
from orchestrator.engine import clock
from orchestrator.engine import events as ev
from orchestrator.engine.context import ScheduledTask, WorkflowContext
from orchestrator.engine.errors import (
    NonDeterminismError,
    OrchestratorNotRegisteredError,
    failure_from_exception,
)
from orchestrator.engine.registry import Registry, VersionNotAvailable
from orchestrator.engine.serialization import from_json, to_json
from orchestrator.engine.signatures import call_with_input
from orchestrator.engine.state import RunState
from orchestrator.engine.status import (
    COMPLETED,
    CONTINUED_AS_NEW,
    FAILED,
    RUNNING,
    STALLED,
    SUSPENDED,
    TERMINATED,
)
from orchestrator.engine.tasks import Task, TimerTask


VERSION_NOT_AVAILABLE, PATCH_MISMATCH = "VERSION_NOT_AVAILABLE", "PATCH_MISMATCH"

#: Events the engine wrote for actions already taken: a replay matches them at once.
_SCHEDULING_EVENTS = (ev.TaskScheduled, ev.TimerCreated, ev.SubOrchestrationInstanceCreated)
#: A suspended run holds every other event until it is resumed.
_NOT_HELD_WHILE_SUSPENDED = (
    ev.ExecutionResumed, ev.ExecutionTerminated, ev.OrchestratorStarted, *_SCHEDULING_EVENTS
)


@dataclass(frozen=True, slots=True)
class Stall:
    reason: str
    description: str


@dataclass(frozen=True, slots=True)
class Mismatch:
    """Where code and history disagreed: the scheduling event's `event_id`, what the history
    records there and what the code did instead (None: it scheduled nothing there)."""

    event_id: int
    recorded: str
    called: str | None


@dataclass
class ExecutionResult:
    """What one step decided. `status` is the instance status after the step."""

    new_events: list[ev.HistoryEvent]
    actions: list[act.Action]
    status: str
    custom_status: str | None = None
    completion: act.CompleteOrchestration | None = None
    stall: Stall | None = None
    parent: ev.ParentInfo | None = field(default=None)


class _Stalled(Exception):
    def __init__(self, reason: str, description: str) -> None:
        super().__init__(description)
        self.stall = Stall(reason, description)


class Replay:
    """One run's live state: its bookkeeping, its context, its generator and how far history
    has been fed. The `RunState` is shared with the context; nothing else is."""

    def __init__(self, registry: Registry, instance_id: str, *, compare_fire_at: bool = False) -> None:
        self.state = RunState(instance_id)
        self.ctx = WorkflowContext(self.state)
        #: also a timer whose fire time differs from the recorded one is a mismatch (the
        #: pre-deploy replayer's check; a running instance keeps its recorded timer)
        self.compare_fire_at = compare_fire_at
        #: the first disagreement between code and history, if any
        self.mismatch: Mismatch | None = None
        self.registry = registry
        self.events_applied = 0
        self.completion: act.CompleteOrchestration | None = None
        self.parent: ev.ParentInfo | None = None
        self.name: str | None = None
        self._suspended = False
        self._suspended_buffer: list[ev.HistoryEvent] = []
        self._current_started: ev.OrchestratorStarted | None = None
        self._generator: Generator[Task[Any], Any, Any] | None = None
        self._awaited: Task[Any] | None = None
        #: what the run's ending asked for: continue_as_new(save_events=), terminate(recursive=)
        self._save_events = False
        self._terminate_recursive = True
        self._handlers: dict[type[ev.HistoryEvent], Callable[[Any], None]] = {
            ev.ExecutionStarted: self._apply_execution_started,
            ev.OrchestratorStarted: self._apply_orchestrator_started,
            ev.TaskScheduled: self._apply_task_scheduled,
            ev.TaskCompleted: self._apply_task_completed,
            ev.TaskFailed: self._apply_task_failed,
            ev.TimerCreated: self._apply_timer_created,
            ev.TimerFired: self._apply_timer_fired,
            ev.SubOrchestrationInstanceCreated: self._apply_sub_orchestration_created,
            ev.SubOrchestrationInstanceCompleted: self._apply_task_completed,
            ev.SubOrchestrationInstanceFailed: self._apply_task_failed,
            ev.EventRaised: self._apply_event_raised,
            ev.ExecutionSuspended: self._apply_execution_suspended,
            ev.ExecutionResumed: self._apply_execution_resumed,
            ev.ExecutionTerminated: self._apply_execution_terminated,
            ev.ExecutionCompleted: _ignore,
            ev.ContinuedAsNew: _ignore,
        }

    # -- the two entry points ----------------------------------------------------------

    def replay(self, old_events: Sequence[ev.HistoryEvent]) -> Stall | None:
        """Feed recorded history; returns a Stall when the code cannot honour it."""
        self.state.is_replaying = True
        try:
            for event in old_events:
                self._apply(event)
            recorded_patches_unused = self.state.unused_patches()
            if recorded_patches_unused:
                raise _Stalled(
                    PATCH_MISMATCH,
                    f"Workflow '{self.name}' ({self.state.instance_id}) recorded patches "
                    f"{sorted(recorded_patches_unused)} that the current code no longer checks; "
                    "deploy code that calls is_patched() for them.",
                )
        except _Stalled as stalled:
            return stalled.stall
        finally:
            self.state.is_replaying = False
            self.events_applied += len(old_events)
        return None

    def step(self, new_events: Sequence[ev.HistoryEvent]) -> ExecutionResult:
        """Apply new events and collect what this step appends and asks for."""
        self.state.step_patches = []
        applied: list[ev.HistoryEvent] = []
        try:
            for event in new_events:
                self._apply(event)
                applied.append(event)
        except _Stalled as stalled:
            return ExecutionResult([], [], STALLED, self.state.custom_status, stall=stalled.stall)
        result = self._result(applied)
        self.events_applied += len(result.new_events)
        return result

    # -- dispatch ----------------------------------------------------------------------

    def _apply(self, event: ev.HistoryEvent) -> None:
        if self.completion is not None:
            self._apply_after_completion(event)
            return
        if self._suspended and not isinstance(event, _NOT_HELD_WHILE_SUSPENDED):
            self._suspended_buffer.append(event)
            return
        try:
            self._handlers[type(event)](event)
            self._resume()
        except _Stalled:
            raise
        except Exception as exc:  # workflow code and determinism failures end the run
            self._fail(exc)

    def _apply_after_completion(self, event: ev.HistoryEvent) -> None:
        """Once the run has ended, only events a continue-as-new carries over and the
        scheduling events recorded in the final step still matter; the latter must match
        what the code did (code that now ends earlier than its history is non-deterministic).
        A run that already failed keeps its first failure."""
        assert self.completion is not None
        if isinstance(event, ev.EventRaised) and self.completion.status == CONTINUED_AS_NEW:
            self.state.buffer_event(event)
        elif self.completion.status != FAILED and isinstance(event, _SCHEDULING_EVENTS):
            try:
                self._handlers[type(event)](event)
            except NonDeterminismError as exc:
                self._fail(exc)

    def _result(self, applied: list[ev.HistoryEvent]) -> ExecutionResult:
        state = self.state
        new_events = [self._with_recorded_version(e) for e in applied]
        actions = state.take_actions()
        if self.completion is not None:
            # As durabletask does: a run that ends cancels what it scheduled but never awaited
            # in its last step; nothing is recorded for it, so a replay matches.
            actions = []
        new_events.extend(_event_for_action(a, state.now) for a in actions)
        # What replaying the SubOrchestrationInstanceCreated events would record, so a
        # cached Replay terminates the same children as a cold one.
        state.open_children.update(
            (a.task_id, (a.instance_id, a.app_id)) for a in actions if isinstance(a, act.CreateSubOrchestration)
        )
        if self.completion is not None:
            completion = self._final_completion()
            if completion.status == TERMINATED and self._terminate_recursive:
                actions.extend(
                    act.TerminateSubOrchestration(child_id, app_id, completion.result)
                    for child_id, app_id in state.open_children.values()
                )
            actions.append(completion)
            new_events.append(_event_for_completion(completion, state.now))
            return ExecutionResult(new_events, actions, completion.status, state.custom_status, completion,
                                   parent=self.parent)
        status = SUSPENDED if self._suspended else RUNNING
        return ExecutionResult(new_events, actions, status, state.custom_status, parent=self.parent)

    def _with_recorded_version(self, event: ev.HistoryEvent) -> ev.HistoryEvent:
        if event is self._current_started:
            return replace(event, version=self.state.version, patches=tuple(self.state.step_patches))
        return event

    def _final_completion(self) -> act.CompleteOrchestration:
        assert self.completion is not None
        if self.completion.status != CONTINUED_AS_NEW:
            return self.completion
        carry = tuple(self.state.unconsumed_events()) if self._save_events else ()
        carry = tuple(sorted(carry, key=lambda e: e.timestamp))
        return replace(self.completion, carryover_events=carry)

    # -- the generator -----------------------------------------------------------------

    def _resume(self) -> None:
        while self.completion is None and self._generator is not None:
            awaited = self._awaited
            if awaited is None or not awaited.is_complete:
                break
            try:
                if awaited.is_failed:
                    nxt = self._generator.throw(awaited.get_exception())
                else:
                    nxt = self._generator.send(awaited._result)
            except StopIteration as stop:
                self._complete_returned(stop.value)
                return
            self._await(nxt)

    def _await(self, task: Any) -> None:
        if not isinstance(task, Task):
            raise TypeError(
                f"Workflow '{self.name}' yielded a {type(task).__name__}, not a task; "
                "yield the result of call_activity, create_timer, when_all and the like."
            )
        self._awaited = task
        if self.state.continue_as_new is not None:
            self._complete_returned(None)

    def _complete_returned(self, value: Any) -> None:
        if self.state.continue_as_new is not None:
            new_input, self._save_events = self.state.continue_as_new
            self.completion = act.CompleteOrchestration(CONTINUED_AS_NEW, new_input, parent=self.parent,
                                                        propagated=self.state.propagated)
            return
        result = to_json(value, what=f"Output of workflow '{self.name}'")
        self.completion = act.CompleteOrchestration(COMPLETED, result, parent=self.parent)

    def _fail(self, exc: BaseException) -> None:
        self.completion = act.CompleteOrchestration(FAILED, failure=failure_from_exception(exc), parent=self.parent)

    # -- one handler per event type ----------------------------------------------------

    def _apply_orchestrator_started(self, event: ev.OrchestratorStarted) -> None:
        self.state.now = clock.naive_utc(event.timestamp)
        self._current_started = event
        if self.state.is_replaying:
            if event.version is not None:
                self.state.version = event.version
            self.state.recorded_patches.update(event.patches)

    def _apply_execution_started(self, event: ev.ExecutionStarted) -> None:
        self.name, self.parent = event.name, event.parent
        self.state.propagated = event.propagated
        recorded = self.state.version if self.state.is_replaying else None
        try:
            fn, version = self.registry.workflow(event.name, recorded)
        except VersionNotAvailable as exc:
            raise _Stalled(VERSION_NOT_AVAILABLE, f"{self.state.instance_id}: {exc}") from exc
        except OrchestratorNotRegisteredError as exc:
            self._fail(exc)
            return
        self.state.version = version
        result = call_with_input(fn, self.ctx, from_json(event.input))
        if inspect.isgenerator(result):
            self._generator = result
            try:
                first = next(result)
            except StopIteration as stop:
                self._complete_returned(stop.value)
                return
            self._await(first)
        else:
            self._complete_returned(result)

    def _apply_task_scheduled(self, event: ev.TaskScheduled) -> None:
        self._match(event.event_id, act.ScheduleTask, "call_activity", event.name)

    def _apply_timer_created(self, event: ev.TimerCreated) -> None:
        action = self._match(event.event_id, act.CreateTimer, "create_timer", None)
        assert isinstance(action, act.CreateTimer)
        if self.compare_fire_at and action.fire_at != event.fire_at:
            self._mismatch(event.event_id, f"create_timer(fire_at={event.fire_at.isoformat()})",
                           f"create_timer(fire_at={action.fire_at.isoformat()})")

    def _apply_sub_orchestration_created(self, event: ev.SubOrchestrationInstanceCreated) -> None:
        self._match(event.event_id, act.CreateSubOrchestration, "call_child_workflow", event.name)
        self.state.open_children[event.event_id] = (event.instance_id, event.app_id)

    def _apply_task_completed(self, event: ev.TaskCompleted | ev.SubOrchestrationInstanceCompleted) -> None:
        task = self._take_task(event.task_id)
        if task is not None:
            task.complete(from_json(event.result))

    def _apply_task_failed(self, event: ev.TaskFailed | ev.SubOrchestrationInstanceFailed) -> None:
        task = self._take_task(event.task_id)
        if isinstance(task, ScheduledTask):
            task.on_failed(event.failure, event.task_id)

    def _apply_timer_fired(self, event: ev.TimerFired) -> None:
        task = self.state.open_task(event.timer_id)
        if not isinstance(task, TimerTask):
            return  # forged, early or redelivered: never reaches workflow code, takes no task
        del self.state.pending_tasks[event.timer_id]
        task.complete(None)

    def _apply_event_raised(self, event: ev.EventRaised) -> None:
        waiters = self.state.event_waiters.get(event.name.casefold())
        if waiters:
            waiters.popleft().complete(from_json(event.input))
        else:
            self.state.buffer_event(event)

    def _apply_execution_suspended(self, event: ev.ExecutionSuspended) -> None:
        self._suspended = True

    def _apply_execution_resumed(self, event: ev.ExecutionResumed) -> None:
        self._suspended = False
        buffered, self._suspended_buffer = self._suspended_buffer, []
        for held in buffered:
            self._apply(held)

    def _apply_execution_terminated(self, event: ev.ExecutionTerminated) -> None:
        self._terminate_recursive = event.recursive
        self.completion = act.CompleteOrchestration(TERMINATED, event.output, parent=self.parent)

    # -- what the service asks ---------------------------------------------------------

    def expected_completion(self, task_id: int) -> tuple[str, str | None] | None:
        """What a completion for `task_id` may be: ("timer", None), ("activity", app_id) or
        ("child", app_id), app_id None meaning this workflow's own app; None when no such
        task is open (never scheduled, already completed, or scheduled in this very step)."""
        task = self.state.open_task(task_id)
        if task is None:
            return None
        if any(ev.result_task_id(e) == task_id for e in self._suspended_buffer):
            return None  # its result already came while the run is suspended (a redelivery)
        if isinstance(task, TimerTask):
            return ("timer", None)
        action = getattr(task, "action", None)
        if isinstance(action, act.ScheduleTask):
            return ("activity", action.app_id)
        if isinstance(action, act.CreateSubOrchestration):
            return ("child", action.app_id)
        return None

    def open_activity(self, task_id: int) -> str | None:
        """The name of the activity call that task `task_id` waits for, if one is open."""
        action = getattr(self.state.pending_tasks.get(task_id), "action", None)
        return action.name if isinstance(action, act.ScheduleTask) else None

    # -- helpers -----------------------------------------------------------------------

    def _take_task(self, task_id: int) -> Any:
        """The task a completion is for; None for a task never scheduled or already done
        (a forged or redelivered completion never reaches workflow code)."""
        task = self.state.open_task(task_id)
        if task is None or isinstance(task, TimerTask):
            return None
        del self.state.pending_tasks[task_id]
        self.state.open_children.pop(task_id, None)
        return task

    def _match(self, event_id: int, kind: type[act.Action], call: str, name: str | None) -> act.Action:
        """Pair a recorded scheduling event with the action the code took at that sequence."""
        action = self.state.pending_actions.pop(event_id, None)
        if action is None:
            self._mismatch(event_id, f"{call}({name or ''})", None)
        action_name = getattr(action, "name", None)
        if not isinstance(action, kind) or (name is not None and action_name != name):
            self._mismatch(event_id, f"{call}({name or ''})", describe_action(action))
        return action

    def _mismatch(self, event_id: int, recorded: str, called: str | None) -> NoReturn:
        self.mismatch = self.mismatch or Mismatch(event_id, recorded, called)
        if called is None:
            raise NonDeterminismError(
                f"Workflow '{self.name}' ({self.state.instance_id}): history records {recorded} at sequence "
                f"{event_id}, but the current code scheduled nothing there. "
                "The workflow code changed under a running instance; restore it or use is_patched()."
            )
        raise NonDeterminismError(
            f"Workflow '{self.name}' ({self.state.instance_id}): at sequence {event_id} history records "
            f"{recorded} but the current code called {called}. "
            "The workflow code changed under a running instance; restore it or use is_patched()."
        )


def _ignore(event: ev.HistoryEvent) -> None:
    return None


def describe_action(action: act.Action) -> str:
    """An action as the workflow code wrote it: `call_activity(charge)`, `create_timer()`."""
    if isinstance(action, act.ScheduleTask):
        return f"call_activity({action.name})"
    if isinstance(action, act.CreateSubOrchestration):
        return f"call_child_workflow({action.name})"
    if isinstance(action, act.CreateTimer):
        return "create_timer()"
    return type(action).__name__


def _event_for_action(action: act.Action, now: Any) -> ev.HistoryEvent:
    if isinstance(action, act.ScheduleTask):
        return ev.TaskScheduled(now, action.task_id, action.name, action.input, action.app_id, action.attempt)
    if isinstance(action, act.CreateTimer):
        return ev.TimerCreated(now, action.timer_id, action.fire_at)
    assert isinstance(action, act.CreateSubOrchestration)
    return ev.SubOrchestrationInstanceCreated(
        now, action.task_id, action.name, action.instance_id, action.input, action.app_id, action.attempt
    )


def _event_for_completion(completion: act.CompleteOrchestration, now: Any) -> ev.HistoryEvent:
    if completion.status == CONTINUED_AS_NEW:
        return ev.ContinuedAsNew(now, completion.result, completion.carryover_events)
    return ev.ExecutionCompleted(now, completion.status, completion.result, completion.failure)


def execute(
    registry: Registry,
    instance_id: str,
    old_events: Sequence[ev.HistoryEvent],
    new_events: Sequence[ev.HistoryEvent],
) -> ExecutionResult:
    """Replay `old_events`, apply `new_events`; never raises."""
    replay = Replay(registry, instance_id)
    stall = replay.replay(old_events)
    if stall is not None:
        return ExecutionResult([], [], STALLED, stall=stall)
    return replay.step(new_events)

