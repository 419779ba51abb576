"""The web dashboard, served by the HTTP API at /ui/: the instance list, one instance with its
timeline, the shape of a workflow, and actions. Server-rendered (Starlette + Jinja2) with
htmx, which ships in `static/` (no CDN, no build step)."""

from ledgerflow.dashboard.app import alongside, create_app
from ledgerflow.dashboard.live import stop_streams

__all__ = ["alongside", "create_app", "stop_streams"]
