"""Everything done to a workflow from outside it, once: the client, HTTP API and CLI call this.

Writes go to the database first (the truth) and then wake the orchestrator through the
broker; if the wake-up is lost, the reconcile tick finds the inbox and wakes it anyway.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from brokers import app as broker_app
from brokers import messages
from ledgerflow import errors
from ledgerflow.config import Settings
from ledgerflow.state import WorkflowState, WorkflowStatus
from orchestrator import inbox
from orchestrator.engine import events as ev
from orchestrator.engine.registry import registered_name
from orchestrator.engine.serialization import to_json
from persistence import errors as store_errors
from persistence.records import TERMINAL_STATUSES, InstanceRecord, NewInstance, utcnow
from persistence.store import Store

#: Commits in this process wake waiters at once; other processes' commits are polled.
_changed = threading.Condition()
_POLL_SECONDS = 0.1


def notify_changed(instance_id: str, status: str) -> None:
    with _changed:
        _changed.notify_all()


class WorkflowManager:
    """Start, query, signal, suspend, resume, terminate and purge workflow instances."""

    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.settings = settings
        self._store = store
        self._celery: Any = None
        self._lock = threading.Lock()

    @property
    def store(self) -> Store:
        with self._lock:
            if self._store is None:
                self._store = Store(self.settings.database_url)
                self._store.migrate()
            return self._store

    def _wake(self, app_id: str, instance_id: str) -> None:
        with self._lock:
            if self._celery is None:
                self._celery = broker_app.create_app(self.settings.broker_url, self.settings.app_id,
                                                     visibility_timeout=self.settings.visibility_timeout)
        try:
            messages.publish_orchestrate(self._celery, app_id, instance_id)
        except Exception:  # the broker is only the fast path: the reconcile tick finds the inbox
            pass

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    # -- start -------------------------------------------------------------------------

    def schedule(
        self,
        workflow: Callable[..., Any] | str,
        *,
        input: Any = None,
        instance_id: str | None = None,
        start_at: datetime | None = None,
        app_id: str | None = None,
        serialized_input: str | None = None,
    ) -> str:
        name = registered_name(workflow)
        if not name:
            raise ValueError("A workflow name is required.")
        instance_id = errors.validate_instance_id(instance_id) if instance_id is not None else uuid.uuid4().hex
        encoded = serialized_input if serialized_input is not None else to_json(
            input, what=f"Input of workflow '{name}'")
        app = app_id or self.settings.app_id
        visible_at = inbox.aware_utc(start_at) if start_at is not None else None
        started = ev.ExecutionStarted(inbox.naive_utc(utcnow()), name, encoded,
                                      scheduled_start=inbox.naive_utc(start_at) if start_at else None)
        new = NewInstance(instance_id=instance_id, app_id=app, name=name, input=encoded, start_at=visible_at)
        try:
            self.store.create_instance(new, inbox.message("start", started, visible_at), [])
        except store_errors.InstanceAlreadyExists as exc:
            raise errors.InstanceActiveError(str(exc)) from exc
        if visible_at is None or visible_at <= utcnow():
            self._wake(app, instance_id)
        return instance_id

    # -- read --------------------------------------------------------------------------

    def state(self, instance_id: str, *, fetch_payloads: bool = True) -> WorkflowState | None:
        record = self.store.get_instance(instance_id)
        return None if record is None else to_state(record, fetch_payloads)

    def wait(
        self, instance_id: str, done: Callable[[WorkflowState], bool], timeout: float, fetch_payloads: bool,
        what: str,
    ) -> WorkflowState | None:
        """Wait until `done(state)`; timeout 0 waits forever. Raises the builtin TimeoutError."""
        deadline = None if not timeout else time.monotonic() + timeout
        while True:
            state = self.state(instance_id, fetch_payloads=fetch_payloads)
            if state is not None and done(state):
                return state
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(f"Timed-out waiting for the orchestration to {what}")
            with _changed:
                _changed.wait(_POLL_SECONDS if remaining is None else min(_POLL_SECONDS, remaining))

    # -- signals -----------------------------------------------------------------------

    def raise_event(self, instance_id: str, event_name: str, data: Any = None, *,
                    serialized_data: str | None = None) -> None:
        if not event_name:
            raise ValueError("An event name is required.")
        payload = serialized_data if serialized_data is not None else to_json(
            data or None, what=f"Data of event '{event_name}'")
        self._send(instance_id, ev.EventRaised(inbox.naive_utc(utcnow()), event_name, payload))

    def terminate(self, instance_id: str, *, output: Any = None, recursive: bool = True) -> None:
        record = self._existing(instance_id)
        if record.status in TERMINAL_STATUSES:
            return
        encoded = to_json(output, what="Output of terminate_workflow")
        self._send(instance_id, ev.ExecutionTerminated(inbox.naive_utc(utcnow()), encoded, recursive))

    def suspend(self, instance_id: str, reason: str | None = None) -> None:
        self._switch(instance_id, ev.ExecutionSuspended(inbox.naive_utc(utcnow()), reason), "SUSPENDED",
                     from_statuses=("RUNNING", "PENDING"))

    def resume(self, instance_id: str, reason: str | None = None) -> None:
        self._switch(instance_id, ev.ExecutionResumed(inbox.naive_utc(utcnow()), reason), "RUNNING",
                     from_statuses=("SUSPENDED",))

    def purge(self, instance_id: str, *, recursive: bool = True) -> int:
        try:
            return self.store.purge(instance_id, recursive=recursive)
        except store_errors.InstanceNotFound as exc:
            raise errors.InstanceNotFoundError(instance_id) from exc
        except store_errors.InstanceNotTerminal as exc:
            raise errors.InstanceActiveError(str(exc)) from exc

    # -- helpers -----------------------------------------------------------------------

    def _existing(self, instance_id: str) -> InstanceRecord:
        record = self.store.get_instance(instance_id)
        if record is None:
            raise errors.InstanceNotFoundError(instance_id)
        return record

    def _send(self, instance_id: str, event: ev.HistoryEvent) -> None:
        try:
            self.store.enqueue(instance_id, [inbox.unique_message(event)])
        except store_errors.InstanceNotFound as exc:
            raise errors.InstanceNotFoundError(instance_id) from exc
        record = self._existing(instance_id)
        self._wake(record.app_id, instance_id)

    def _switch(self, instance_id: str, event: ev.HistoryEvent, status: str, from_statuses: tuple[str, ...]) -> None:
        """Suspend or resume: the message and the visible status change in one transaction,
        under the row lock, so the new status shows as soon as the call returns."""
        with self.store.step(instance_id) as tx:
            record = tx.instance
            if record is None:
                raise errors.InstanceNotFoundError(instance_id)
            if record.status not in from_statuses:
                return
            tx.enqueue(instance_id, [inbox.unique_message(event)])
            tx.update_instance(status=status)
            app_id = record.app_id
        self._wake(app_id, instance_id)


def to_state(record: InstanceRecord, fetch_payloads: bool) -> WorkflowState:
    failure = None
    if record.failure and record.status in ("FAILED", "STALLED"):
        data = json.loads(record.failure)
        failure = ev.FailureDetails(data.get("message", ""), data.get("error_type", ""), data.get("stack_trace"))
    return WorkflowState(
        instance_id=record.instance_id,
        name=record.name,
        runtime_status=WorkflowStatus.from_name(record.status),
        created_at=record.created_at,
        last_updated_at=record.updated_at,
        serialized_input=record.input if fetch_payloads else None,
        serialized_output=record.output if fetch_payloads else None,
        serialized_custom_status=record.custom_status if fetch_payloads else None,
        failure_details=failure,
    )
