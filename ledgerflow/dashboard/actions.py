"""Acting on an instance from its page: suspend, resume, terminate, raise an event, purge.

Each is a POST that must pass the CSRF check (`auth.csrf_ok`); the page asks for confirmation
before sending it. The answer is a short result the page shows in place: what was done, or
why nothing was (the instance's status, or the error), always with status 200 so htmx
shows it."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from ledgerflow import errors as lf_errors
from ledgerflow.access import HistoryTamperedError, WorkflowAccessDeniedError
from ledgerflow.api import errors as api_errors
from ledgerflow.api.routes import json_body
from ledgerflow.dashboard import auth
from ledgerflow.management import WorkflowManager
from persistence.errors import StoreUnavailable

if TYPE_CHECKING:
    from ledgerflow.dashboard.app import Dashboard

log = logging.getLogger("ledgerflow.dashboard")

ACTIONS = ("suspend", "resume", "terminate", "raise", "purge")


def _perform(manager: WorkflowManager, action: str, instance_id: str, app_id: str, form: dict[str, str]) -> str:
    """Do `action`; the sentence that says what happened."""
    reason = form.get("reason") or None
    if action == "suspend":
        left = manager.suspend(instance_id, reason, app_id=app_id)
        return "Suspended." if left is None else f"Not suspended: the instance is {left}."
    if action == "resume":
        left = manager.resume(instance_id, reason, app_id=app_id)
        return "Resumed." if left is None else f"Not resumed: the instance is {left}."
    if action == "terminate":
        left = manager.terminate(instance_id, app_id=app_id)
        return "Termination sent." if left is None else f"Not terminated: the instance is {left}."
    if action == "raise":
        name = api_errors.check_event_name(form.get("event", "").strip())
        data = json_body(form.get("data", "").encode())
        left = manager.raise_event(instance_id, name, serialized_data=data, app_id=app_id)
        return f"Event '{name}' raised." if left is None else f"Event not delivered: the instance is {left}."
    deleted = manager.purge(instance_id, app_id=app_id)
    return f"Purged: {deleted} rows deleted."


def _failure(exc: Exception) -> str:
    if isinstance(exc, api_errors.ApiError):
        return exc.message
    if isinstance(exc, lf_errors.InstanceNotFoundError):
        return "The instance no longer exists."
    if isinstance(exc, StoreUnavailable):
        return "The workflow store is unavailable; try again."
    if isinstance(exc, (lf_errors.InstanceActiveError, WorkflowAccessDeniedError, HistoryTamperedError, ValueError)):
        return str(exc)
    log.exception("dashboard action failed")
    return f"Failed ({type(exc).__name__}); see the server log."


def act(ui: Dashboard) -> Callable[[Request], Awaitable[Response]]:
    async def handler(request: Request) -> Response:
        instance_id, action = request.path_params["instance_id"], request.path_params["action"]
        form = await auth.form(request)
        sent = request.headers.get(auth.CSRF_HEADER) or form.get(auth.CSRF_FIELD)
        if not auth.csrf_ok(request, sent):
            return ui.render(request, "_result.html", ok=False, message="Refused: a cross-site request.")
        if action not in ACTIONS:
            return ui.render(request, "_result.html", ok=False, message=f"There is no action {action!r}.")
        try:
            app_id = request.query_params.get("appID") or ui.manager.settings.app_id
            api_errors.check_app_id(app_id)
            message = await ui.call(_perform, ui.manager, action, instance_id, app_id, form)
            ok = True
        except Exception as exc:
            message, ok = _failure(exc), False
        log.info("dashboard %s of %s: %s", action, instance_id, message)
        return ui.render(request, "_result.html", ok=ok, message=message,
                         purged=ok and action == "purge")

    return handler
