"""The three pages: the instance list (`/ui/`), one instance (`/ui/instances/{id}`) and the
shape of a workflow (`/ui/workflows/{name}`). A request from htmx for the live part of a page
(`HX-Target: live`) gets that part only."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from ledgerflow import errors as lf_errors
from ledgerflow.api import errors as api_errors
from ledgerflow.dashboard import queries
from orchestrator.engine import status
from persistence.listing import InstanceFilter

if TYPE_CHECKING:
    from ledgerflow.dashboard.app import Dashboard

Handler = Callable[[Request], Awaitable[Response]]
STATUS_ORDER = (status.RUNNING, status.PENDING, status.SUSPENDED, status.COMPLETED, status.FAILED,
                status.TERMINATED, status.STALLED)


def _live(request: Request) -> bool:
    return request.headers.get("hx-target") == "live"


def _app_param(request: Request, default: str | None) -> str | None:
    app_id = request.query_params.get("appID", "").strip()
    return api_errors.check_app_id(app_id) if app_id else default


def _when(text: str, what: str) -> datetime | None:
    """A `datetime-local` value (or RFC 3339), read as UTC."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{what} must be a date and time, e.g. 2026-12-03T15:04") from None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def list_filter(request: Request) -> InstanceFilter:
    """The list's filters from the query string; ValueError (or ApiError) names a bad one."""
    q = request.query_params
    statuses = tuple(s.upper() for s in q.getlist("status") if s)
    unknown = [s for s in statuses if s not in status.STATUSES]
    if unknown:
        raise ValueError(f"unknown status {unknown[0]!r}")
    name = api_errors.check_text(q.get("name", "").strip(), "workflow name")
    prefix = api_errors.check_text(q.get("idPrefix", "").strip(), "instance ID prefix")
    return InstanceFilter(app_id=_app_param(request, None), name=name or None, statuses=statuses or None,
                          created_after=_when(q.get("createdFrom", ""), "created from"),
                          created_before=_when(q.get("createdTo", ""), "created to"), id_prefix=prefix or None)


def instances(ui: Dashboard) -> Handler:
    async def handler(request: Request) -> Response:
        q = request.query_params
        newest = q.get("sort", "newest") != "oldest"
        page, error = None, None
        try:
            f = list_filter(request)
            page = await ui.call(queries.list_page, ui.manager, f, newest_first=newest,
                                 after=q.get("after") or None, before=q.get("before") or None)
        except (ValueError, api_errors.ApiError) as exc:
            error = exc.message if isinstance(exc, api_errors.ApiError) else str(exc)
        template = "_results.html" if _live(request) else "list.html"
        return ui.render(request, template, 400 if error else 200, page=page, error=error, q=q,
                         statuses=STATUS_ORDER, newest=newest)

    return handler


def counts(ui: Dashboard) -> Handler:
    """The list's counts by status, fetched by the page after its rows: counting every
    matching instance costs more than a page of them."""

    async def handler(request: Request) -> Response:
        try:
            f = list_filter(request)
        except (ValueError, api_errors.ApiError):
            return Response("", media_type="text/html")
        found = await ui.call(ui.manager.store.count_by_status, f)
        return ui.render(request, "_counts.html", counts=found, q=request.query_params, statuses=STATUS_ORDER)

    return handler


def instance(ui: Dashboard) -> Handler:
    async def handler(request: Request) -> Response:
        instance_id = request.path_params["instance_id"]
        try:
            lf_errors.validate_instance_id(instance_id)
            app_id = _app_param(request, ui.manager.settings.app_id)
        except (ValueError, api_errors.ApiError) as exc:
            raise HTTPException(400, str(getattr(exc, "message", exc))) from None
        assert app_id is not None
        view = await ui.call(queries.instance_view, ui.manager, instance_id, app_id)
        if view is None:
            raise HTTPException(404, f"There is no instance {instance_id!r} in app {app_id!r}.")
        template = "_instance_live.html" if _live(request) else "instance.html"
        return ui.render(request, template, view=view, app_id=app_id, pretty=queries.pretty)

    return handler


def workflow(ui: Dashboard) -> Handler:
    async def handler(request: Request) -> Response:
        name = request.path_params["name"]
        try:
            app_id = _app_param(request, None)
            api_errors.check_workflow_name(name)
        except api_errors.ApiError as exc:
            raise HTTPException(400, exc.message) from None
        view = await ui.call(queries.shape_view, ui.manager, name, app_id)
        return ui.render(request, "workflow.html", view=view, name=name, app_id=app_id, statuses=STATUS_ORDER,
                         max_stages=queries.MAX_STAGES)

    return handler
