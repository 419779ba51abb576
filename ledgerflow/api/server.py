"""Serving the API with uvicorn, with the limits a public port needs.

uvicorn closes idle keep-alive connections (`keep_alive_timeout`), but it has no timeout for
a client that opens a connection and sends its headers slowly or never, and h11 limits only
headers that arrive in pieces. `HeaderTimeoutProtocol` adds both: complete request headers
must arrive within `header_timeout` seconds of the connection opening or of the previous
response (else the connection is closed), and be at most `max_header_bytes` (else 431).
The body has its own cap and timeout (`middleware.BodyGuard`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from ledgerflow import dashboard
from ledgerflow.api.app import ApiSettings, create_app
from ledgerflow.errors import SetupError
from ledgerflow.management import WorkflowManager

log = logging.getLogger("ledgerflow.api")


class HeaderTimeoutProtocol(H11Protocol):
    header_timeout: float = 10.0
    max_header_bytes: int = 16 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._head_tail = b""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if not self._in_request() and self._headers_too_large(data):
            self._reject(431, b"Request Header Fields Too Large")
            return
        try:
            super().data_received(data)
        except UnicodeDecodeError:  # a request target that is not ASCII
            self.send_400_response("Invalid HTTP request received.")
            return
        if self._in_request():
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and not self._in_request():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _headers_too_large(self, data: bytes) -> bool:
        """Counts the bytes before the blank line that ends the headers (h11 alone only
        limits headers that arrive in pieces)."""
        window = self._head_tail + data
        end = window.find(b"\r\n\r\n")
        if end == -1:
            self._head_bytes += len(data)
            self._head_tail = window[-3:]
            return self._head_bytes > self.max_header_bytes
        size = self._head_bytes + end - len(self._head_tail)
        self._head_bytes, self._head_tail = 0, b""
        return size > self.max_header_bytes

    def _reject(self, status: int, reason: bytes) -> None:
        if not self.transport.is_closing():
            head = b"HTTP/1.1 %d %s\r\ncontent-length: 0\r\nconnection: close\r\n\r\n" % (status, reason)
            self.transport.write(head)
            self.transport.close()

    def _in_request(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout, self._on_header_timeout)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _on_header_timeout(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing() and not self._in_request():
            self.transport.close()


def protocol_class(header_timeout: float, max_header_bytes: int) -> type[HeaderTimeoutProtocol]:
    return type("LedgerflowHTTPProtocol", (HeaderTimeoutProtocol,),
                {"header_timeout": header_timeout, "max_header_bytes": max_header_bytes})


def check_exposure(host: str, port: int, settings: ApiSettings, what: str = "HTTP API") -> None:
    """Refuse to serve the API beyond loopback without a token: anyone who reached the port
    could start, terminate and purge workflows."""
    if settings.token or _loopback(host):
        return
    raise SetupError(f"refusing to serve the {what} on {host}:{port} without a token (anyone reaching it could "
                     "start, terminate and purge workflows); set LEDGERFLOW_API_TOKEN (clients send it in the "
                     "dapr-api-token header), or listen on 127.0.0.1")


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def build_server(manager: WorkflowManager, host: str, port: int,
                 settings: ApiSettings | None = None) -> uvicorn.Server:
    """A uvicorn server for the API (it handles SIGINT/SIGTERM when run in the main thread);
    see `check_exposure`."""
    settings = settings or ApiSettings.from_env()
    check_exposure(host, port, settings)
    config = uvicorn.Config(
        create_app(manager, settings),
        host=host,
        port=port,
        http=protocol_class(settings.header_timeout, settings.max_header_bytes),
        lifespan="off",
        access_log=False,  # our own access log leaves out query strings and headers
        log_config=None,
        server_header=False,
        timeout_keep_alive=settings.keep_alive_timeout,
        h11_max_incomplete_event_size=settings.max_header_bytes,
        timeout_graceful_shutdown=10,
    )
    return _Server(config)


class _Server(uvicorn.Server):
    """Ends the dashboard's live-update streams as soon as it is asked to stop: they would
    otherwise hold up the graceful shutdown until they end by themselves."""

    def handle_exit(self, sig: int, frame: Any) -> None:
        dashboard.stop_streams()
        super().handle_exit(sig, frame)


def serve(manager: WorkflowManager, host: str, port: int, settings: ApiSettings | None = None) -> None:
    """Serve until SIGINT/SIGTERM (uvicorn's graceful shutdown)."""
    server = build_server(manager, host, port, settings)
    log.info("HTTP API on http://%s:%d, dashboard on http://%s:%d/ui/ (token auth %s)", host, port, host, port,
             "on" if (settings or ApiSettings.from_env()).token else "off")
    try:
        server.run()
    except SystemExit as exc:
        if exc.code:
            raise SetupError(f"the HTTP API could not start on {host}:{port} (is the port in use?); "
                             "pick another with --port") from None
        raise
