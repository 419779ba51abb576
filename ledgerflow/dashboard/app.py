"""The dashboard's ASGI app under /ui/: routes, templates, static files and the sign-in gate."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from ledgerflow.api import middleware
from ledgerflow.dashboard import actions, auth, live, pages
from ledgerflow.history import human_elapsed, rfc3339
from ledgerflow.management import WorkflowManager

HERE = Path(__file__).parent
PREFIX = "/ui"


class Dashboard:
    """What every page needs: the manager, the gate and the templates."""

    def __init__(self, manager: WorkflowManager, token: str | None) -> None:
        self.manager = manager
        self.gate = auth.Gate(token)
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                                 undefined=jinja2.StrictUndefined)
        env.filters["q"] = lambda value: quote(str(value), safe=":")
        env.filters["rfc3339"] = rfc3339
        env.filters["elapsed"] = human_elapsed
        env.globals["qs"] = lambda **params: urlencode({k: v for k, v in params.items() if v not in (None, "")},
                                                       doseq=True)
        self.templates = Jinja2Templates(env=env)

    def render(self, request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
        context.setdefault("error", None)
        common = {"csrf": auth.csrf_value(request), "default_app": self.manager.settings.app_id,
                  "signed_in": self.gate.enabled and self.gate.signed_in(request)}
        response = self.templates.TemplateResponse(request, template, {**common, **context}, status_code=status_code)
        auth.remember_csrf(request, response)
        return response

    async def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await run_in_threadpool(fn, *args, **kwargs)


def create_app(manager: WorkflowManager, token: str | None) -> middleware.ASGIApp:
    ui = Dashboard(manager, token)

    async def signin_form(request: Request) -> Response:
        if not ui.gate.enabled:
            return RedirectResponse(f"{PREFIX}/", status_code=303)
        return ui.render(request, "signin.html", next=auth.safe_next(request.query_params.get("next")))

    async def signin(request: Request) -> Response:
        form = await auth.form(request)
        target = auth.safe_next(form.get("next"))
        if not auth.csrf_ok(request, form.get(auth.CSRF_FIELD)):
            return ui.render(request, "signin.html", 403, next=target, error="The form expired; sign in again.")
        if not ui.gate.accepts(form.get("token", "")):
            return ui.render(request, "signin.html", 401, next=target, error="That is not the API token.")
        response = RedirectResponse(target, status_code=303)
        ui.gate.sign_in(response, request)
        return response

    async def signout(request: Request) -> Response:
        form = await auth.form(request)
        if not auth.csrf_ok(request, form.get(auth.CSRF_FIELD)):
            raise HTTPException(403, "cross-site request refused")
        response = RedirectResponse(f"{PREFIX}/signin", status_code=303)
        ui.gate.sign_out(response)
        return response

    async def slash(request: Request) -> Response:
        return RedirectResponse(f"{PREFIX}/", status_code=308)

    async def not_found(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return ui.render(request, "error.html", exc.status_code, message=exc.detail)

    app = Starlette(
        routes=[
            Route(PREFIX, slash),
            Route(f"{PREFIX}/", pages.instances(ui), methods=["GET"]),
            Route(f"{PREFIX}/counts", pages.counts(ui), methods=["GET"]),
            Route(f"{PREFIX}/instances/{{instance_id}}", pages.instance(ui), methods=["GET"]),
            Route(f"{PREFIX}/instances/{{instance_id}}/{{action}}", actions.act(ui), methods=["POST"]),
            Route(f"{PREFIX}/workflows/{{name}}", pages.workflow(ui), methods=["GET"]),
            Route(f"{PREFIX}/changes", live.changes_route(ui), methods=["GET"]),
            Route(f"{PREFIX}/signin", signin_form, methods=["GET"]),
            Route(f"{PREFIX}/signin", signin, methods=["POST"]),
            Route(f"{PREFIX}/signout", signout, methods=["POST"]),
            Mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="static"),
        ],
        exception_handlers={HTTPException: not_found},
    )
    return _Guard(app, ui.gate)


class _Guard:
    """Sends a browser that is not signed in to the sign-in form (the form and the static
    files are open)."""

    OPEN = (f"{PREFIX}/signin", f"{PREFIX}/static/")

    def __init__(self, app: middleware.ASGIApp, gate: auth.Gate) -> None:
        self.app = app
        self.gate = gate

    async def __call__(self, scope: middleware.Scope, receive: middleware.Receive, send: middleware.Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(self.OPEN):
            request = Request(scope)
            if not self.gate.signed_in(request):
                if scope["method"] == "GET":
                    target = scope["path"] + (f"?{scope['query_string'].decode('latin-1')}"
                                              if scope.get("query_string") else "")
                    response: Response = RedirectResponse(f"{PREFIX}/signin?{urlencode({'next': target})}", 303)
                else:
                    response = Response("sign in first", status_code=401, media_type="text/plain")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def alongside(dashboard: middleware.ASGIApp, api: middleware.ASGIApp) -> middleware.ASGIApp:
    """One ASGI app: /ui and below to the dashboard, everything else to the API."""

    async def route(scope: middleware.Scope, receive: middleware.Receive, send: middleware.Send) -> None:
        path = scope.get("path", "")
        target = dashboard if path == PREFIX or path.startswith(PREFIX + "/") else api
        await target(scope, receive, send)

    return route
