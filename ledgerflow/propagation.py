"""History propagation types (Dapr 1.18): what a caller passes down to what it calls."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class PropagationScope(Enum):
    OWN_HISTORY = "OWN_HISTORY"
    LINEAGE = "LINEAGE"


class PropagationNotFoundError(LookupError):
    """The propagated history has no workflow or activity by that name."""


@dataclass(frozen=True)
class ActivityResult:
    name: str
    task_id: int
    input: Any = None
    output: Any = None
    failed: bool = False
    app_id: str | None = None


@dataclass(frozen=True)
class ChildWorkflowResult:
    name: str
    instance_id: str
    input: Any = None
    output: Any = None
    failed: bool = False
    app_id: str | None = None


@dataclass(frozen=True)
class WorkflowResult:
    name: str
    instance_id: str
    app_id: str | None = None
    activities: tuple[ActivityResult, ...] = ()
    child_workflows: tuple[ChildWorkflowResult, ...] = ()

    def get_activities_by_name(self, name: str) -> list[ActivityResult]:
        return [a for a in self.activities if a.name == name]

    def get_last_activity_by_name(self, name: str) -> ActivityResult:
        found = self.get_activities_by_name(name)
        if not found:
            raise PropagationNotFoundError(f"No activity named '{name}' in workflow '{self.name}' ({self.instance_id}).")
        return found[-1]

    def get_child_workflows_by_name(self, name: str) -> list[ChildWorkflowResult]:
        return [c for c in self.child_workflows if c.name == name]


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
