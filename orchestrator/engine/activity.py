"""The activity's view of its call (Dapr's WorkflowActivityContext)."""

from __future__ import annotations

from typing import Any


class WorkflowActivityContext:
    """Who called this activity. `task_execution_id` is the same across retries and
    redeliveries of one call, so activities can deduplicate their side effects with it."""

    def __init__(
        self,
        workflow_id: str,
        task_id: int,
        task_execution_id: str,
        *,
        attempt: int = 1,
        app_id: str | None = None,
        propagated_history: Any = None,
    ) -> None:
        self._workflow_id = workflow_id
        self._task_id = task_id
        self._task_execution_id = task_execution_id
        self._attempt = attempt
        self._app_id = app_id
        self._propagated_history = propagated_history

    @property
    def workflow_id(self) -> str:
        return self._workflow_id

    @property
    def task_id(self) -> int:
        return self._task_id

    @property
    def task_execution_id(self) -> str:
        return self._task_execution_id

    @property
    def attempt(self) -> int:
        return self._attempt

    @property
    def app_id(self) -> str | None:
        return self._app_id

    def get_propagated_history(self) -> Any:
        return self._propagated_history

    def get_inner_context(self) -> WorkflowActivityContext:
        """Dapr returns its Durable Task context here; Ledgerflow has no inner one, so the
        context itself (it has `orchestration_id`'s information as `workflow_id`, and `task_id`)."""
        return self
