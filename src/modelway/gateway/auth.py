"""Who is calling: the master key, a virtual key, or nobody in open mode.

Keys come as ``Authorization: Bearer <key>`` or ``x-api-key: <key>`` (the Anthropic
SDK's header). A virtual key is verified with Argon2 once per process and then served
from ``KeyVerifier``'s cache, re-read by id every few seconds so a revocation reaches
every replica within 5 s. With no master key and no virtual keys the gateway is open
(``modelway serve`` allows that on loopback only).
"""

from __future__ import annotations

import hmac
import logging
import time

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from modelway.calls import ANONYMOUS, MASTER, Caller
from modelway.errors import AuthenticationError, ModelwayError
from modelway.gateway.dialect_paths import error_dialect
from modelway.gateway.http import error_response
from modelway.secrets import Secret
from modelway.store import KeyVerifier, Store

log = logging.getLogger("modelway.auth")
#: How often open mode checks whether a virtual key has appeared (created by the CLI).
OPEN_MODE_RECHECK_SECONDS = 5.0
#: Paths anyone may reach: health probes, metrics, and the pages (their APIs are guarded).
_PUBLIC_PREFIXES = ("/health", "/metrics", "/static/", "/auth/")
_PUBLIC_PATHS = frozenset({"/", "/admin", "/favicon.ico"})
_MISSING = "missing API key: send it as 'Authorization: Bearer <key>' or in the 'x-api-key' header"


def request_caller(request: Request) -> Caller:
    """The caller ``AuthMiddleware`` identified (anonymous while the gateway is open)."""
    caller: Caller = request.scope.get("state", {}).get("caller", ANONYMOUS)
    return caller


def presented_key(scope: Scope) -> str | None:
    """The key in an ASGI request's ``Authorization: Bearer`` or ``x-api-key`` header."""
    authorization = api_key = None
    name: bytes
    value: bytes
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorization = value.decode("latin-1")
        elif name == b"x-api-key":
            api_key = value.decode("latin-1")
    return key_in(authorization, api_key)


def key_in(authorization: str | None, api_key: str | None) -> str | None:
    """The key a caller presented: a bearer token, else the ``x-api-key`` value."""
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    if api_key and api_key.strip():
        return api_key.strip()
    return None


class Authenticator:
    """Turns a presented key into a ``Caller``; knows whether the gateway is open."""

    def __init__(self, store: Store, master_key: Secret | None) -> None:
        self.store = store
        self.master_key = master_key
        self.verifier = KeyVerifier(store)
        self._open = master_key is None
        self._open_checked_at = 0.0

    async def refresh_open_mode(self) -> bool:
        """Open only while there is no master key and no live virtual key."""
        if self.master_key is None:
            try:
                self._open = not await self.store.keys.list(include_revoked=False)
            except Exception:
                log.warning("could not count keys; keeping the previous open-mode decision")
            self._open_checked_at = time.monotonic()
        return self._open

    @property
    def is_open(self) -> bool:
        return self._open

    async def caller(self, key: str | None) -> Caller:
        """The caller presenting ``key``; ``AuthenticationError`` if it may not call."""
        if self._open:
            if time.monotonic() - self._open_checked_at > OPEN_MODE_RECHECK_SECONDS:
                await self.refresh_open_mode()
            if self._open:
                return ANONYMOUS
        if key is None:
            raise AuthenticationError(_MISSING)
        master = self.master_key
        if master is not None and hmac.compare_digest(key.encode(), master.reveal().encode()):
            return MASTER
        record = await self.verifier.verify(key)
        return Caller(
            key_id=record.id,
            name=record.name,
            user=record.owner_user,
            team=record.owner_team,
            key=record,
        )


async def authenticate(auth: Authenticator, key: str | None) -> Caller:
    """The caller presenting ``key``; ``ModelwayError`` (401/403/503) when it may not call."""
    try:
        return await auth.caller(key)
    except ModelwayError:
        raise
    except Exception:
        # A key not yet cached while the store is down: say so, do not guess.
        log.warning("could not check a key: the store is unreachable", exc_info=True)
        unreachable = ModelwayError("the key store is unreachable; try again shortly")
        unreachable.status = 503
        raise unreachable from None


class AuthMiddleware:
    """Puts the ``Caller`` in ``scope["state"]["caller"]``; refuses in the caller's dialect."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path in _PUBLIC_PATHS or path.startswith(_PUBLIC_PREFIXES):
            await self.app(scope, receive, send)
            return
        state = getattr(scope["app"].state, "gateway", None)
        if state is None:  # still starting
            await self.app(scope, receive, send)
            return
        try:
            caller = await authenticate(state.auth, presented_key(scope))
        except ModelwayError as error:
            await error_response(error_dialect(path), error)(scope, receive, send)
            return
        scope.setdefault("state", {})["caller"] = caller
        await self.app(scope, receive, send)
