"""Dapr's workflow error codes, statuses and messages, and the checks that raise them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ledgerflow.errors import InvalidInstanceIdError, validate_instance_id

MAX_NAME_LENGTH = 256
_APP_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
COMPONENT = "dapr"

# Dapr's codes (pkg/messages) and the few Ledgerflow adds for what Dapr has no route for.
ERR_INSTANCE_ID_PROVIDED_MISSING = "ERR_INSTANCE_ID_PROVIDED_MISSING"
ERR_INSTANCE_ID_TOO_LONG = "ERR_INSTANCE_ID_TOO_LONG"
ERR_INSTANCE_ID_INVALID = "ERR_INSTANCE_ID_INVALID"
ERR_INSTANCE_ID_NOT_FOUND = "ERR_INSTANCE_ID_NOT_FOUND"
ERR_WORKFLOW_NAME_MISSING = "ERR_WORKFLOW_NAME_MISSING"
ERR_WORKFLOW_EVENT_NAME_MISSING = "ERR_WORKFLOW_EVENT_NAME_MISSING"
ERR_WORKFLOW_COMPONENT_MISSING = "ERR_WORKFLOW_COMPONENT_MISSING"
ERR_WORKFLOW_COMPONENT_NOT_FOUND = "ERR_WORKFLOW_COMPONENT_NOT_FOUND"
ERR_START_WORKFLOW = "ERR_START_WORKFLOW"
ERR_GET_WORKFLOW = "ERR_GET_WORKFLOW"
ERR_TERMINATE_WORKFLOW = "ERR_TERMINATE_WORKFLOW"
ERR_RAISE_EVENT_WORKFLOW = "ERR_RAISE_EVENT_WORKFLOW"
ERR_PAUSE_WORKFLOW = "ERR_PAUSE_WORKFLOW"
ERR_RESUME_WORKFLOW = "ERR_RESUME_WORKFLOW"
ERR_PURGE_WORKFLOW = "ERR_PURGE_WORKFLOW"
ERR_MALFORMED_REQUEST = "ERR_MALFORMED_REQUEST"
ERR_BODY_TOO_LARGE = "ERR_BODY_TOO_LARGE"
ERR_REQUEST_TIMEOUT = "ERR_REQUEST_TIMEOUT"
ERR_HEALTH_NOT_READY = "ERR_HEALTH_NOT_READY"
ERR_LIST_WORKFLOWS = "ERR_LIST_WORKFLOWS"
ERR_GET_WORKFLOW_HISTORY = "ERR_GET_WORKFLOW_HISTORY"
ERR_RERUN_WORKFLOW = "ERR_RERUN_WORKFLOW"
ERR_NOT_FOUND = "ERR_NOT_FOUND"
ERR_METHOD_NOT_ALLOWED = "ERR_METHOD_NOT_ALLOWED"
ERR_INTERNAL = "ERR_INTERNAL"

#: What each operation reports when it fails for a reason of its own: (code, message format
#: with the instance ID or workflow name, then the reason), as Dapr words them.
OPERATIONS: dict[str, tuple[str, str]] = {
    "start": (ERR_START_WORKFLOW, "error starting workflow '{}': {}"),
    "get": (ERR_GET_WORKFLOW, "error while getting workflow info on instance '{}': {}"),
    "terminate": (ERR_TERMINATE_WORKFLOW, "error terminating workflow '{}': {}"),
    "raiseEvent": (ERR_RAISE_EVENT_WORKFLOW, "error raising event on workflow '{}': {}"),
    "pause": (ERR_PAUSE_WORKFLOW, "error pausing workflow {}: {}"),
    "resume": (ERR_RESUME_WORKFLOW, "error resuming workflow {}: {}"),
    "purge": (ERR_PURGE_WORKFLOW, "error purging workflow {}: {}"),
    "list": (ERR_LIST_WORKFLOWS, "error listing workflows{}: {}"),
    "history": (ERR_GET_WORKFLOW_HISTORY, "error getting the history of workflow '{}': {}"),
    "rerun": (ERR_RERUN_WORKFLOW, "error rerunning workflow '{}': {}"),
}


@dataclass
class ApiError(Exception):
    status: int
    code: str
    message: str

    def body(self) -> dict[str, str]:
        return {"errorCode": self.code, "message": self.message}


def operation_error(operation: str, subject: str, reason: object, status: int = 500) -> ApiError:
    code, template = OPERATIONS[operation]
    return ApiError(status, code, template.format(subject, reason))


def not_found(instance_id: str) -> ApiError:
    return ApiError(404, ERR_INSTANCE_ID_NOT_FOUND,
                    f"unable to find workflow with the provided instance ID: {instance_id}")


def check_component(component: str) -> None:
    if not component:
        raise ApiError(400, ERR_WORKFLOW_COMPONENT_MISSING, "no workflow component was provided")
    if component != COMPONENT:
        raise ApiError(400, ERR_WORKFLOW_COMPONENT_NOT_FOUND,
                       f"workflow component '{component}' does not exist; use '{COMPONENT}'")


def check_instance_id(instance_id: str, *, new: bool = False) -> str:
    """The one instance-ID rule (`ledgerflow.errors.validate_instance_id`), as Dapr's 400s."""
    try:
        return validate_instance_id(instance_id, new=new)
    except InvalidInstanceIdError as exc:
        raise ApiError(400, exc.code, str(exc)) from None


def check_workflow_name(name: str) -> str:
    if not name:
        raise ApiError(400, ERR_WORKFLOW_NAME_MISSING, "workflow name is not configured")
    if len(name) > MAX_NAME_LENGTH:
        raise ApiError(400, ERR_MALFORMED_REQUEST, f"workflow name is longer than {MAX_NAME_LENGTH} characters")
    return check_text(name, "workflow name")


def check_event_name(name: str) -> str:
    if not name:
        raise ApiError(400, ERR_WORKFLOW_EVENT_NAME_MISSING, "missing workflow event name")
    return check_text(name, "event name")


FLAG_TRUE, FLAG_FALSE = ("true", "yes", "1"), ("false", "no", "0")


def check_flag(name: str, text: str | None) -> bool:
    """A boolean query flag: absent is false; FLAG_TRUE and FLAG_FALSE in any case; anything
    else is a 400 (a misspelt `non_recursive=ture` must not act recursively)."""
    if text is None:
        return False
    if text.isascii() and text.lower() in FLAG_TRUE + FLAG_FALSE:
        return text.lower() in FLAG_TRUE
    raise ApiError(400, ERR_MALFORMED_REQUEST, f"{name} must be true or false (or yes/no, 1/0), not '{text}'")


def check_text(value: str, what: str) -> str:
    """Names are stored as text, which PostgreSQL cannot hold with a NUL character in it."""
    if "\x00" in value:
        raise ApiError(400, ERR_MALFORMED_REQUEST, f"the {what} contains a NUL character")
    return value


def check_app_id(app_id: str) -> str:
    if not _APP_ID.fullmatch(app_id):
        raise ApiError(400, ERR_MALFORMED_REQUEST,
                       f"appID '{app_id}' is invalid: use 1 to 128 letters, digits, '_', '.' and '-'")
    return app_id
