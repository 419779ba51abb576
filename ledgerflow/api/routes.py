"""The routes: Dapr's workflow API, plus list and history, over `WorkflowManager`.

Every handler checks its input (component, instance ID, names, appID, body) before it
touches the database, then runs the blocking management call in a worker thread and maps
what it raises to Dapr's codes: not found -> 404, the database unreachable -> 503, the
operation's own failure -> its Dapr code with 500.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import math
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ledgerflow import errors as lf_errors
from ledgerflow.access import HistoryTamperedError, WorkflowAccessDeniedError
from ledgerflow.api import errors
from ledgerflow.management import WorkflowManager
from ledgerflow.state import WorkflowStatus
from ledgerflow.views import state_json, summary_json
from persistence.errors import StoreUnavailable
from telemetry import tracing

log = logging.getLogger("ledgerflow.api")

T = TypeVar("T")
MAX_PAGE_SIZE = 1000
MAX_OFFSET = 10**18 - 1  # within PostgreSQL's bigint OFFSET
DEFAULT_PAGE_SIZE = 100


class Handlers:
    def __init__(self, manager: WorkflowManager) -> None:
        self.manager = manager

    # -- Dapr's routes -----------------------------------------------------------------

    async def start(self, request: Request) -> Response:
        p = request.path_params
        errors.check_component(p["component"])
        name = errors.check_workflow_name(p["name"])
        instance_id = request.query_params.get("instanceID") or None
        if instance_id is not None:
            errors.check_instance_id(instance_id, new=True)
        app_id = self._app_id(request)
        serialized = json_body(await request.body())
        started = await self._call("start", name, self.manager.schedule, name, instance_id=instance_id,
                                   app_id=app_id, serialized_input=serialized,
                                   traceparent=request.headers.get(tracing.TRACEPARENT))
        return JSONResponse({"instanceID": started}, status_code=202,
                            headers={"Location": f"{_version(request)}/workflows/dapr/{started}"})

    async def get(self, request: Request) -> Response:
        instance_id = self._instance(request)
        state = await self._call("get", instance_id, self.manager.state, instance_id, app_id=self._app_id(request))
        if state is None:
            raise errors.not_found(instance_id)
        return JSONResponse(state_json(state))

    async def terminate(self, request: Request) -> Response:
        instance_id = self._instance(request)
        await self._call("terminate", instance_id, self.manager.terminate, instance_id,
                         recursive=not _flag(request, "non_recursive"), app_id=self._app_id(request))
        return _accepted()

    async def raise_event(self, request: Request) -> Response:
        instance_id = self._instance(request)
        event = errors.check_event_name(request.path_params.get("event", ""))
        serialized = json_body(await request.body())
        await self._call("raiseEvent", instance_id, self.manager.raise_event, instance_id, event,
                         serialized_data=serialized, app_id=self._app_id(request))
        return _accepted()

    async def pause(self, request: Request) -> Response:
        instance_id = self._instance(request)
        await self._call("pause", instance_id, self.manager.suspend, instance_id,
                         request.query_params.get("reason") or None, app_id=self._app_id(request))
        return _accepted()

    async def resume(self, request: Request) -> Response:
        instance_id = self._instance(request)
        await self._call("resume", instance_id, self.manager.resume, instance_id,
                         request.query_params.get("reason") or None, app_id=self._app_id(request))
        return _accepted()

    async def purge(self, request: Request) -> Response:
        instance_id = self._instance(request)
        await self._call("purge", instance_id, self.manager.purge, instance_id,
                         recursive=not _flag(request, "non_recursive"), app_id=self._app_id(request))
        return _accepted()

    # -- beyond Dapr -------------------------------------------------------------------

    async def list(self, request: Request) -> Response:
        errors.check_component(request.path_params["component"])
        q = request.query_params
        statuses = [s for value in q.getlist("status") for s in value.split(",") if s.strip(" ")] or None
        try:
            wanted = None if statuses is None else [_status(s) for s in statuses]
            page_size = _int(q.get("pageSize"), DEFAULT_PAGE_SIZE, "pageSize", 1, MAX_PAGE_SIZE)
            offset = _int(q.get("continuationToken"), 0, "continuationToken", 0, MAX_OFFSET)
            after, before = _time(q.get("createdAfter"), "createdAfter"), _time(q.get("createdBefore"), "createdBefore")
        except ValueError as exc:
            raise errors.ApiError(400, errors.ERR_MALFORMED_REQUEST, str(exc)) from exc
        name = errors.check_text(q.get("name") or "", "name filter") or None
        rows = await self._call("list", "", self.manager.list_instances, app_id=self._app_id(request),
                                name=name, statuses=wanted, created_after=after,
                                created_before=before, limit=page_size + 1, offset=offset)
        body: dict[str, Any] = {"workflows": [summary_json(r) for r in rows[:page_size]]}
        if len(rows) > page_size:
            body["continuationToken"] = str(offset + page_size)
        return JSONResponse(body)

    async def history(self, request: Request) -> Response:
        instance_id = self._instance(request)
        entries = await self._call("history", instance_id, self.manager.history, instance_id,
                                   app_id=self._app_id(request))
        return JSONResponse({"instanceID": instance_id, "events": [e.to_json() for e in entries]})

    async def rerun(self, request: Request) -> Response:
        """A new instance from the history up to `eventID` (`ledgerflow.rerun`); a body is the
        new instance's input."""
        instance_id = self._instance(request)
        q = request.query_params
        try:
            event_id = _int(q.get("eventID"), -1, "eventID", 0, 2**31 - 1)
        except ValueError as exc:
            raise errors.ApiError(400, errors.ERR_MALFORMED_REQUEST, str(exc)) from None
        if event_id < 0:
            raise errors.ApiError(400, errors.ERR_MALFORMED_REQUEST, "eventID is required (the event ID to rerun "
                                  "from, as the history shows it)")
        new_id = q.get("newInstanceID") or None
        if new_id is not None:
            errors.check_instance_id(new_id, new=True)
        serialized = json_body(await request.body())
        started = await self._call("rerun", instance_id, self.manager.rerun, instance_id, event_id,
                                   new_instance_id=new_id, serialized_input=serialized,
                                   overwrite_input=serialized is not None, app_id=self._app_id(request))
        return JSONResponse({"instanceID": started}, status_code=202,
                            headers={"Location": f"{_version(request)}/workflows/dapr/{started}"})

    async def metadata(self, request: Request) -> Response:
        """Dapr's `GET /v1.0/metadata`, which Dapr's SDKs read before their first call."""
        return JSONResponse(metadata_json(self.manager.settings.app_id))

    async def health(self, request: Request) -> Response:
        try:
            await run_in_threadpool(self.manager.ping)
        except StoreUnavailable:
            raise errors.ApiError(503, errors.ERR_HEALTH_NOT_READY,
                                  "ledgerflow is not ready: the workflow store is unavailable") from None
        return Response(status_code=204)

    # -- helpers -----------------------------------------------------------------------

    def _instance(self, request: Request) -> str:
        errors.check_component(request.path_params["component"])
        return errors.check_instance_id(request.path_params.get("instance_id", ""))

    def _app_id(self, request: Request) -> str:
        app_id = request.query_params.get("appID")
        return errors.check_app_id(app_id) if app_id else self.manager.settings.app_id

    async def _call(self, operation: str, subject: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return await run_in_threadpool(fn, *args, **kwargs)
        except lf_errors.InstanceNotFoundError as exc:
            raise errors.not_found(exc.instance_id) from None
        except StoreUnavailable:
            log.warning("%s failed: the workflow store is unavailable", operation)
            raise errors.operation_error(operation, subject, "the workflow store is unavailable; retry later",
                                         status=503) from None
        except lf_errors.InstanceActiveError as exc:
            raise errors.operation_error(operation, subject, exc) from None
        except WorkflowAccessDeniedError as exc:  # the operation's own code, with the policy's text
            raise errors.operation_error(operation, subject, exc, status=403) from None
        except HistoryTamperedError as exc:  # names the check that failed; stored rows are untouched
            raise errors.operation_error(operation, subject, exc) from None
        except ValueError as exc:  # bad input the checks above let through (its own status, if it has one)
            raise errors.ApiError(getattr(exc, "http_status", 400), getattr(exc, "code", errors.ERR_MALFORMED_REQUEST),
                                  str(exc)) from None
        except Exception as exc:
            log.exception("%s of %s failed", operation, subject or "workflows")
            raise errors.operation_error(operation, subject, type(exc).__name__) from None


def metadata_json(app_id: str) -> dict[str, Any]:
    """The sidecar metadata shape: what does not apply to Ledgerflow is an empty list."""
    version = importlib.metadata.version("ledgerflow")
    return {"id": app_id, "runtimeVersion": version, "enabledFeatures": [], "actors": [], "components": [],
            "httpEndpoints": [], "subscriptions": [], "extended": {"runtime": "ledgerflow", "version": version},
            "actorRuntime": {"runtimeStatus": "DISABLED", "activeActors": [], "hostReady": False, "placement": ""}}


def json_body(body: bytes) -> str | None:
    """The raw body as JSON text (None when empty); 400 unless it is UTF-8 JSON that the
    engine can pass on unchanged: no NaN or Infinity (not JSON), no number too large for a
    float (it would come back as Infinity), and no string holding U+0000 or a lone
    surrogate (`\\u0000`, `\\ud800`): RFC 7493 (I-JSON) rules out the latter, PostgreSQL
    text cannot hold the former, and either would fail far from this request when the
    workflow passed it on."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.ApiError(400, errors.ERR_MALFORMED_REQUEST, "the request body is not valid UTF-8") from None
    if not text.strip():
        return None
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except (ValueError, RecursionError) as exc:
        reason = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
        raise errors.ApiError(400, errors.ERR_MALFORMED_REQUEST,
                              f"the request body is not valid JSON ({reason}); send JSON text, "
                              "e.g. '{\"key\": \"value\"}' or '\"text\"'") from None
    if "\\u" in text:  # U+0000 and lone surrogates can only arrive as escapes
        _check_strings(value)
    return text


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:20]}{'...' if len(text) > 20 else ''} is too large")
    return value


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _check_strings(value: Any) -> None:
    """400 when a string (or key) anywhere in `value` holds U+0000 or a lone surrogate.
    Iterative: the value may be nested as deep as json.loads allows."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found = _UNSTORABLE.search(item)
            if found:
                what = "U+0000" if found.group() == "\x00" else f"a lone surrogate (U+{ord(found.group()):04X})"
                raise errors.ApiError(400, errors.ERR_MALFORMED_REQUEST,
                                      f"a string in the request body holds {what}, which Ledgerflow does not "
                                      "accept; encode binary data, e.g. as base64")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _accepted() -> Response:
    return JSONResponse({}, status_code=202)


def _version(request: Request) -> str:
    return "/" + request.url.path.lstrip("/").split("/", 1)[0]


def _flag(request: Request, name: str) -> bool:
    return errors.check_flag(name, request.query_params.get(name))


def _status(name: str) -> str:
    status = name.strip(" ").upper()
    if not name.isascii() or status not in WorkflowStatus.__members__ or status == "UNKNOWN":
        valid = ", ".join(s.name for s in WorkflowStatus if s != WorkflowStatus.UNKNOWN)
        raise ValueError(f"unknown status '{name}'; use one of {valid}")
    return status


def _int(text: str | None, default: int, what: str, low: int, high: int) -> int:
    """A whole number in ASCII digits (absent: `default`)."""
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(high)) or not low <= int(text) <= high:
        raise ValueError(f"{what} must be a whole number between {low} and {high}")
    return int(text)


_RFC3339 = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
                      r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))")


def _time(text: str | None, what: str) -> datetime | None:
    """An RFC 3339 timestamp (absent: None), as UTC. A leap second (:60) counts as :59."""
    if text is None:
        return None
    match = _RFC3339.fullmatch(text)
    try:
        if match is None:
            raise ValueError(text)
        year, month, day, hour, minute, second, fraction, _, sign, off_h, off_m = match.groups()
        if int(off_m or 0) > 59:
            raise ValueError(text)
        offset = timedelta(hours=int(off_h or 0), minutes=int(off_m or 0)) * (-1 if sign == "-" else 1)
        value = datetime(int(year), int(month), int(day), int(hour), int(minute), min(int(second), 59),
                         int((fraction or "0")[:6].ljust(6, "0")), tzinfo=timezone(offset))
        return value.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        raise ValueError(f"{what} must be an RFC 3339 timestamp between years 1 and 9999 in UTC, "
                         "e.g. 2025-01-02T15:04:05Z") from None
