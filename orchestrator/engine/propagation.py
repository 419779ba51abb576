"""History propagation (Dapr 1.18): what a caller passes down to the activities and child
workflows it calls, and the read-only view the callee gets of it.

The propagated history travels as data (JSON text): on the activity request, or on the
child's ExecutionStarted event. It is a list of chunks, one per workflow of the lineage, each
holding that workflow's own events exactly as they were stored, and (with signing on) an
attestation by the app that authored it. The service builds it from stored history; the
engine only parses it for `get_propagated_history()`. Standard library only.

    {"scope": "LINEAGE" | "OWN_HISTORY",
     "chunks": [{"app_id", "instance_id", "name", "generation",
                 "events": [[sequence, type, payload, timestamp], ...],
                 "attestation": {...} | null}, ...]}

OWN_HISTORY passes the caller's own chunk only; LINEAGE also passes on the chunks the caller
itself received, oldest first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from orchestrator.engine import codec
from orchestrator.engine import events as ev


class PropagationScope(Enum):
    OWN_HISTORY = "OWN_HISTORY"
    LINEAGE = "LINEAGE"


class PropagationNotFoundError(LookupError):
    """The propagated history has no workflow, activity or child workflow by that name."""


def scope_name(scope: Any) -> str | None:
    """'OWN_HISTORY' / 'LINEAGE' for a PropagationScope (or its name); None for None."""
    if scope is None:
        return None
    value = getattr(scope, "value", scope)
    if value not in ("OWN_HISTORY", "LINEAGE"):
        raise ValueError(f"propagation must be PropagationScope.OWN_HISTORY or LINEAGE, not {scope!r}")
    return str(value)


@dataclass(frozen=True)
class ActivityResult:
    """One activity call seen in a propagated history. `input` and `output` are JSON text."""

    name: str
    task_id: int
    input: str | None = None
    output: str | None = None
    failed: bool = False
    app_id: str | None = None
    started: bool = True
    completed: bool = False
    error: str | None = None


@dataclass(frozen=True)
class ChildWorkflowResult:
    name: str
    instance_id: str
    input: str | None = None
    output: str | None = None
    failed: bool = False
    app_id: str | None = None
    started: bool = True
    completed: bool = False
    error: str | None = None


@dataclass(frozen=True)
class WorkflowResult:
    """One workflow of the lineage and what it did, in order."""

    name: str
    instance_id: str
    app_id: str | None = None
    activities: tuple[ActivityResult, ...] = ()
    child_workflows: tuple[ChildWorkflowResult, ...] = ()
    input: str | None = None
    events: tuple[ev.HistoryEvent, ...] = ()
    verified: bool = False

    def get_activities_by_name(self, name: str) -> list[ActivityResult]:
        return [a for a in self.activities if a.name == name]

    def get_last_activity_by_name(self, name: str) -> ActivityResult:
        found = self.get_activities_by_name(name)
        if not found:
            raise PropagationNotFoundError(f"No activity named '{name}' in workflow '{self.name}' ({self.instance_id}).")
        return found[-1]

    def get_child_workflows_by_name(self, name: str) -> list[ChildWorkflowResult]:
        return [c for c in self.child_workflows if c.name == name]

    def get_last_child_workflow_by_name(self, name: str) -> ChildWorkflowResult:
        found = self.get_child_workflows_by_name(name)
        if not found:
            raise PropagationNotFoundError(
                f"No child workflow named '{name}' in workflow '{self.name}' ({self.instance_id}).")
        return found[-1]


@dataclass(frozen=True)
class PropagatedHistory:
    scope: PropagationScope
    workflows: tuple[WorkflowResult, ...] = ()
    events: tuple[Any, ...] = field(default=())

    def get_app_ids(self) -> list[str]:
        return sorted({w.app_id for w in self.workflows if w.app_id})

    def get_workflows(self) -> list[WorkflowResult]:
        return list(self.workflows)

    def get_workflows_by_name(self, name: str) -> list[WorkflowResult]:
        return [w for w in self.workflows if w.name == name]

    def get_last_workflow_by_name(self, name: str) -> WorkflowResult:
        found = self.get_workflows_by_name(name)
        if not found:
            raise PropagationNotFoundError(f"No workflow named '{name}' in the propagated history.")
        return found[-1]

    def timeline(self) -> list[tuple[str, str, str | None, bool]]:
        """(kind, name, app_id, completed) for each workflow and each call it made, in order:
        what access policies' `requires` are matched against."""
        out: list[tuple[str, str, str | None, bool]] = []
        for w in self.workflows:
            out.append(("workflow", w.name, w.app_id, True))
            calls: list[tuple[int, tuple[str, str, str | None, bool]]] = []
            calls += [(a.task_id, ("activity", a.name, a.app_id or w.app_id, a.completed)) for a in w.activities]
            for c in w.child_workflows:
                calls.append((_child_order(w, c), ("childWorkflow", c.name, c.app_id or w.app_id, c.completed)))
            out.extend(entry for _, entry in sorted(calls, key=lambda x: x[0]))
        return out


def _child_order(w: WorkflowResult, c: ChildWorkflowResult) -> int:
    for e in w.events:
        if isinstance(e, ev.SubOrchestrationInstanceCreated) and e.instance_id == c.instance_id:
            return e.event_id
    return 1 << 30


def parse(text: str | None, *, verified: bool = False) -> PropagatedHistory | None:
    """The PropagatedHistory in wire text; None for None. Raises ValueError if malformed."""
    if not text:
        return None
    data = json.loads(text)
    scope = PropagationScope(data["scope"])
    workflows = []
    all_events: list[ev.HistoryEvent] = []
    for chunk in data.get("chunks", []):
        events = tuple(codec.decode(e[1], e[2]) for e in chunk.get("events", []))
        all_events.extend(events)
        workflows.append(_workflow_of(chunk, events, verified))
    return PropagatedHistory(scope, tuple(workflows), tuple(all_events))


def _workflow_of(chunk: dict[str, Any], events: tuple[ev.HistoryEvent, ...], verified: bool) -> WorkflowResult:
    app_id = chunk.get("app_id")
    activities: dict[int, ActivityResult] = {}
    children: dict[int, ChildWorkflowResult] = {}
    started_input = None
    for e in events:
        if isinstance(e, ev.ExecutionStarted):
            started_input = e.input
        elif isinstance(e, ev.TaskScheduled):
            activities[e.event_id] = ActivityResult(e.name, e.event_id, e.input, app_id=e.app_id or app_id)
        elif isinstance(e, ev.SubOrchestrationInstanceCreated):
            children[e.event_id] = ChildWorkflowResult(e.name, e.instance_id, e.input, app_id=e.app_id or app_id)
        elif isinstance(e, (ev.TaskCompleted, ev.SubOrchestrationInstanceCompleted)):
            _finish(activities, children, e.task_id, output=e.result, completed=True)
        elif isinstance(e, (ev.TaskFailed, ev.SubOrchestrationInstanceFailed)):
            _finish(activities, children, e.task_id, failed=True, error=e.failure.message)
    return WorkflowResult(
        chunk.get("name", ""), chunk.get("instance_id", ""), app_id,
        tuple(activities[k] for k in sorted(activities)), tuple(children[k] for k in sorted(children)),
        started_input, events, verified,
    )


def _finish(activities: dict[int, ActivityResult], children: dict[int, ChildWorkflowResult], task_id: int,
            **changes: Any) -> None:
    from dataclasses import replace

    if task_id in activities:
        activities[task_id] = replace(activities[task_id], **changes)
    elif task_id in children:
        children[task_id] = replace(children[task_id], **changes)
