"""The one guard of the admin API: the master key as a bearer, or a signed-in session.

- ``Authorization: Bearer <master key>`` (the CLI, scripts): as before, no CSRF token;
  any other valid key is a 403, a wrong one a 401 (counted by ``key_attempts``).
- The ``mw_admin`` cookie that signing in sets (``admin_session``): the session must be
  live in the store (any worker or replica honours it). A state-changing request on it
  also needs ``X-CSRF-Token`` equal to the session's token, and must not come from
  another origin (``Origin``/``Sec-Fetch-Site``, as ``browser_guard`` decides): a page of
  another site has the cookie sent along only if it slips past ``SameSite=Strict``,
  and it can never read the token. Else 403 ``csrf_failed``.

Every answer (errors too) carries ``cache-control: no-store``.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable
from typing import Literal

from starlette.requests import Request
from starlette.responses import Response

from modelway.calls import Caller
from modelway.errors import AuthenticationError, CsrfFailed, PermissionDenied
from modelway.gateway.auth import authenticate, peer_host, presented_key
from modelway.gateway.browser_guard import SAFE_METHODS, cross_origin
from modelway.gateway.http import answers_errors
from modelway.gateway.state import GatewayState
from modelway.store import AdminSession, Store, UserRecord

#: The session cookie: ``HttpOnly; SameSite=Strict; Path=/admin`` (``Secure`` over TLS).
COOKIE = "mw_admin"
CSRF_HEADER = "x-csrf-token"
NO_MASTER_KEY = (
    "the admin API is off: this gateway has no master key (set MODELWAY_MASTER_KEY and restart it)"
)
NOT_MASTER = (
    "the admin API takes the master key (MODELWAY_MASTER_KEY) or a signed-in admin session, "
    "not a virtual key"
)
NOT_SIGNED_IN = "not signed in (or the session has expired): sign in again"
Handler = Callable[[Request], Awaitable[Response]]


class AdminSessions:
    """Signed-in admin sessions: open, find and close them; ``clock`` says what time it is."""

    def __init__(
        self,
        store: Store,
        session_hours: float,
        master_key: Callable[[], str | None],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self.ttl = session_hours * 3600.0
        #: The gateway's master key now: a master session lasts only while it is unchanged.
        self._master_key = master_key
        self._clock = clock

    async def open_master(self) -> tuple[str, AdminSession]:
        """A session for whoever presented the master key: the cookie value and the session."""
        return await self._store.admin_sessions.open(
            "master", now=self._clock(), ttl=self.ttl, secret=self._master_key()
        )

    async def open_user(self, user: UserRecord) -> tuple[str, AdminSession]:
        """A session for an admin account."""
        return await self._store.admin_sessions.open(
            "user", now=self._clock(), ttl=self.ttl, user_id=user.id, email=user.email
        )

    async def find(self, token: str) -> AdminSession | None:
        """The live session of a cookie value, or None."""
        return await self._store.admin_sessions.find(
            token, now=self._clock(), secret=self._master_key()
        )

    async def close(self, token: str) -> None:
        await self._store.admin_sessions.close(token)


def session_view(session: AdminSession) -> dict[str, object]:
    """``{"who", "csrf", "expires_at"}``: what the dashboard needs, never a key."""
    kind: Literal["master", "user"] = session.kind
    return {
        "who": {"kind": kind, "email": session.email},
        "csrf": session.csrf,
        "expires_at": session.expires_at,
    }


async def signed_in(request: Request) -> tuple[str, AdminSession]:
    """The cookie value and live session of a request; ``AuthenticationError`` if none."""
    state: GatewayState = request.app.state.gateway
    token = request.cookies.get(COOKIE)
    session = None if not token else await state.admin_sessions.find(token)
    if token is None or session is None:
        raise AuthenticationError(NOT_SIGNED_IN)
    return token, session


def check_csrf(request: Request, session: AdminSession) -> None:
    """``CsrfFailed`` unless a state-changing request carries the session's token, same-origin."""
    if request.method in SAFE_METHODS:
        return
    if cross_origin(request.headers):
        raise CsrfFailed("cross-site request refused: the admin API answers its own pages only")
    presented = request.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(presented.encode(), session.csrf.encode()):
        raise CsrfFailed(f"missing or wrong {CSRF_HEADER} header: send the session's csrf token")


def admin_only(handler: Handler) -> Handler:
    """Runs ``handler`` for the master key or a signed-in admin session (module docstring)."""

    async def guarded(request: Request) -> Response:
        state: GatewayState = request.app.state.gateway
        if state.auth.master_key is None:
            # Said before any key is checked: a key presented here cannot be the master
            # key, and the caller is told why (not "invalid API key"), nor counted failing.
            raise PermissionDenied(NO_MASTER_KEY)
        key = presented_key(request.scope)
        if key is None and COOKIE in request.cookies:
            _, session = await signed_in(request)
            check_csrf(request, session)
            return await handler(request)
        caller: Caller | None = request.scope.get("state", {}).get("caller")
        if caller is None:  # AuthMiddleware leaves /admin/api/ to this guard
            caller = await authenticate(state.auth, key, peer_host(request.scope))
        if not caller.is_master:
            raise PermissionDenied(NOT_MASTER)
        return await handler(request)

    answer = answers_errors(guarded)

    async def never_cached(request: Request) -> Response:
        response = await answer(request)
        response.headers["cache-control"] = "no-store"
        return response

    never_cached.__doc__ = handler.__doc__
    return never_cached
