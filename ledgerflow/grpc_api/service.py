"""`TaskHubSidecarService`'s client calls over `WorkflowManager`, the same operations the HTTP
API calls, with the HTTP API's checks of IDs, names and payloads.

Status codes follow Dapr's sidecar: an unknown instance is NOT_FOUND ("no such instance
exists", which Dapr's clients look for) except in GetInstance, which answers `exists: false`;
an ID in use by an active instance is ALREADY_EXISTS; bad input is INVALID_ARGUMENT; the
database away is UNAVAILABLE; an instance in the wrong state for the call (purge of a running
one, rerun of an unfinished one) is FAILED_PRECONDITION. Never INTERNAL for bad input.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import grpc

from ledgerflow import client, errors
from ledgerflow.access import HistoryTamperedError, WorkflowAccessDeniedError
from ledgerflow.api import errors as api_errors
from ledgerflow.api.routes import json_body
from ledgerflow.grpc_api import protocol as p
from ledgerflow.management import WorkflowManager
from ledgerflow.state import WorkflowState
from persistence.errors import StoreUnavailable

log = logging.getLogger("ledgerflow.grpc")

F = TypeVar("F", bound=Callable[..., Any])

#: ListInstanceIDs' page size when the request gives none, and the largest it may ask for.
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 100, 1000
#: How long TerminateInstance waits for the instance to end, as Dapr's sidecar does, at most.
TERMINATE_WAIT_SECONDS = 10.0

_HTTP_TO_GRPC = {400: grpc.StatusCode.INVALID_ARGUMENT, 401: grpc.StatusCode.UNAUTHENTICATED,
                 403: grpc.StatusCode.PERMISSION_DENIED, 404: grpc.StatusCode.NOT_FOUND,
                 503: grpc.StatusCode.UNAVAILABLE}


class _Abort(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _rpc(active: grpc.StatusCode = grpc.StatusCode.FAILED_PRECONDITION) -> Callable[[F], F]:
    """Turn what a call raises into its status code; `active` is the code for an instance
    in the wrong state for the call (`InstanceActiveError`)."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def call(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
            try:
                return fn(self, request, context)
            except _Abort as exc:
                context.abort(exc.code, exc.message)
            except api_errors.ApiError as exc:
                context.abort(_HTTP_TO_GRPC.get(exc.status, grpc.StatusCode.INVALID_ARGUMENT), exc.message)
            except errors.InstanceNotFoundError as exc:
                context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
            except errors.InstanceActiveError as exc:
                context.abort(active, str(exc))
            except StoreUnavailable:
                context.abort(grpc.StatusCode.UNAVAILABLE, "the workflow store is unavailable; retry later")
            except WorkflowAccessDeniedError as exc:
                context.abort(grpc.StatusCode.PERMISSION_DENIED, str(exc))
            except HistoryTamperedError as exc:
                context.abort(grpc.StatusCode.DATA_LOSS, str(exc))
            except TimeoutError as exc:
                context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, str(exc))
            except ValueError as exc:  # bad input the checks let through (a name, a filter, an event ID)
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            except Exception:
                log.exception("%s failed", fn.__name__)
                context.abort(grpc.StatusCode.INTERNAL, "internal error; see the server log")

        return call  # type: ignore[return-value]

    return decorate


def _new_instance_id(text: str) -> str | None:
    """An ID for a new instance, checked; None (a new one is made up) when empty."""
    return api_errors.check_instance_id(text, new=True) if text else None


def _payload(message: Any, field: str) -> str | None:
    """A JSON payload field, checked as the HTTP API checks a body (INVALID_ARGUMENT)."""
    value = p.optional_text(message, field)
    if value is None:
        return None
    try:
        return json_body(value.encode("utf-8", "surrogatepass"))
    except api_errors.ApiError as exc:
        raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, exc.message.replace("the request body", f"the {field}")) from None


