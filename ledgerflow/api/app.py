"""The ASGI application: Dapr's workflow routes under every API version, behind the
middleware (access log, token auth, body guard)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ledgerflow import dashboard
from ledgerflow.api import errors, middleware, openapi
from ledgerflow.api.routes import Handlers
from ledgerflow.config import ApiSettings
from ledgerflow.management import WorkflowManager
from telemetry import metrics


class _Segment(Convertor[str]):
    """One path segment that may be empty, so `/workflows/dapr//start` reaches the handler
    and gets Dapr's "missing" error instead of a bare 404."""

    regex = "[^/]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("segment", _Segment())


def _routes(h: Handlers) -> list[Route]:
    routes: list[Route] = []
    for v in openapi.VERSIONS:
        base = f"{v}/workflows/{{component:segment}}"
        one = f"{base}/{{instance_id:segment}}"
        routes += [
            Route(f"{v}/healthz", h.health, methods=["GET"]),
            Route(f"{v}/healthz/outbound", h.health, methods=["GET"]),
            Route(f"{v}/metadata", h.metadata, methods=["GET"]),
            Route(base, h.list, methods=["GET"]),
            Route(f"{base}/{{name:segment}}/start", h.start, methods=["POST"]),
            Route(one, h.get, methods=["GET"]),
            Route(f"{one}/history", h.history, methods=["GET"]),
            Route(f"{one}/terminate", h.terminate, methods=["POST"]),
            Route(f"{one}/pause", h.pause, methods=["POST"]),
            Route(f"{one}/resume", h.resume, methods=["POST"]),
            Route(f"{one}/purge", h.purge, methods=["POST"]),
            Route(f"{one}/rerun", h.rerun, methods=["POST"]),
            Route(f"{one}/raiseEvent", h.raise_event, methods=["POST"]),
            Route(f"{one}/raiseEvent/{{event:segment}}", h.raise_event, methods=["POST"]),
        ]
    return routes


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.ApiError)
    headers = {"Retry-After": "1"} if exc.status == 503 else None
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        body = {"errorCode": errors.ERR_NOT_FOUND,
                "message": f"no route for {request.method} {request.url.path}; see /openapi.json"}
    elif exc.status_code == 405:
        body = {"errorCode": errors.ERR_METHOD_NOT_ALLOWED,
                "message": f"{request.method} is not allowed on {request.url.path}; see /openapi.json"}
    else:
        body = {"errorCode": errors.ERR_MALFORMED_REQUEST, "message": str(exc.detail)}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def _internal_error(request: Request, exc: Exception) -> Response:
    return JSONResponse({"errorCode": errors.ERR_INTERNAL, "message": "internal error; see the server log"},
                        status_code=500)


def create_app(manager: WorkflowManager, settings: ApiSettings | None = None) -> middleware.ASGIApp:
    """The API over `manager` (which the caller closes)."""
    settings = settings or ApiSettings.from_env()
    handlers = Handlers(manager)
    document = openapi.document()

    async def openapi_json(request: Request) -> Response:
        return JSONResponse(document)

    async def prometheus(request: Request) -> Response:
        body, content_type = await run_in_threadpool(metrics.exposition)  # the backlog gauges query the store
        return Response(body, media_type=content_type)

    metrics.watch_backlog(lambda: manager.store.backlog())
    app = Starlette(
        routes=[*_routes(handlers), Route("/openapi.json", openapi_json, methods=["GET"]),
                Route("/metrics", prometheus, methods=["GET"])],
        exception_handlers={errors.ApiError: _api_error, HTTPException: _http_error, Exception: _internal_error},
    )
    # No 307 from `/x/` to `/x`: Starlette builds that Location from the client's Host header,
    # and an ID ending in an encoded slash would be redirected instead of refused.
    app.router.redirect_slashes = False
    open_paths = frozenset(p for v in openapi.VERSIONS for p in (f"{v}/healthz", f"{v}/healthz/outbound"))
    guarded = middleware.BodyGuard(app, settings.max_body_bytes, settings.body_timeout)
    api = middleware.TokenAuth(guarded, settings.token, open_paths)
    ui = middleware.BodyGuard(dashboard.create_app(manager, settings.token), settings.max_body_bytes,
                              settings.body_timeout)
    return middleware.AccessLog(dashboard.alongside(ui, api))
