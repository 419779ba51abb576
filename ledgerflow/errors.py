"""Errors the client, the HTTP API and the CLI report. Each names the instance and what to do."""

from __future__ import annotations

import re

MAX_INSTANCE_ID_LENGTH = 64
_INSTANCE_ID = re.compile(r"^[A-Za-z0-9_:\-]+$")


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


def validate_instance_id(instance_id: str | None) -> str:
    """A user-supplied instance ID: 1-64 characters of letters, digits, `_`, `-` and `:`."""
    if instance_id is None or instance_id == "":
        raise InstanceIdMissingError("An instance ID is required; pass a non-empty instance ID.")
    if len(instance_id) > MAX_INSTANCE_ID_LENGTH:
        raise InstanceIdTooLongError(
            f"Instance ID '{instance_id[:16]}...' is {len(instance_id)} characters long; "
            f"the limit is {MAX_INSTANCE_ID_LENGTH}."
        )
    if not _INSTANCE_ID.match(instance_id):
        raise InvalidInstanceIdError(
            f"Instance ID {instance_id!r} is invalid: use only letters, digits, '_', '-' and ':'."
        )
    return instance_id
