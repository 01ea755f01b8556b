"""Who is calling: the master key, a virtual key, or nobody in open mode.

Keys come as ``Authorization: Bearer <key>`` or ``x-api-key: <key>`` (the Anthropic
SDK's header), each header at most once: with two, the HTTP layers in front of the
gateway and the gateway itself could each pick another one, so the request is refused.
A virtual key is verified with Argon2 once per process and then served from
``KeyVerifier``'s cache, re-read by id every few seconds so a revocation reaches every
replica within 5 s; checks of keys not verified yet are limited per client address
(``key_attempts``). With no master key and no virtual keys the gateway is open
(``modelway serve`` allows that on loopback only).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Protocol

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from modelway.background import in_background
from modelway.calls import ANONYMOUS, MASTER, UNAUTHENTICATED, Caller
from modelway.config import KeyChecks
from modelway.errors import AuthenticationError, ModelwayError, StoreUnavailable
from modelway.gateway.dialect_paths import EMBEDDING_PATHS, error_dialect
from modelway.gateway.http import error_response
from modelway.gateway.key_attempts import KeyAttempts
from modelway.gateway.key_changes import KeyChanges
from modelway.outages import transient
from modelway.secrets import Secret
from modelway.store import KeyVerifier, Store

log = logging.getLogger("modelway.auth")
#: How often open mode checks whether a virtual key has appeared (created by the CLI).
OPEN_MODE_RECHECK_SECONDS = 5.0
#: Paths anyone may reach: health probes, metrics, and the pages (their APIs are guarded).
_PUBLIC_PREFIXES = ("/health", "/metrics", "/static/", "/auth/")
_PUBLIC_PATHS = frozenset({"/", "/admin", "/favicon.ico"})
#: Paths whose routes check the caller themselves: the admin API also takes a session
#: cookie instead of a key (``admin_guard``).
_OWN_GUARD_PREFIXES = ("/admin/api/",)
_MISSING = "missing API key: send it as 'Authorization: Bearer <key>' or in the 'x-api-key' header"
_REPEATED = "more than one {} header: send the API key in one header, once"


class GranianHeaders(Protocol):
    """An RSGI request's headers, as granian gives them (every value of a name: ``get_all``).

    granian gives no value that is not ASCII text, though the name stays ``in`` them: a
    header sent only with such values reads as present with none (``hidden_value``).
    """

    def get(self, key: str, default: None = None, /) -> str | None: ...
    def get_all(self, key: str, /) -> list[str]: ...
    def __contains__(self, key: str, /) -> bool: ...


#: A request's headers as either server interface gives them.
RequestHeaders = Headers | GranianHeaders


def request_caller(request: Request) -> Caller:
    """The caller ``AuthMiddleware`` identified (anonymous while the gateway is open)."""
    caller: Caller = request.scope.get("state", {}).get("caller", ANONYMOUS)
    return caller


def presented_key(scope: Scope) -> str | None:
    """The key in an ASGI request's ``Authorization: Bearer`` or ``x-api-key`` header."""
    return headers_key(Headers(scope=scope))


def headers_key(headers: RequestHeaders) -> str | None:
    """The key in a request's headers (Starlette's or granian's), by ``key_in``; a key
    header whose value is not ASCII text is refused as such, not told as missing."""
    key = key_in(header_values(headers, "authorization"), header_values(headers, "x-api-key"))
    if key is None:
        for name in ("Authorization", "x-api-key"):
            if hidden_value(headers, name.lower()):
                raise AuthenticationError(f"the {name} header is not ASCII text, as a key is")
    return key


def header_values(headers: RequestHeaders, name: str) -> list[str]:
    """Every value of header ``name`` (lower case), however many times it was sent."""
    return headers.getlist(name) if isinstance(headers, Headers) else headers.get_all(name)


def hidden_value(headers: RequestHeaders, name: str) -> bool:
    """Whether header ``name`` was sent with no value granian would give (not ASCII)."""
    return not isinstance(headers, Headers) and name in headers and not headers.get_all(name)


def key_in(authorization: Sequence[str], api_key: Sequence[str]) -> str | None:
    """The key a caller presented: a bearer token, else the ``x-api-key`` value.

    Each argument is every value of its header. A header sent twice is refused
    (``AuthenticationError``), whichever values it carries.
    """
    if len(authorization) > 1:
        raise AuthenticationError(_REPEATED.format("Authorization"))
    if len(api_key) > 1:
        raise AuthenticationError(_REPEATED.format("x-api-key"))
    if authorization:
        scheme, _, token = authorization[0].partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    if api_key and api_key[0].strip():
        return api_key[0].strip()
    return None


def peer_host(scope: Scope) -> str | None:
    """The address of an ASGI request's peer (None when the server does not say)."""
    client = scope.get("client")
    return str(client[0]) if client else None


