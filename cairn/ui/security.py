"""The inspector's gate: token authentication, CSRF tokens for its forms, and content-free logs.

With a token configured, a request is let in when it carries ``Authorization: Bearer <token>``
or the ``cairn_ui_token`` cookie; opening any page with ``?token=<token>`` sets that cookie
(HttpOnly, SameSite=Strict) and redirects to the same page without it. Forms carry a CSRF token
bound to a per-browser random id (cookie ``cairn_ui_sid``) by HMAC. Access logs hold method,
route and status only: never query strings (search text), bodies or tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time

from starlette.datastructures import URL
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from cairn.ui.config import UIConfig

logger = logging.getLogger("cairn.ui")

TOKEN_COOKIE = "cairn_ui_token"
SESSION_COOKIE = "cairn_ui_sid"
OPEN_PATHS = ("/static/", "/codec/", "/healthz")
"""Paths the token gate does not guard: assets, the codec (its own rule) and the probe."""


def session_id(request: Request) -> str | None:
    """The browser's random id from its cookie, if it has a well-formed one."""
    sid = request.cookies.get(SESSION_COOKIE)
    return sid if sid and len(sid) == 43 and sid.isascii() else None


def form_token(config: UIConfig, request: Request) -> str:
    """The CSRF token of the forms on this page (the browser's id, or the one it is given)."""
    sid = session_id(request) or str(request.state.new_sid)
    return csrf_token(config, sid)


def csrf_token(config: UIConfig, sid: str) -> str:
    """The CSRF token of the browser whose id is ``sid``."""
    return hmac.new(config.csrf_secret, f"csrf:{sid}".encode(), hashlib.sha256).hexdigest()


def csrf_ok(config: UIConfig, request: Request, submitted: object) -> bool:
    """Whether a form's CSRF field matches its browser's id (and its origin is ours)."""
    sid = session_id(request)
    if sid is None or not isinstance(submitted, str):
        return False
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        return False
    return hmac.compare_digest(csrf_token(config, sid), submitted)


def token_ok(config: UIConfig, request: Request) -> bool:
    """Whether the request may pass the token gate."""
    if config.token is None:
        return True
    expected = config.token.encode()
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected):
        return True
    cookie = request.cookies.get(TOKEN_COOKIE, "")
    return hmac.compare_digest(cookie.encode(), expected)


class Gate(BaseHTTPMiddleware):
    """Token gate, browser id cookie, security headers and the access log, for every request."""

    def __init__(self, app: object, config: UIConfig) -> None:
        super().__init__(app)  # type: ignore[arg-type]
        self.config = config

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        """Let the request through, or answer it here."""
        started = time.perf_counter()
        response = await self._dispatch(request, call_next)
        route = request.scope.get("route")
        path = getattr(route, "path", "?")
        elapsed = (time.perf_counter() - started) * 1000
        logger.info("%s %s %s %.0fms", request.method, path, response.status_code, elapsed)
        return response

    async def _dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        config = self.config
        open_path = request.url.path.startswith(OPEN_PATHS)
        given = request.query_params.get("token")
        if config.token is not None and given is not None and not open_path:
            if not hmac.compare_digest(given.encode(), config.token.encode()):
                return PlainTextResponse("invalid token", status_code=401)
            params = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            target = URL(request.url.path).include_query_params(**dict(params))
            redirect = RedirectResponse(str(target), status_code=303)
            redirect.set_cookie(TOKEN_COOKIE, given, httponly=True, samesite="strict")
            return redirect
        if not open_path and not token_ok(config, request):
            return PlainTextResponse(
                "this Cairn UI needs its token: open it with ?token=<CAIRN_UI_TOKEN> or send "
                "Authorization: Bearer <token>",
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        new_sid = None if session_id(request) or open_path else secrets.token_urlsafe(32)
        request.state.new_sid = new_sid
        response = await call_next(request)
        if new_sid is not None:
            response.set_cookie(SESSION_COOKIE, new_sid, httponly=True, samesite="strict")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if not request.url.path.startswith("/codec/"):
            response.headers.setdefault("X-Frame-Options", "DENY")
            response.headers.setdefault(
                "Content-Security-Policy",
                "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
            )
        return response
