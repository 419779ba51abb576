"""Who may use the dashboard, and that a form was sent by the dashboard itself.

- When the API token is set, the dashboard asks for it once, on a sign-in form, and keeps a
  session value derived from it (an HMAC, not the token) in an HttpOnly, SameSite=Strict
  cookie; the token never appears in a URL.
- Every POST must carry the CSRF value of this browser (double submit: a random cookie that
  the page repeats in a form field or the `X-CSRF-Token` header) and, when the browser sends
  an Origin, come from the dashboard's own host.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import parse_qsl, urlsplit

from starlette.requests import Request
from starlette.responses import Response

SESSION_COOKIE = "ledgerflow_session"
CSRF_COOKIE = "ledgerflow_csrf"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
COOKIE_PATH = "/ui"


class Gate:
    def __init__(self, token: str | None) -> None:
        self._token = token.encode() if token else None
        self._session = (hmac.new(self._token, b"ledgerflow dashboard session", hashlib.sha256).hexdigest()
                         if self._token else None)

    def __repr__(self) -> str:
        return f"Gate(enabled={self.enabled})"

    @property
    def enabled(self) -> bool:
        return self._token is not None

    def signed_in(self, request: Request) -> bool:
        if self._session is None:
            return True
        given = request.cookies.get(SESSION_COOKIE, "")
        return hmac.compare_digest(given.encode(), self._session.encode())

    def accepts(self, token: str) -> bool:
        return self._token is not None and hmac.compare_digest(token.encode(), self._token)

    def sign_in(self, response: Response, request: Request) -> None:
        assert self._session is not None
        _set_cookie(response, request, SESSION_COOKIE, self._session)

    @staticmethod
    def sign_out(response: Response) -> None:
        response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")


def csrf_value(request: Request) -> str:
    """This browser's CSRF value (a new one when it has none; `remember_csrf` stores it)."""
    value = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf", None)
    if value is None:
        value = request.state.new_csrf = secrets.token_urlsafe(32)
    return value


def remember_csrf(request: Request, response: Response) -> None:
    new = getattr(request.state, "new_csrf", None)
    if new is not None:
        _set_cookie(response, request, CSRF_COOKIE, new)


def csrf_ok(request: Request, sent: str | None) -> bool:
    """The POST came from a page of this dashboard in this browser."""
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not sent or not hmac.compare_digest(cookie.encode(), sent.encode()):
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    # host and port only: behind a proxy that ends TLS the scheme seen here is not the browser's
    return urlsplit(origin).netloc == urlsplit(str(request.base_url)).netloc


async def form(request: Request) -> dict[str, str]:
    """The fields of a URL-encoded form (what the dashboard's forms and htmx send); the body
    is already capped in size by the API's body guard."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return dict(parse_qsl(body, keep_blank_values=True))


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a dashboard path, never another site."""
    if target and target.startswith(COOKIE_PATH + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return COOKIE_PATH + "/"


def _set_cookie(response: Response, request: Request, name: str, value: str) -> None:
    response.set_cookie(name, value, path=COOKIE_PATH, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
