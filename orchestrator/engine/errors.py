"""Exceptions that workflow code sees, and the engine's own failures."""

from __future__ import annotations

import traceback

from orchestrator.engine.events import FailureDetails


class TaskFailedError(Exception):
    """Raised into workflow code when an activity or child workflow it awaited failed."""

    def __init__(self, message: str, details: FailureDetails) -> None:
        super().__init__(message)
        self._details = details

    @property
    def details(self) -> FailureDetails:
        return self._details


class NonRetryableError(Exception):
    """Raise from an activity to fail it at once, whatever its retry policy says."""


class NonDeterminismError(Exception):
    """Workflow code did not do what its recorded history says it did."""


class OrchestratorNotRegisteredError(Exception):
    pass


class ActivityNotRegisteredError(Exception):
    pass


def failure_from_exception(exc: BaseException) -> FailureDetails:
    """The failure record of an exception: class name, str(exc) and the stack trace."""
    trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return FailureDetails(message=str(exc), error_type=type(exc).__name__, stack_trace=trace)
