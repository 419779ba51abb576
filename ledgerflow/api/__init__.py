"""Dapr's workflow HTTP API (`/v1.0/workflows/dapr/...`), served by `ledgerflow api` and
inside `ledgerflow dev`. `create_app(manager)` builds the ASGI app; `server.serve` runs it."""

from ledgerflow.api.app import ApiSettings, create_app

__all__ = ["ApiSettings", "create_app"]