class Authenticator:
    """Turns a presented key into a ``Caller``; knows whether the gateway is open."""

    def __init__(
        self,
        store: Store,
        master_key: Secret | None,
        key_checks: KeyChecks | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        checks = key_checks or KeyChecks()
        self.store = store
        self.master_key = master_key
        self.verifier = KeyVerifier(store, concurrent=checks.concurrent, waiting=checks.waiting)
        #: Where a key's change is applied and announced (through Redis, once the gateway
        #: has one: ``create_app``'s lifespan).
        self.key_changes = KeyChanges(self.verifier, None)
        self.attempts = KeyAttempts(checks, clock=clock)
        #: Keys refused (401) since start; the metrics copy it.
        self.failures = 0
        self._open = master_key is None
        self._open_checked_at = 0.0
        self._clock = clock
        #: The open-mode re-check running in the background, if one is.
        self._open_check: asyncio.Task[bool] | None = None

    async def refresh_open_mode(self) -> bool:
        """Open only while there is no master key and no live virtual key."""
        if self.master_key is None:
            try:
                self._open = not await self.store.keys.list(include_revoked=False)
            except Exception:
                log.warning("could not count keys; keeping the previous open-mode decision")
            self._open_checked_at = self._clock()
        return self._open

    @contextlib.asynccontextmanager
    async def watching_open_mode(self) -> AsyncIterator[None]:
        """While open, re-read every ``OPEN_MODE_RECHECK_SECONDS`` whether the gateway
        still is, called or not: the first key created (by the CLI, by another replica)
        ends open mode within that on an idle gateway too, whose next call would
        otherwise have been let in on the decision read before it went quiet."""

        async def watch() -> None:
            while self._open:
                await asyncio.sleep(OPEN_MODE_RECHECK_SECONDS)
                await self.refresh_open_mode()

        async with in_background(watch() if self._open else None):
            yield

    def _recheck_open_mode(self) -> None:
        """Re-read whether the gateway is still open, in the background: calls meanwhile
        get the decision last read. (Awaited on the request path, the store query made
        every call that came due for it wait ~1.3 ms: at one stream every few seconds,
        that was a third of the calls.)"""
        if self._open_check is None:
            self._open_check = asyncio.create_task(self.refresh_open_mode())
            self._open_check.add_done_callback(self._open_rechecked)

    def _open_rechecked(self, _: asyncio.Task[bool]) -> None:
        self._open_check = None

    @property
    def is_open(self) -> bool:
        return self._open

    async def caller(self, key: str | None, client: str | None = None) -> Caller:
        """The caller presenting ``key`` from the address ``client``.

        ``AuthenticationError`` if it may not call; ``RateLimited`` or ``ServerBusy`` when
        an unverified key cannot be checked now (``key_attempts``).
        """
        if self._open:
            stale = self._clock() - self._open_checked_at
            if stale > OPEN_MODE_RECHECK_SECONDS:
                if stale > 2 * OPEN_MODE_RECHECK_SECONDS:
                    # Nothing re-read it for a while (no watcher: a loop starved, or an
                    # app without its lifespan): this call waits for the answer rather
                    # than be let in on a decision that old.
                    if not await self.refresh_open_mode():
                        return await self.caller(key, client)
                else:
                    self._recheck_open_mode()
            return ANONYMOUS
        if key is None:
            raise AuthenticationError(_MISSING)
        master = self.master_key
        if master is not None and hmac.compare_digest(key.encode(), master.reveal().encode()):
            return MASTER
        record = await self.verifier.remembered(key)
        if record is None:  # only a key not verified yet pays Argon2, and only within limits
            record = await self.attempts.checked(key, client, self.verifier.check)
        return Caller(
            key_id=record.id,
            name=record.name,
            user=record.owner_user,
            team=record.owner_team,
            key=record,
        )


async def authenticate(auth: Authenticator, key: str | None, client: str | None) -> Caller:
    """The caller presenting ``key`` from ``client``; ``ModelwayError`` (401/429/503) if not."""
    try:
        return await auth.caller(key, client)
    except ModelwayError as error:
        if error.status == 401:
            auth.failures += 1  # modelway_refusals_total{reason="auth_failed"}
        raise
    except Exception as error:
        # A key not yet cached while the store is down: say so, do not guess.
        if transient(error):
            auth.store.outage.failed(error)  # logged once per outage
        else:
            log.warning("could not check a key", exc_info=True)
        raise StoreUnavailable("the key store is unreachable; try again shortly") from None


class AuthMiddleware:
    """Puts the ``Caller`` in ``scope["state"]["caller"]``; refuses in the caller's dialect."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if (
            path in _PUBLIC_PATHS
            or path.startswith(_PUBLIC_PREFIXES)
            or path.startswith(_OWN_GUARD_PREFIXES)
        ):
            await self.app(scope, receive, send)
            return
        state = getattr(scope["app"].state, "gateway", None)
        if state is None:  # still starting
            await self.app(scope, receive, send)
            return
        try:
            key = presented_key(scope)
            caller = await authenticate(state.auth, key, peer_host(scope))
        except ModelwayError as error:
            embeddings = EMBEDDING_PATHS.get(path) if scope["method"] == "POST" else None
            if embeddings is not None:  # a metered call refused for its key: recorded too
                request_id = scope.get("state", {}).get("request_id", "")
                await state.calls.refused(
                    UNAUTHENTICATED, dialect=embeddings.name, request_id=request_id, error=error
                )
            dialect = error_dialect(path, Headers(scope=scope))
            await error_response(dialect, error)(scope, receive, send)
            return
        scope.setdefault("state", {})["caller"] = caller
        await self.app(scope, receive, send)
