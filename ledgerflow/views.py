"""The JSON shapes of instances that the HTTP API and the CLI share (Dapr's GET shape)."""

from __future__ import annotations

from typing import Any

from ledgerflow.history import rfc3339
from ledgerflow.management import InstanceSummary
from ledgerflow.state import WorkflowState, WorkflowStatus


def state_json(state: WorkflowState) -> dict[str, Any]:
    """Dapr's GET shape; a property only when it has a value, the output only when not failed.
    STALLED shows as STALLED (Dapr shows UNKNOWN), with the reason as its failure."""
    props: dict[str, str] = {}
    if state.serialized_input is not None:
        props["dapr.workflow.input"] = state.serialized_input
    if state.serialized_custom_status is not None:
        props["dapr.workflow.custom_status"] = state.serialized_custom_status
    if state.failure_details is not None:
        props["dapr.workflow.failure.error_type"] = state.failure_details.error_type
        props["dapr.workflow.failure.error_message"] = state.failure_details.message
    elif state.runtime_status != WorkflowStatus.FAILED and state.serialized_output is not None:
        props["dapr.workflow.output"] = state.serialized_output
    return {
        "instanceID": state.instance_id,
        "workflowName": state.name,
        "createdAt": rfc3339(state.created_at),
        "lastUpdatedAt": rfc3339(state.last_updated_at),
        "runtimeStatus": state.runtime_status.name,
        "properties": props,
    }


def summary_json(row: InstanceSummary) -> dict[str, Any]:
    """A listed instance: the GET shape plus its app (and parent, for a child workflow)."""
    body = state_json(row.state)
    body["appID"] = row.app_id
    if row.parent_instance_id:
        body["parentInstanceID"] = row.parent_instance_id
    return body
