"""ASGI middleware around the routes: access log, token auth, body cap and body timeout.

Order (outermost first): the access log sees every response; auth refuses before any body
is read; the body guard reads the whole body (at most `max_body_bytes`, within
`body_timeout`) before a route runs, so routes never see an oversized or trickled body.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio

from ledgerflow.api import errors

log = logging.getLogger("ledgerflow.api")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

TOKEN_HEADER = b"dapr-api-token"


async def send_json(send: Send, status: int, body: dict[str, Any], *, close: bool = False) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


class AccessLog:
    """One line per request: method, path (never the query string or headers: a token put
    there by mistake must not reach a log), status and duration."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [0]

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            log.info("%s %s %d %.1fms", scope["method"], scope["path"], status[0],
                     (time.perf_counter() - started) * 1000)


class TokenAuth:
    """Every route but health needs header `dapr-api-token` equal to the token (compared in
    constant time); otherwise 401 with body `invalid api token`, as Dapr answers."""

    def __init__(self, app: ASGIApp, token: str | None, open_paths: frozenset[str]) -> None:
        self.app = app
        self._token = token.encode() if token else None
        self._open = open_paths

    def __repr__(self) -> str:
        return f"TokenAuth(enabled={self._token is not None})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._token is None or scope["path"] in self._open:
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == TOKEN_HEADER), None)
        if given is None or not hmac.compare_digest(given, self._token):
            body = b"invalid api token"
            await send({"type": "http.response.start", "status": 401,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


class BodyGuard:
    """Reads the request body before the route: 413 over `max_bytes` (at once when
    Content-Length says so, else as soon as the count passes it), 408 when the body does
    not arrive within `timeout` seconds, 400 for a malformed Content-Length or for one sent
    with Transfer-Encoding."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if length is not None and any(k == b"transfer-encoding" for k, _ in scope["headers"]):
            # RFC 9112 6.3: a request smuggling attempt; refuse it and close the connection
            await send_json(send, 400, {"errorCode": errors.ERR_MALFORMED_REQUEST,
                                        "message": "send Content-Length or Transfer-Encoding, not both"}, close=True)
            return
        if length is not None:
            if not length.isdigit():
                await send_json(send, 400, {"errorCode": errors.ERR_MALFORMED_REQUEST,
                                            "message": "the Content-Length header is not a number"}, close=True)
                return
            if int(length) > self.max_bytes:
                await self._too_large(send)
                return
        body = bytearray()
        try:
            with anyio.fail_after(self.timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    body += message.get("body", b"")
                    if len(body) > self.max_bytes:
                        await self._too_large(send)
                        return
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            await send_json(send, 408, {"errorCode": errors.ERR_REQUEST_TIMEOUT,
                                        "message": f"the request body did not arrive within {self.timeout:g}s"},
                            close=True)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send) -> None:
        await send_json(send, 413, {"errorCode": errors.ERR_BODY_TOO_LARGE,
                                    "message": f"the request body is larger than {self.max_bytes} bytes; "
                                               "send less, or raise LEDGERFLOW_API_MAX_BODY_BYTES"}, close=True)
