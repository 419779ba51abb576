"""The replayer of a sidecar app's instance: the app's own Dapr SDK replays, over its stream.

`RemoteReplay` has the interface of the engine's `Replay` (`replay`, `step`,
`events_applied`, `expected_completion`, `open_activity`), so `OrchestratorService` steps a
sidecar app's instances exactly as its own: under the instance lock, in one transaction. Its
`step` sends the past events and the new ones to a connected SDK as an orchestrator work item
and turns the answer into the `ExecutionResult` a local replay would have produced. It keeps
the history it was fed, so the service's cache of live replayers saves the next step from
loading it again; the SDK itself holds nothing between work items.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ledgerflow.grpc_api import protocol as p
from ledgerflow.sidecar import actions
from ledgerflow.sidecar.work_items import WorkItems, workflow_key
from orchestrator.engine import actions as act
from orchestrator.engine import events as ev
from orchestrator.engine.executor import (
    PATCH_MISMATCH,
    RUNNING,
    STALLED,
    SUSPENDED,
    TERMINATED,
    ExecutionResult,
    Stall,
)

_SCHEDULES = {ev.TaskScheduled: "activity", ev.TimerCreated: "timer", ev.SubOrchestrationInstanceCreated: "child"}


class RemoteReplay:
    """One instance's history, replayed by the app's SDK at each step."""

    def __init__(self, work: WorkItems, instance_id: str, timeout: float) -> None:
        self.work = work
        self.instance_id = instance_id
        self.timeout = timeout
        self.events_applied = 0
        self.name: str | None = None
        self.parent: ev.ParentInfo | None = None
        self._past: list[Any] = []
        #: task id -> (kind, app_id, name) of every scheduled task without a result yet
        self._open: dict[int, tuple[str, str | None, str | None]] = {}
        #: task id -> instance ID of each child workflow created
        self._child_ids: dict[int, str] = {}
        self._suspended = False
        #: the patches the history records as taken
        self._patches: set[str] = set()

    # -- Replay's interface ------------------------------------------------------------

    def replay(self, history: Sequence[ev.HistoryEvent]) -> Stall | None:
        """Keep the recorded history (the SDK replays it at the next step)."""
        self._record(history)
        self.events_applied += len(history)
        return None

    def step(self, new_events: Sequence[ev.HistoryEvent]) -> ExecutionResult:
        """Have the app's SDK run the new events; raises the broker's errors (NoAppConnected,
        StreamLost, AppTimeout), which roll the step back (and this replayer is dropped)."""
        started = new_events[0]
        assert isinstance(started, ev.OrchestratorStarted), "a step opens with OrchestratorStarted"
        now = started.timestamp
        self._note_all(new_events)
        news = [p.event_message(e, self.instance_id) for e in new_events]
        request = p.service_pb.WorkflowRequest(instanceId=self.instance_id, pastEvents=self._past, newEvents=news)
        what = f"workflow '{self.name or '?'}' ({self.instance_id})"
        response = self.work.call(lambda token: p.service_pb.WorkItem(workflowRequest=request, completionToken=token),
                                  self.timeout, what, workflow_key(self.instance_id))
        decided = actions.decide(response, now, self.parent)
        custom_status = p.optional_text(response, "customStatus")
        if decided.version_not_available:
            return ExecutionResult([], [], STALLED, custom_status, stall=Stall(
                actions.VERSION_NOT_AVAILABLE, f"{what}: the app has no version of this workflow that can run its "
                "recorded history; deploy one that can"))
        patches = tuple(response.version.patches) if response.HasField("version") else ()
        dropped = self._patches - set(patches)
        if dropped:  # as the engine: code that no longer checks a patch its history took cannot replay it
            return ExecutionResult([], [], STALLED, custom_status, stall=Stall(PATCH_MISMATCH, (
                f"{what} recorded patches {sorted(dropped)} that the app's code no longer checks; deploy code "
                "that calls is_patched() for them")))
        if response.HasField("version"):
            started = replace(started, version=response.version.name or None, patches=patches)
        self._patches.update(patches)
        result = self._result([started, *new_events[1:]], decided, now, custom_status)
        self._note_all(result.new_events[len(new_events):])
        self._past.extend(p.event_message(e, self.instance_id) for e in result.new_events)
        self.events_applied += len(result.new_events)
        return result

    def expected_completion(self, task_id: int) -> tuple[str, str | None] | None:
        """As `Replay.expected_completion`: what may complete `task_id`, None when no such
        task is open."""
        entry = self._open.get(task_id)
        return None if entry is None else (entry[0], entry[1])

    def open_activity(self, task_id: int) -> str | None:
        entry = self._open.get(task_id)
        return entry[2] if entry is not None and entry[0] == "activity" else None

    # -- helpers -----------------------------------------------------------------------

    def _result(self, applied: list[ev.HistoryEvent], decided: actions.Decided, now: Any,
                custom_status: str | None) -> ExecutionResult:
        completion = decided.completion
        if completion is None:
            status = SUSPENDED if self._suspended else RUNNING
            return ExecutionResult([*applied, *decided.events], decided.actions, status, custom_status,
                                   parent=self.parent)
        # As the engine: a run that ends cancels what it scheduled in its last step.
        ended: list[act.Action] = []
        if completion.status == TERMINATED and self._recursive_termination(applied):
            ended = [act.TerminateSubOrchestration(self._child_ids[t], app_id, completion.result)
                     for t, (kind, app_id, _) in self._open.items() if kind == "child" and t in self._child_ids]
        return ExecutionResult([*applied, actions.completion_event(completion, now)], [*ended, completion],
                               completion.status, custom_status, completion, parent=self.parent)

    @staticmethod
    def _recursive_termination(applied: list[ev.HistoryEvent]) -> bool:
        return any(isinstance(e, ev.ExecutionTerminated) and e.recursive for e in applied)

    def _note_all(self, events: Sequence[ev.HistoryEvent]) -> None:
        for event in events:
            self._note(event)

    def _record(self, events: Sequence[ev.HistoryEvent]) -> None:
        self._note_all(events)
        self._past.extend(p.event_message(e, self.instance_id) for e in events)

    def _note(self, event: ev.HistoryEvent) -> None:
        """Follow what the history says is open, suspended, and who started the run."""
        if isinstance(event, ev.ExecutionStarted):
            self.name, self.parent = event.name, event.parent
        elif type(event) in _SCHEDULES:
            kind = _SCHEDULES[type(event)]
            app_id = getattr(event, "app_id", None)
            self._open[event.event_id] = (kind, app_id, getattr(event, "name", None))  # type: ignore[attr-defined]
            if isinstance(event, ev.SubOrchestrationInstanceCreated):
                self._child_ids[event.event_id] = event.instance_id
        elif isinstance(event, ev.OrchestratorStarted):
            self._patches.update(event.patches)
        elif isinstance(event, ev.ExecutionSuspended):
            self._suspended = True
        elif isinstance(event, ev.ExecutionResumed):
            self._suspended = False
        else:
            task_id = ev.result_task_id(event)
            if task_id is not None:
                self._open.pop(task_id, None)