class WorkflowService(p.service_grpc.TaskHubSidecarServiceServicer):
    """The client calls; the worker calls (GetWorkItems, Complete*Task) answer UNIMPLEMENTED:
    Ledgerflow runs Python workflows itself."""

    def __init__(self, manager: WorkflowManager) -> None:
        self.manager = manager
        self.app_id = manager.settings.app_id

    def Hello(self, request: Any, context: grpc.ServicerContext) -> Any:
        return p.empty_pb2.Empty()

    @_rpc(active=grpc.StatusCode.ALREADY_EXISTS)
    def StartInstance(self, request: Any, context: grpc.ServicerContext) -> Any:
        name = api_errors.check_workflow_name(request.name)
        instance_id = _new_instance_id(request.instanceId)
        start_at = request.scheduledStartTimestamp.ToDatetime() if request.HasField("scheduledStartTimestamp") else None
        started = self.manager.schedule(name, instance_id=instance_id, start_at=start_at, app_id=self.app_id,
                                        serialized_input=_payload(request, "input"))
        return p.service_pb.CreateInstanceResponse(instanceId=started)

    @_rpc()
    def GetInstance(self, request: Any, context: grpc.ServicerContext) -> Any:
        instance_id = api_errors.check_instance_id(request.instanceId)
        state = self.manager.state(instance_id, fetch_payloads=request.getInputsAndOutputs, app_id=self.app_id)
        return _instance_response(state)

    @_rpc()
    def WaitForInstanceStart(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._wait(request, context, client.started, "start")

    @_rpc()
    def WaitForInstanceCompletion(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._wait(request, context, client.finished, "complete")

    @_rpc()
    def RaiseEvent(self, request: Any, context: grpc.ServicerContext) -> Any:
        instance_id = api_errors.check_instance_id(request.instanceId)
        name = api_errors.check_event_name(request.name)
        self.manager.raise_event(instance_id, name, serialized_data=_payload(request, "input"), app_id=self.app_id)
        return p.service_pb.RaiseEventResponse()

    @_rpc()
    def TerminateInstance(self, request: Any, context: grpc.ServicerContext) -> Any:
        """As Dapr's sidecar: returns once the instance has ended (here: or after
        TERMINATE_WAIT_SECONDS, or the caller's deadline, with the termination on its way)."""
        instance_id = api_errors.check_instance_id(request.instanceId)
        self.manager.terminate(instance_id, recursive=request.recursive,
                               serialized_output=_payload(request, "output"), app_id=self.app_id)
        remaining = context.time_remaining()
        limit = TERMINATE_WAIT_SECONDS if remaining is None else min(TERMINATE_WAIT_SECONDS, max(remaining - 0.1, 0))
        if limit > 0:
            try:
                self.manager.wait(instance_id, client.finished, limit, False, "end", cancel=_cancelled(context))
            except TimeoutError:
                pass
        return p.service_pb.TerminateResponse()

    @_rpc()
    def SuspendInstance(self, request: Any, context: grpc.ServicerContext) -> Any:
        instance_id = api_errors.check_instance_id(request.instanceId)
        self.manager.suspend(instance_id, p.optional_text(request, "reason") or None, app_id=self.app_id)
        return p.service_pb.SuspendResponse()

    @_rpc()
    def ResumeInstance(self, request: Any, context: grpc.ServicerContext) -> Any:
        instance_id = api_errors.check_instance_id(request.instanceId)
        self.manager.resume(instance_id, p.optional_text(request, "reason") or None, app_id=self.app_id)
        return p.service_pb.ResumeResponse()

    @_rpc()
    def PurgeInstances(self, request: Any, context: grpc.ServicerContext) -> Any:
        if request.HasField("purgeInstanceFilter"):
            f = request.purgeInstanceFilter
            count = self.manager.purge_matching(
                app_id=self.app_id, recursive=request.recursive,
                created_after=f.createdTimeFrom.ToDatetime() if f.HasField("createdTimeFrom") else None,
                created_before=f.createdTimeTo.ToDatetime() if f.HasField("createdTimeTo") else None,
                statuses=[p.status_name(s) for s in f.runtimeStatus] or None)
        else:
            instance_id = api_errors.check_instance_id(request.instanceId)
            self.manager.purge(instance_id, recursive=request.recursive, force=request.force, app_id=self.app_id)
            count = 1
        return p.service_pb.PurgeInstancesResponse(deletedInstanceCount=count)

    @_rpc()
    def ListInstanceIDs(self, request: Any, context: grpc.ServicerContext) -> Any:
        """Pages of the app's instance IDs, oldest first; the continuation token is opaque."""
        token = request.continuationToken
        if token and not (token.isascii() and token.isdigit() and len(token) < 19):
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid continuation token '{token[:32]}'")
        offset = int(token or 0)
        size = min(request.pageSize or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        rows = self.manager.list_instances(app_id=self.app_id, limit=size + 1, offset=offset, fetch_payloads=False)
        response = p.service_pb.ListInstanceIDsResponse(instanceIds=[r.state.instance_id for r in rows[:size]])
        if len(rows) > size:
            response.continuationToken = str(offset + size)
        return response

    @_rpc()
    def GetInstanceHistory(self, request: Any, context: grpc.ServicerContext) -> Any:
        instance_id = api_errors.check_instance_id(request.instanceId)
        records = self.manager.recorded_history(instance_id, app_id=self.app_id)
        return p.service_pb.GetInstanceHistoryResponse(events=[p.history_message(r, instance_id) for r in records])

    @_rpc(active=grpc.StatusCode.FAILED_PRECONDITION)
    def RerunWorkflowFromEvent(self, request: Any, context: grpc.ServicerContext) -> Any:
        source = api_errors.check_instance_id(request.sourceInstanceID)
        new_id = _new_instance_id(request.newInstanceID)
        new_input = _payload(request, "input")
        started = self.manager.rerun(source, request.eventID, new_instance_id=new_id, serialized_input=new_input,
                                     overwrite_input=request.overwriteInput or new_input is not None,
                                     app_id=self.app_id)
        return p.service_pb.RerunWorkflowFromEventResponse(newInstanceID=started)

    def _wait(self, request: Any, context: grpc.ServicerContext, done: Callable[[WorkflowState], bool],
              what: str) -> Any:
        """Woken by the change feed (`WorkflowManager.wait`); bounded by the caller's deadline,
        and given up when the caller goes away."""
        instance_id = api_errors.check_instance_id(request.instanceId)
        remaining = context.time_remaining()
        timeout = 0.0 if remaining is None else max(remaining, 0.001)
        cancel = _cancelled(context)
        state = self.manager.wait(instance_id, done, timeout, request.getInputsAndOutputs, what, cancel=cancel)
        if state is None and cancel.is_set():
            raise _Abort(grpc.StatusCode.CANCELLED, "the caller went away")
        return _instance_response(state)


def _cancelled(context: grpc.ServicerContext) -> threading.Event:
    """Set when the call ends (the caller cancelled, or its deadline passed)."""
    event = threading.Event()
    context.add_callback(event.set)
    return event


def _instance_response(state: WorkflowState | None) -> Any:
    if state is None:
        return p.service_pb.GetInstanceResponse(exists=False)
    return p.service_pb.GetInstanceResponse(exists=True, workflowState=p.state_message(state))
