"""Signing in to the admin dashboard: ``/admin/api/session`` (POST, GET, DELETE).

``POST`` takes the master key, or an admin account's email and password, and answers
who signed in, the session's CSRF token and when it expires, with the ``mw_admin``
cookie (``HttpOnly; SameSite=Strict; Path=/admin``, ``Secure`` when the request came
over TLS — the ASGI scope's scheme, which a proxy in ``server.trusted_proxies`` may set
with ``X-Forwarded-Proto``, ``gateway.proxies``). The master key is compared in constant
time and never sent back. Wrong credentials are a 401 and count against the client
address's failed key checks (``key_attempts``); past the limit, a 429.
"""

from __future__ import annotations

import hmac
from typing import Annotated

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelway.errors import AuthenticationError, BadRequest, CsrfFailed, PermissionDenied
from modelway.gateway.admin_api import decode_body, json_response
from modelway.gateway.admin_guard import (
    COOKIE,
    NO_MASTER_KEY,
    check_csrf,
    session_view,
    signed_in,
)
from modelway.gateway.auth import peer_host
from modelway.gateway.browser_guard import cross_origin
from modelway.gateway.http import answers_errors, read_body
from modelway.gateway.state import GatewayState
from modelway.store import AdminSession

WRONG_MASTER_KEY = "wrong master key"
WRONG_CREDENTIALS = "wrong email or password, or not an admin account"
#: Bounds on what a sign-in body may carry (a password's own bound is in ``store.users``).
Credential = Annotated[str, msgspec.Meta(max_length=1024)]


class SignIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``POST /admin/api/session``: ``master_key``, or ``email`` and ``password``."""

    master_key: Credential | None = None
    email: Annotated[str, msgspec.Meta(max_length=320)] | None = None
    password: Credential | None = None

    def __repr__(self) -> str:  # never the key or the password, in any log or error
        return f"SignIn(email={self.email!r})"


async def _open_session(state: GatewayState, sign_in: SignIn) -> tuple[str, AdminSession]:
    """Check the credentials and open a session; ``AuthenticationError`` when wrong."""
    master = state.auth.master_key
    if sign_in.master_key is not None:
        assert master is not None
        if not hmac.compare_digest(sign_in.master_key.encode(), master.reveal().encode()):
            raise AuthenticationError(WRONG_MASTER_KEY)
        return await state.admin_sessions.open_master()
    assert sign_in.email is not None and sign_in.password is not None
    try:
        user = await state.store.users.authenticate(sign_in.email, sign_in.password)
    except AuthenticationError:
        raise AuthenticationError(WRONG_CREDENTIALS) from None
    if not user.is_admin:
        raise AuthenticationError(WRONG_CREDENTIALS)
    return await state.admin_sessions.open_user(user)


def _with_cookie(response: Response, request: Request, token: str, max_age: int) -> Response:
    response.set_cookie(
        COOKIE,
        token,
        max_age=max_age,
        path="/admin",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response


@answers_errors
async def post_session(request: Request) -> Response:
    """Sign in: the session's view, and its cookie."""
    state: GatewayState = request.app.state.gateway
    if state.auth.master_key is None:
        raise PermissionDenied(NO_MASTER_KEY)
    if cross_origin(request.headers):  # no page of another site signs a browser in
        raise CsrfFailed("cross-site sign-in refused: sign in from the admin page itself")
    sign_in = decode_body(await read_body(request, state.body_limits), SignIn)
    by_password = sign_in.email is not None or sign_in.password is not None
    if (sign_in.master_key is None) == (not by_password) or (
        by_password and (sign_in.email is None or sign_in.password is None)
    ):
        raise BadRequest("give master_key, or email and password")
    token, session = await state.auth.attempts.attempt(
        peer_host(request.scope), lambda: _open_session(state, sign_in)
    )
    response = json_response(session_view(session))
    return _with_cookie(response, request, token, int(state.admin_sessions.ttl))


@answers_errors
async def get_session(request: Request) -> Response:
    """Who is signed in, with the session's CSRF token; 401 if nobody, 403 if nobody can
    be (no master key: the admin API is off, and the page says so instead of a sign-in)."""
    state: GatewayState = request.app.state.gateway
    if state.auth.master_key is None:
        raise PermissionDenied(NO_MASTER_KEY)
    _, session = await signed_in(request)
    return json_response(session_view(session))


@answers_errors
async def delete_session(request: Request) -> Response:
    """Sign out: the session row is deleted and the cookie cleared (204)."""
    state: GatewayState = request.app.state.gateway
    token = request.cookies.get(COOKIE)
    if token:
        session = await state.admin_sessions.find(token)
        if session is not None:
            check_csrf(request, session)
            await state.admin_sessions.close(token)
    response = Response(status_code=204, headers={"cache-control": "no-store"})
    return _with_cookie(response, request, "", 0)


ROUTES = [
    Route("/admin/api/session", post_session, methods=["POST"]),
    Route("/admin/api/session", get_session, methods=["GET"]),
    Route("/admin/api/session", delete_session, methods=["DELETE"]),
]
