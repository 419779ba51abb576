"""Export freeze for the SDK facade: a public name that disappears fails here.

`import ledgerflow as wf` must keep offering what `import dapr.ext.workflow as wf` offers.
Adding names is fine; removing or renaming one breaks users and must be deliberate (update
the lists below in the same change, and say so in the changelog).
"""

from __future__ import annotations

import importlib
import inspect
from types import ModuleType

import pytest

FROZEN_EXPORTS = [
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

#: Objects the facade must re-export unchanged from the engine (not copies, not wrappers).
SAME_AS_ENGINE = {
    "DaprWorkflowContext": ("orchestrator.engine.context", "WorkflowContext"),
    "WorkflowActivityContext": ("orchestrator.engine.activity", "WorkflowActivityContext"),
    "RetryPolicy": ("orchestrator.engine.retry", "RetryPolicy"),
    "TaskFailedError": ("orchestrator.engine.errors", "TaskFailedError"),
    "NonRetryableError": ("orchestrator.engine.errors", "NonRetryableError"),
    "when_all": ("orchestrator.engine.tasks", "when_all"),
    "when_any": ("orchestrator.engine.tasks", "when_any"),
    "alternate_name": ("ledgerflow.registration", "alternate_name"),
}

FROZEN_MEMBERS = {
    "DaprWorkflowContext": [
        "instance_id",
        "current_utc_datetime",
        "is_replaying",
        "set_custom_status",
        "create_timer",
        "call_activity",
        "call_child_workflow",
        "wait_for_external_event",
        "continue_as_new",
        "is_patched",
        "new_guid",
        "random",
        "now",
        "get_propagated_history",
    ],
    "WorkflowActivityContext": ["workflow_id", "task_id", "task_execution_id", "attempt", "get_propagated_history"],
    "WorkflowRuntime": [
        "register_workflow",
        "register_activity",
        "register_versioned_workflow",
        "workflow",
        "activity",
        "versioned_workflow",
        "start",
        "shutdown",
    ],
    "DaprWorkflowClient": [
        "schedule_new_workflow",
        "get_workflow_state",
        "wait_for_workflow_start",
        "wait_for_workflow_completion",
        "raise_workflow_event",
        "terminate_workflow",
        "pause_workflow",
        "resume_workflow",
        "purge_workflow",
    ],
    "WorkflowState": [
        "instance_id",
        "name",
        "runtime_status",
        "created_at",
        "last_updated_at",
        "serialized_input",
        "serialized_output",
        "serialized_custom_status",
        "failure_details",
        "to_json",
    ],
    "TaskFailedError": ["details"],
}

FROZEN_STATUSES = ["UNKNOWN", "RUNNING", "COMPLETED", "FAILED", "TERMINATED", "PENDING", "SUSPENDED", "STALLED"]

FROZEN_PARAMETERS = {
    ("DaprWorkflowContext", "call_activity"): ["self", "activity", "input", "retry_policy", "app_id"],
    ("DaprWorkflowContext", "call_child_workflow"): [
        "self",
        "workflow",
        "input",
        "instance_id",
        "retry_policy",
        "app_id",
    ],
    ("DaprWorkflowContext", "wait_for_external_event"): ["self", "name", "timeout"],
    ("DaprWorkflowContext", "continue_as_new"): ["self", "new_input", "save_events"],
    ("DaprWorkflowContext", "create_timer"): ["self", "fire_at"],
    ("RetryPolicy", "__init__"): [
        "self",
        "first_retry_interval",
        "max_number_of_attempts",
        "backoff_coefficient",
        "max_retry_interval",
        "retry_timeout",
    ],
}


@pytest.fixture(scope="module")
def ledgerflow() -> ModuleType:
    return importlib.import_module("ledgerflow")


@pytest.mark.parametrize("name", FROZEN_EXPORTS)
def test_public_name_is_still_exported(ledgerflow: ModuleType, name: str) -> None:
    assert name in ledgerflow.__all__
    assert getattr(ledgerflow, name) is not None


def test_all_lists_only_names_that_exist(ledgerflow: ModuleType) -> None:
    assert [n for n in ledgerflow.__all__ if not hasattr(ledgerflow, n)] == []


@pytest.mark.parametrize("name", sorted(SAME_AS_ENGINE))
def test_facade_reexports_the_engine_object_itself(ledgerflow: ModuleType, name: str) -> None:
    module, attr = SAME_AS_ENGINE[name]
    assert getattr(ledgerflow, name) is getattr(importlib.import_module(module), attr)


@pytest.mark.parametrize("owner", sorted(FROZEN_MEMBERS))
def test_public_members_are_still_there(ledgerflow: ModuleType, owner: str) -> None:
    cls = getattr(ledgerflow, owner)
    fields = set(getattr(cls, "__dataclass_fields__", {}))
    missing = [m for m in FROZEN_MEMBERS[owner] if not hasattr(cls, m) and m not in fields]
    assert missing == []


def test_workflow_status_members(ledgerflow: ModuleType) -> None:
    assert [m for m in FROZEN_STATUSES if m not in ledgerflow.WorkflowStatus.__members__] == []


@pytest.mark.parametrize(("owner", "method"), sorted(FROZEN_PARAMETERS))
def test_keyword_parameters_keep_their_names(ledgerflow: ModuleType, owner: str, method: str) -> None:
    params = list(inspect.signature(getattr(getattr(ledgerflow, owner), method)).parameters)
    assert [p for p in FROZEN_PARAMETERS[(owner, method)] if p not in params] == []
