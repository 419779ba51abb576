"""Everything done to a workflow from outside it, once: the client, HTTP API and CLI call this.

Writes go to the database first (the truth) and then wake the orchestrator through the
broker; if the wake-up is lost, the reconcile tick finds the inbox and wakes it anyway.
Waiting reads the instance only when a change notification arrives (`ledgerflow.changes`).

`app_id` arguments scope an operation to one app's instances: an instance owned by another
app is reported as not found (the HTTP API and CLI pass the app they act for; the Python
client, like before, sees every instance of its database).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from brokers import app as broker_app
from brokers import wakeups
from ledgerflow import access, changes, errors, history, rerun
from ledgerflow.config import Settings
from ledgerflow.state import WorkflowState, WorkflowStatus
from orchestrator import inbox
from orchestrator.engine import clock
from orchestrator.engine import events as ev
from orchestrator.engine.registry import registered_name
from orchestrator.engine.serialization import to_json
from orchestrator.engine.status import (
    FAILED,
    PENDING,
    RUNNING,
    STALLED,
    STATUSES,
    SUSPENDED,
    TERMINAL_STATUSES,
    TERMINATED,
)
from persistence import errors as store_errors
from persistence.records import (
    EventRecord,
    InstanceRecord,
    NewInstance,
    as_utc,
    utcnow,
)
from persistence.store import Store
from telemetry import tracing

_HEALTH_PROBE_ID = "ledgerflow-health-probe"


@dataclass(frozen=True)
class InstanceSummary:
    """One row of a listing: the Dapr state plus who owns the instance."""

    state: WorkflowState
    app_id: str
    parent_instance_id: str | None


class WorkflowManager:
    """Start, query, wait for, signal, suspend, resume, terminate and purge workflow instances."""

    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.settings = settings
        self._store = store
        self._wakeups: wakeups.WakeupSender | None = None
        self._store_lock = threading.Lock()
        self._lock = threading.Lock()
        self._feed: changes.ChangeFeed | None = None
        self._feed_held = False
        changes.feed_for(settings)  # set up now, so the first change is published without delay
        #: access policies and signed-history verification (see ledgerflow/access.py)
        self.access = access.ManagementAccess(settings.app_id, config=settings.security)

    @property
    def store(self) -> Store:
        with self._store_lock:
            if self._store is None:
                store = Store(self.settings.database_url, **self.settings.store_options)
                try:
                    store.migrate()
                except BaseException:
                    store.close()  # next call tries again (the database may be back)
                    raise
                self._store = store
            return self._store

    def _wake(self, app_id: str, instance_id: str) -> None:
        """Wake the instance's orchestrators soon; the commit before is what counts (the
        reconcile tick finds the inbox if the broker never hears of it)."""
        with self._lock:
            if self._wakeups is None:
                celery = broker_app.create_app(self.settings.broker_url, self.settings.app_id,
                                               visibility_timeout=self.settings.visibility_timeout)
                self._wakeups = wakeups.WakeupSender(celery)
        self._wakeups.wake(app_id, instance_id)

    def _changed(self, instance_id: str) -> None:
        changes.notify(instance_id, changes.feed_for(self.settings))

    def ping(self) -> None:
        """Raise `StoreUnavailable` unless the database answers."""
        self.store.get_instance(_HEALTH_PROBE_ID)

    def close(self) -> None:
        with self._lock:
            feed, held = self._feed, self._feed_held
            self._feed, self._feed_held = None, False
            sender, self._wakeups = self._wakeups, None
        if sender is not None:
            sender.close()
        if held and feed is not None:
            feed.release()
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
        traceparent: str | None = None,
    ) -> str:
        """Start a workflow. Its trace (when tracing is on) continues `traceparent` (an HTTP
        request's W3C header), else the caller's current span, else starts anew."""
        name = registered_name(workflow)
        if not name:
            raise errors.WorkflowNameMissingError("A workflow name is required.")
        if instance_id is None:
            instance_id = uuid.uuid4().hex
        errors.validate_instance_id(instance_id, new=True)
        encoded = serialized_input if serialized_input is not None else to_json(
            input, what=f"Input of workflow '{name}'")
        app = app_id or self.settings.app_id
        self.access.check("schedule", app_id=app, name=name)
        visible_at = as_utc(start_at) if start_at is not None else None
        started = ev.ExecutionStarted(clock.naive_utc(utcnow()), name, encoded,
                                      scheduled_start=clock.naive_utc(start_at) if start_at else None)
        with tracing.creating(name, instance_id, app, traceparent) as trace_context:
            new = NewInstance(instance_id=instance_id, app_id=app, name=name, input=encoded, start_at=visible_at,
                              trace_context=trace_context)
            try:
                self.store.create_instance(new, inbox.message("start", started, visible_at), [])
            except store_errors.InstanceAlreadyExists as exc:
                raise errors.InstanceActiveError(str(exc)) from exc
        if visible_at is None or visible_at <= utcnow():
            self._wake(app, instance_id)
        return instance_id

    def rerun(self, source_id: str, event_id: int, *, new_instance_id: str | None = None,
              serialized_input: str | None = None, overwrite_input: bool = False,
              app_id: str | None = None) -> str:
        """Start a new instance from a copy of a finished one's history up to event `event_id`
        (see `ledgerflow.rerun`); with `overwrite_input`, the new instance's input is
        `serialized_input`. Returns the new instance's ID."""
        source = self._existing(source_id, app_id)
        self.access.check("schedule", app_id=source.app_id, name=source.name)
        if source.status not in TERMINAL_STATUSES:
            raise errors.InstanceActiveError(
                f"workflow '{source_id}' is {source.status}; only a COMPLETED, FAILED or TERMINATED workflow "
                "can be rerun (terminate it first)")
        if source.signed:
            raise rerun.RerunSignedError(f"workflow '{source_id}' has a signed history, and Ledgerflow does not "
                                         "rerun signed histories (the copy would not be signed)")
        new_id = new_instance_id or uuid.uuid4().hex
        errors.validate_instance_id(new_id, new=True)
        if new_id == source_id:
            raise errors.InstanceActiveError(f"a rerun needs a new instance ID, not the source's ('{source_id}')")
        history = rerun.prefix(self.recorded_history(source_id, app_id=app_id), event_id,
                               serialized_input, overwrite_input)
        encoded = serialized_input if overwrite_input else source.input
        new = NewInstance(instance_id=new_id, app_id=source.app_id, name=source.name, input=encoded)
        wake = ev.ExecutionResumed(clock.naive_utc(utcnow()), f"rerun of '{source_id}' from event {event_id}")
        try:
            self.store.create_instance_with_history(new, history, inbox.unique_message(wake))
        except store_errors.InstanceAlreadyExists as exc:
            raise errors.InstanceActiveError(str(exc)) from exc
        self._wake(source.app_id, new_id)
        return new_id

    # -- read --------------------------------------------------------------------------

    def state(self, instance_id: str, *, fetch_payloads: bool = True, app_id: str | None = None) -> WorkflowState | None:
        record = self._record(instance_id, app_id)
        if record is not None:
            self.access.check("get", record=record)
            self.access.verify_read(self.store, record)
        return None if record is None else to_state(record, fetch_payloads)

    def list_instances(
        self,
        *,
        app_id: str | None = None,
        name: str | None = None,
        statuses: Iterable[str] | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
        fetch_payloads: bool = True,
    ) -> list[InstanceSummary]:
        """Instances matching every filter, oldest first. Unknown status names -> ValueError."""
        wanted = None if statuses is None else [normalize_status(s) for s in statuses]
        records = self.store.list_instances(app_id=app_id, name=name, statuses=wanted, created_after=created_after,
                                            created_before=created_before, limit=limit, offset=offset)
        return [InstanceSummary(to_state(r, fetch_payloads), r.app_id, r.parent_instance_id) for r in records]

    def served(self, app_id: str | None = None) -> bool:
        """Whether a runtime has ever stepped a workflow of the app in this database (an
        instance of it has left PENDING)."""
        stepped = sorted(STATUSES - {PENDING})
        return bool(self.list_instances(app_id=app_id or self.settings.app_id, statuses=stepped, limit=1,
                                        fetch_payloads=False))

    def suspend_reason(self, instance_id: str) -> str | None:
        """The reason given with the latest suspension in the history, if any."""
        suspended = [e for e in self.history(instance_id) if e.type == "ExecutionSuspended"]
        return suspended[-1].event.get("reason") if suspended else None

    def history(self, instance_id: str, *, app_id: str | None = None) -> list[history.HistoryEntry]:
        """The current generation's history, described (see `ledgerflow.history`)."""
        return history.describe(self.recorded_history(instance_id, app_id=app_id))

    def recorded_history(self, instance_id: str, *, app_id: str | None = None) -> list[EventRecord]:
        """The current generation's stored events, verified first when the history is signed
        (`HistoryTamperedError` names the failed check)."""
        record = self._record(instance_id, app_id)
        if record is None:
            raise errors.InstanceNotFoundError(instance_id)
        self.access.check("get", record=record)
        self.access.verify_read(self.store, record)
        try:
            return self.store.history(instance_id)
        except store_errors.InstanceNotFound as exc:
            raise errors.InstanceNotFoundError(instance_id) from exc

    def wait(
        self, instance_id: str, done: Callable[[WorkflowState], bool], timeout: float, fetch_payloads: bool,
        what: str, *, cancel: threading.Event | None = None,
    ) -> WorkflowState | None:
        """Wait until `done(state)`; timeout 0 waits forever. Raises the builtin TimeoutError.

        Reads the instance once, then again only when a change notification arrives (or at
        the backstop interval); returns None early if `cancel` is set."""
        deadline = None if not timeout else time.monotonic() + timeout
        feed = self._listening_feed()
        with changes.WATCHES.watch(instance_id) as watch:
            live = feed is not None and feed.ready()
            while True:
                seen = watch.version
                state = self.state(instance_id, fetch_payloads=fetch_payloads)
                if state is not None and done(state):
                    return state
                if cancel is not None and cancel.is_set():
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"Timed-out waiting for the orchestration to {what}")
                interval = changes.BACKSTOP_SECONDS if live else changes.FALLBACK_POLL_SECONDS
                changes.WATCHES.wait(watch, seen, interval if remaining is None else min(interval, remaining))
                if feed is not None and not live:
                    live = feed.ready(0)

    def _listening_feed(self) -> changes.ChangeFeed | None:
        with self._lock:
            if not self._feed_held:
                self._feed = changes.feed_for(self.settings)
                if self._feed is not None:
                    self._feed.acquire()
                self._feed_held = True
            return self._feed

    # -- signals -----------------------------------------------------------------------

    # Each signal returns None when it was delivered, else the status of the instance that
    # left it without effect (as Dapr, the call still succeeds): a finished instance takes
    # no event, terminate, suspend or resume; only a SUSPENDED one resumes.

    def raise_event(self, instance_id: str, event_name: str, data: Any = None, *,
                    serialized_data: str | None = None, app_id: str | None = None) -> str | None:
        if not event_name:
            raise errors.EventNameMissingError("An event name is required.")
        payload = serialized_data if serialized_data is not None else to_json(
            data or None, what=f"Data of event '{event_name}'")
        self._authorize("raise", instance_id, app_id)
        record = self._existing(instance_id, app_id)
        if record.status in TERMINAL_STATUSES:
            return record.status
        self._send(instance_id, ev.EventRaised(clock.naive_utc(utcnow()), event_name, payload))
        return None

    def terminate(self, instance_id: str, *, output: Any = None, recursive: bool = True,
                  serialized_output: str | None = None, app_id: str | None = None) -> str | None:
        record = self._existing(instance_id, app_id)
        self.access.check("terminate", record=record)
        if record.status in TERMINAL_STATUSES:
            return record.status
        encoded = serialized_output if serialized_output is not None else to_json(
            output, what="Output of terminate_workflow")
        self._send(instance_id, ev.ExecutionTerminated(clock.naive_utc(utcnow()), encoded, recursive))
        return None

    def suspend(self, instance_id: str, reason: str | None = None, *, app_id: str | None = None) -> str | None:
        self._authorize("pause", instance_id, app_id)
        return self._switch(instance_id, ev.ExecutionSuspended(clock.naive_utc(utcnow()), reason), SUSPENDED,
                            from_statuses=(RUNNING, PENDING), app_id=app_id)

    def resume(self, instance_id: str, reason: str | None = None, *, app_id: str | None = None) -> str | None:
        self._authorize("resume", instance_id, app_id)
        return self._switch(instance_id, ev.ExecutionResumed(clock.naive_utc(utcnow()), reason), RUNNING,
                            from_statuses=(SUSPENDED,), app_id=app_id)

    def purge(self, instance_id: str, *, recursive: bool = True, force: bool = False,
              app_id: str | None = None) -> int:
        """Delete a finished instance (and its descendants when `recursive`); returns rows deleted.

        `force` first marks every unfinished instance of the tree TERMINATED, directly in the
        database: nothing runs for them afterwards (late activity results are dropped)."""
        self._authorize("purge", instance_id, app_id)
        try:
            if force:
                self._force_terminated(instance_id, recursive)
            deleted = self.store.purge(instance_id, recursive=recursive)
        except store_errors.InstanceNotFound as exc:
            raise errors.InstanceNotFoundError(instance_id) from exc
        except store_errors.InstanceNotTerminal as exc:
            raise errors.InstanceActiveError(str(exc)) from exc
        self._changed(instance_id)
        return deleted

    def purge_selection(self, *, app_id: str, statuses: Iterable[str], created_after: datetime | None = None,
                        created_before: datetime | None = None) -> list[str]:
        """The instances a purge by filter deletes: every match, except a child whose parent
        matches too (purge is recursive, it goes with its parent)."""
        rows: list[InstanceSummary] = []
        while True:
            page = self.list_instances(app_id=app_id, statuses=statuses, created_after=created_after,
                                       created_before=created_before, limit=1000, offset=len(rows),
                                       fetch_payloads=False)
            rows.extend(page)
            if len(page) < 1000:
                break
        selected = {r.state.instance_id for r in rows}
        return [r.state.instance_id for r in rows if r.parent_instance_id not in selected]

    def purge_matching(self, *, app_id: str, created_after: datetime | None = None,
                       created_before: datetime | None = None, statuses: Iterable[str] | None = None,
                       recursive: bool = True) -> int:
        """Purge the app's finished instances created in the window with one of `statuses`
        (default: every finished status; unfinished ones are never matched); returns how many
        purge calls deleted something."""
        finished = sorted(TERMINAL_STATUSES)
        wanted = finished if statuses is None else [s for s in map(normalize_status, statuses) if s in finished]
        targets = self.purge_selection(app_id=app_id, statuses=wanted, created_after=created_after,
                                       created_before=created_before) if wanted else []
        purged = 0
        for instance_id in targets:
            try:
                self.purge(instance_id, recursive=recursive, app_id=app_id)
            except errors.InstanceNotFoundError:
                continue  # purged meanwhile
            purged += 1
        return purged

    # -- helpers -----------------------------------------------------------------------

    def _record(self, instance_id: str, app_id: str | None) -> InstanceRecord | None:
        record = self.store.get_instance(instance_id)
        if record is None or (app_id is not None and record.app_id != app_id):
            return None
        return record

    def _authorize(self, operation: str, instance_id: str, app_id: str | None) -> None:
        """The access-policy hook; also the app_id check the callers did before."""
        if app_id is not None or self.access.active():
            self.access.check(operation, record=self._existing(instance_id, app_id))

    def _existing(self, instance_id: str, app_id: str | None = None) -> InstanceRecord:
        record = self._record(instance_id, app_id)
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

    def _switch(self, instance_id: str, event: ev.HistoryEvent, status: str, from_statuses: tuple[str, ...],
                app_id: str | None) -> str | None:
        """Suspend or resume: the message and the visible status change in one transaction,
        under the row lock, so the new status shows as soon as the call returns."""
        with self.store.step(instance_id) as tx:
            record = tx.instance
            if record is None or (app_id is not None and record.app_id != app_id):
                raise errors.InstanceNotFoundError(instance_id)
            if record.status not in from_statuses:
                return record.status
            tx.enqueue(instance_id, [inbox.unique_message(event)])
            tx.update_instance(status=status)
            owner = record.app_id
        self._changed(instance_id)
        self._wake(owner, instance_id)
        return None

    def _force_terminated(self, instance_id: str, recursive: bool) -> None:
        tree, frontier = [instance_id], [instance_id] if recursive else []
        while frontier:
            found = [c.instance_id for parent in frontier for c in self.store.children(parent)]
            tree.extend(found)
            frontier = found
        for iid in tree:
            with self.store.step(iid) as tx:
                if tx.instance is not None and not tx.instance.is_terminal:
                    tx.update_instance(status=TERMINATED, failure=None)


def normalize_status(name: str) -> str:
    status = name.strip().upper()
    if status not in STATUSES:
        raise ValueError(f"Unknown workflow status {name!r}; use one of {', '.join(sorted(STATUSES))}.")
    return status


def to_state(record: InstanceRecord, fetch_payloads: bool) -> WorkflowState:
    failure = None
    if record.failure and record.status in (FAILED, STALLED):
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
