"""DaprWorkflowClient: Dapr's management client, same methods and keyword arguments."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ledgerflow.config import Settings
from ledgerflow.management import WorkflowManager
from ledgerflow.state import WorkflowState, WorkflowStatus
from orchestrator.engine.serialization import to_json

_STARTED = frozenset(WorkflowStatus) - {WorkflowStatus.PENDING, WorkflowStatus.UNKNOWN}
_FINISHED = frozenset({WorkflowStatus.COMPLETED, WorkflowStatus.FAILED, WorkflowStatus.TERMINATED})


class DaprWorkflowClient:
    """Talks to the database and broker named by the environment (see `ledgerflow.config`).

    `host`, `port` and `logger_options` are accepted for compatibility with Dapr's
    signature; Ledgerflow has no sidecar to reach.
    """

    def __init__(
        self,
        host: str | None = None,
        port: str | None = None,
        logger_options: Any = None,
        *,
        app_id: str | None = None,
        database_url: str | None = None,
        broker_url: str | None = None,
    ) -> None:
        settings = Settings.from_env(app_id=app_id, database_url=database_url, broker_url=broker_url)
        self._manager = WorkflowManager(settings)

    def schedule_new_workflow(
        self,
        workflow: Callable[..., Any] | str,
        *,
        input: Any = None,
        instance_id: str | None = None,
        start_at: datetime | None = None,
        reuse_id_policy: Any = None,
    ) -> str:
        """Start a workflow; returns its instance ID (a new `uuid4().hex` when none is given).
        `reuse_id_policy` has no effect, as in dapr-ext-workflow 1.18 (which deprecates it): a
        finished instance's ID can always be reused, an active one's never."""
        if reuse_id_policy is not None:
            warnings.warn("reuse_id_policy is deprecated and has no effect (as in dapr-ext-workflow 1.18); an "
                          "instance ID can be reused once its instance has finished", DeprecationWarning, stacklevel=2)
        return self._manager.schedule(workflow, input=input, instance_id=instance_id, start_at=start_at)

    def get_workflow_state(self, instance_id: str, *, fetch_payloads: bool = True) -> WorkflowState | None:
        """The instance's state, or None for an unknown or purged ID."""
        return self._manager.state(instance_id, fetch_payloads=fetch_payloads)

    def wait_for_workflow_start(
        self, instance_id: str, *, fetch_payloads: bool = False, timeout_in_seconds: int = 0
    ) -> WorkflowState | None:
        """Wait until the instance is no longer PENDING; 0 waits forever. On timeout the builtin
        TimeoutError. Woken by change notifications, not by polling the database."""
        return self._manager.wait(instance_id, started, timeout_in_seconds, fetch_payloads, "start")

    def wait_for_workflow_completion(
        self, instance_id: str, *, fetch_payloads: bool = True, timeout_in_seconds: int = 0
    ) -> WorkflowState | None:
        """Wait until COMPLETED, FAILED or TERMINATED (a failure is returned, not raised)."""
        return self._manager.wait(instance_id, finished, timeout_in_seconds, fetch_payloads, "complete")

    def raise_workflow_event(self, instance_id: str, event_name: str, *, data: Any = None) -> None:
        self._manager.raise_event(instance_id, event_name, data)

    def terminate_workflow(self, instance_id: str, *, output: Any = None, recursive: bool = True) -> None:
        self._manager.terminate(instance_id, output=output, recursive=recursive)

    def pause_workflow(self, instance_id: str) -> None:
        self._manager.suspend(instance_id)

    def resume_workflow(self, instance_id: str) -> None:
        self._manager.resume(instance_id)

    def purge_workflow(self, instance_id: str, recursive: bool = True) -> None:
        self._manager.purge(instance_id, recursive=recursive)

    def rerun_workflow_from_event(self, instance_id: str, event_id: int, *, new_instance_id: str | None = None,
                                  input: Any = None) -> str:
        """Start a new instance from a copy of a finished one's history up to `event_id` (as
        Dapr's `RerunWorkflowFromEvent`); `input`, when given, replaces the workflow's input.
        Returns the new instance's ID."""
        encoded = None if input is None else to_json(input, what="Input of the rerun")
        return self._manager.rerun(instance_id, event_id, new_instance_id=new_instance_id,
                                   serialized_input=encoded, overwrite_input=input is not None)

    def close(self) -> None:
        self._manager.close()

    def __enter__(self) -> DaprWorkflowClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def started(state: WorkflowState) -> bool:
    return state.runtime_status in _STARTED


def finished(state: WorkflowState) -> bool:
    return state.runtime_status in _FINISHED
