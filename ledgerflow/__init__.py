"""Ledgerflow: durable workflows on Celery, with the names of Dapr's Python workflow SDK.

Change `import dapr.ext.workflow as wf` to `import ledgerflow as wf` and the same code runs.
"""

from ledgerflow.client import DaprWorkflowClient
from ledgerflow.propagation import (
    ActivityResult,
    ChildWorkflowResult,
    PropagatedHistory,
    PropagationNotFoundError,
    PropagationScope,
    WorkflowResult,
)
from ledgerflow.registration import alternate_name
from ledgerflow.runtime import WorkflowRuntime
from ledgerflow.state import WorkflowState, WorkflowStatus
from orchestrator.engine.activity import WorkflowActivityContext
from orchestrator.engine.context import WorkflowContext as DaprWorkflowContext
from orchestrator.engine.errors import NonRetryableError, TaskFailedError
from orchestrator.engine.retry import RetryPolicy
from orchestrator.engine.tasks import when_all, when_any

__all__ = [
    "ActivityResult",
    "ChildWorkflowResult",
    "DaprWorkflowClient",
    "DaprWorkflowContext",
    "NonRetryableError",
    "PropagatedHistory",
    "PropagationNotFoundError",
    "PropagationScope",
    "RetryPolicy",
    "TaskFailedError",
    "WorkflowActivityContext",
    "WorkflowResult",
    "WorkflowRuntime",
    "WorkflowState",
    "WorkflowStatus",
    "alternate_name",
    "when_all",
    "when_any",
]
