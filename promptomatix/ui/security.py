"""The UI's guard: a secret token on every request, CSRF on every POST, strict headers, a Host check.

Like Jupyter, `promptomatix ui` prints a URL with a random token. The first request with `?token=` sets a cookie
(HttpOnly, SameSite=Strict) and redirects to the same URL without the token, so it does not linger in the address
bar or history; every later request must carry the cookie. POSTs must also carry the CSRF token (a form field or
the X-CSRF-Token header). The Content-Security-Policy allows scripts only from this server's /static, so a
`<script>` that slipped into a page could not run even if escaping failed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]
_DENIED = (
    "<!doctype html><title>Promptomatix: token needed</title><h1>Token needed</h1>"
    "<p>Open the URL that <code>promptomatix ui</code> printed (it ends in <code>?token=…</code>).</p>"
)


def new_token() -> str:
    return secrets.token_urlsafe(24)


def cookie_name(token: str) -> str:
    """Per-token cookie name: cookies ignore ports, so two UIs on one host must not overwrite each other's."""
    return "pmx_" + hashlib.sha256(token.encode()).hexdigest()[:10]


def csrf_for(token: str) -> str:
    return hmac.new(token.encode(), b"promptomatix-csrf", hashlib.sha256).hexdigest()[:32]


def _same(a: str | None, b: str) -> bool:
    return a is not None and hmac.compare_digest(a.encode(), b.encode())


class Guard:
    """ASGI middleware: Host check, token (query once, then cookie), security headers on every response."""

    def __init__(self, app: ASGIApp, *, token: str, allowed_hosts: Iterable[str] | None = None) -> None:
        self.app = app
        self.token = token
        self.cookie = cookie_name(token)
        self.allowed_hosts = {h.lower() for h in allowed_hosts} if allowed_hosts else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        response = self._check(request)
        if response is not None:
            await response(scope, receive, self._with_headers(send))
            return
        await self.app(scope, receive, self._with_headers(send))

    def _check(self, request: Request) -> Any:
        host = (request.headers.get("host") or "").rsplit(":", 1)[0].strip("[]").lower()
        if self.allowed_hosts is not None and host not in self.allowed_hosts:
            return HTMLResponse("<h1>Unknown host</h1>", status_code=400)  # DNS rebinding
        given = request.query_params.get("token")
        if given is not None:
            if not _same(given, self.token):
                return HTMLResponse(_DENIED, status_code=403)
            rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            target = request.url.path + (f"?{urlencode(rest)}" if rest else "")
            redirect = RedirectResponse(target, status_code=303)
            redirect.set_cookie(self.cookie, self.token, httponly=True, samesite="strict", path="/")
            return redirect
        if not _same(request.cookies.get(self.cookie), self.token):
            return HTMLResponse(_DENIED, status_code=403)
        return None

    @staticmethod
    def _with_headers(send: Send) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in names]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        return wrapped


async def checked_form(request: Request) -> FormData:
    """The POST's form, after checking its CSRF token (form field `csrf` or header X-CSRF-Token)."""
    expected = request.app.state.csrf
    form = await request.form(max_files=1, max_fields=50, max_part_size=request.app.state.max_field_bytes)
    given = form.get("csrf") or request.headers.get("x-csrf-token")
    if not isinstance(given, str) or not _same(given, expected):
        raise HTTPException(403, "missing or wrong CSRF token; reload the page and try again")
    return form
