"""Errors the client, the HTTP API and the CLI report. Each names the instance and what to do."""

from __future__ import annotations

import re

#: The instance-ID rule, the same for the Python client, the CLI and the HTTP API:
#: an ID you choose is 1-64 ASCII letters, digits, `_` and `-` (Dapr's rule); a child
#: workflow started without an ID gets its parent's ID plus `:` and a hex counter
#: (`order-1:0001`, `order-1:0001:0000`), so IDs with those suffixes name existing children.
MAX_INSTANCE_ID_LENGTH = 64
MAX_CHILD_INSTANCE_ID_LENGTH = 4 * MAX_INSTANCE_ID_LENGTH
NEW_INSTANCE_ID_PATTERN = r"[A-Za-z0-9_-]{1,64}"
INSTANCE_ID_PATTERN = NEW_INSTANCE_ID_PATTERN + r"(?::[0-9a-f]+)*"


class InvalidInstanceIdError(ValueError):
    code = "ERR_INSTANCE_ID_INVALID"


class InstanceIdMissingError(InvalidInstanceIdError):
    code = "ERR_INSTANCE_ID_PROVIDED_MISSING"


class InstanceIdTooLongError(InvalidInstanceIdError):
    code = "ERR_INSTANCE_ID_TOO_LONG"


class InstanceNotFoundError(LookupError):
    """Dapr's wording ("no such instance exists") is kept so existing checks still match."""

    code = "ERR_INSTANCE_NOT_FOUND"

    def __init__(self, instance_id: str) -> None:
        super().__init__(
            f"no such instance exists: workflow instance '{instance_id}' was not found; "
            "check the ID, or whether it was purged"
        )
        self.instance_id = instance_id


class WorkflowNameMissingError(ValueError):
    code = "ERR_WORKFLOW_NAME_MISSING"


class EventNameMissingError(ValueError):
    code = "ERR_WORKFLOW_EVENT_NAME_MISSING"


class SetupError(Exception):
    """A command, file or setting the user has to change (a module that does not load, a
    database that is not there, an API that would be open): one line, saying what to do."""


class InstanceActiveError(RuntimeError):
    """Start on an ID that is running, or purge of an instance that has not finished."""

    code = "ERR_INSTANCE_ACTIVE"


def validate_instance_id(instance_id: str | None, *, new: bool = False) -> str:
    """`instance_id` if it follows the rule above; `new`: an ID for a workflow being started
    (no child suffix). Raises the matching InvalidInstanceIdError (Dapr's codes)."""
    if instance_id is None or instance_id == "":
        raise InstanceIdMissingError("no instance ID was provided; pass a non-empty instance ID")
    root = instance_id.partition(":")[0]
    if len(root) > MAX_INSTANCE_ID_LENGTH or len(instance_id) > MAX_CHILD_INSTANCE_ID_LENGTH:
        raise InstanceIdTooLongError(
            f"workflow instance ID '{instance_id[:16]}...' is {len(instance_id)} characters long; "
            f"the limit is {MAX_INSTANCE_ID_LENGTH}")
    if not re.fullmatch(NEW_INSTANCE_ID_PATTERN if new else INSTANCE_ID_PATTERN, instance_id):
        raise InvalidInstanceIdError(
            f"workflow instance ID {instance_id!r} is invalid: use 1-{MAX_INSTANCE_ID_LENGTH} ASCII letters, "
            "digits, '_' and '-'" + ("" if new else " (a child workflow's ID adds ':' and a hex number, "
                                     "e.g. 'order-1:0001')"))
    return instance_id
