"""WorkflowStatus and WorkflowState, as Dapr's SDK shapes them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from orchestrator.engine.events import FailureDetails


class WorkflowStatus(Enum):
    UNKNOWN = 0
    RUNNING = 1
    COMPLETED = 2
    FAILED = 3
    TERMINATED = 4
    PENDING = 5
    SUSPENDED = 6
    STALLED = 7

    @classmethod
    def from_name(cls, name: str) -> WorkflowStatus:
        return cls.__members__.get(name, cls.UNKNOWN)


class WorkflowFailedError(Exception):
    """`WorkflowState.raise_if_failed()` on a FAILED workflow."""


@dataclass(frozen=True)
class WorkflowState:
    instance_id: str
    name: str
    runtime_status: WorkflowStatus
    created_at: datetime
    last_updated_at: datetime
    serialized_input: str | None = None
    serialized_output: str | None = None
    serialized_custom_status: str | None = None
    failure_details: FailureDetails | None = None

    def to_json(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "instance_id": self.instance_id,
            "name": self.name,
            "runtime_status": self.runtime_status.name,
            "created_at": self.created_at.isoformat(),
            "last_updated_at": self.last_updated_at.isoformat(),
            "serialized_input": self.serialized_input,
            "serialized_output": self.serialized_output,
            "serialized_custom_status": self.serialized_custom_status,
        }
        if self.failure_details is not None:
            state["failure_details"] = {
                "message": self.failure_details.message,
                "error_type": self.failure_details.error_type,
                "stack_trace": self.failure_details.stack_trace,
            }
        return state

    def raise_if_failed(self) -> None:
        if self.runtime_status == WorkflowStatus.FAILED:
            message = self.failure_details.message if self.failure_details else "unknown failure"
            raise WorkflowFailedError(f"Workflow '{self.instance_id}' failed: {message}")

    def __str__(self) -> str:
        return json.dumps(self.to_json())
