"""The gateway's ASGI application: a direct path for chat calls in front of Starlette."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping

from sqlalchemy.exc import DBAPIError, DisconnectionError
from starlette.applications import Starlette
from starlette.datastructures import Headers, State
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Match
from starlette.types import Receive, Scope, Send

from modelway.background import in_background
from modelway.cache import ResponseCache
from modelway.cache.clears import refreshing as refreshing_cache_clears
from modelway.calls import Calls, seed_budgets, stored_calls
from modelway.calls.relay import Headers as HeaderLookup
from modelway.calls.team_budgets import refreshing as refreshing_team_budgets
from modelway.config import Config, environment, load_config
from modelway.dialects.base import Dialect
from modelway.errors import BadRequest, ModelwayError, NotFound, StoreUnavailable
from modelway.gateway import (
    admin_api,
    admin_cache,
    admin_keys,
    admin_session,
    admin_teams,
    admin_usage,
    anthropic_routes,
    chat,
    chat_api,
    chat_connections,
    health,
    key_changes,
    metrics_route,
    ollama_routes,
    openai_routes,
    signup,
    web_pages,
)
from modelway.gateway.auth import Authenticator, AuthMiddleware, peer_host
from modelway.gateway.browser_guard import BrowserGuard, HostPolicy
from modelway.gateway.dialect_paths import CHAT_PATHS, error_dialect
from modelway.gateway.http import error_response, read_body
from modelway.gateway.key_changes import KeyChanges
from modelway.gateway.proxies import TrustedProxies, parse_networks
from modelway.gateway.request_id import RequestIdMiddleware, RequestIds
from modelway.gateway.state import GatewayState
from modelway.logs import flush_logs
from modelway.observability import tracing
from modelway.observability.call_metrics import install as install_metrics
from modelway.observability.metrics import Metrics
from modelway.outages import transient
from modelway.secrets import Secret
from modelway.store import Store, database_url
from modelway.store.writer import UsageWriter

log = logging.getLogger("modelway.gateway")
#: Set by ``modelway serve`` for its workers: the address it bound (``--host`` or the config).
BIND_HOST_VARIABLE = "MODELWAY_BIND_HOST"
#: Seconds between a worker's copies of its live facts into the shared metric files.
METRICS_REFRESH_SECONDS = 1.0


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error: ModelwayError
    if exc.status_code == 404:
        path = request.scope["path"]
        other = _other_slash(request)
        if other is not None and "text/html" in request.headers.get("accept", ""):
            return RedirectResponse(request.url.replace(path=other), 307)  # a browser: the page
        hint = f" (did you mean {other}?)" if other is not None else ""
        error = NotFound(f"no route {request.method} {path}{hint}")
    elif exc.status_code == 405:
        error = BadRequest(f"{request.url.path} does not take {request.method}")
    else:
        error = ModelwayError(exc.detail or "request refused")
    # In the format the path's callers read (an Ollama client's unknown /api/ route too).
    return Response(
        error_dialect(request.url.path, request.headers).encode_error(error),
        status_code=exc.status_code,
        media_type="application/json",
        headers=exc.headers,
    )


def _other_slash(request: Request) -> str | None:
    """The path with its trailing slash added or taken away, if a route serves that: a
    browser is sent there, an API client told (a redirect is no answer to a POST)."""
    path: str = request.scope["path"]
    other = path.removesuffix("/") if path.endswith("/") else path + "/"
    if not other or other == path:
        return None
    scope = {**request.scope, "path": other}
    for route in request.app.router.routes:
        if route.matches(scope)[0] is not Match.NONE:
            return other
    return None


#: What the store's outage raises on a route's way (its driver's errors, a refused or lost
#: connection): answered by ``_store_down``, which lets anything else be a bug.
_OUTAGE_ERRORS: tuple[type[Exception], ...] = (OSError, DBAPIError, DisconnectionError)
#: The modules the store's connections live in.
_STORE_MODULES = ("sqlalchemy", "asyncpg", "aiosqlite", "modelway.store")


def _from_store(exc: BaseException) -> bool:
    """Whether ``exc`` was raised on the store's way (not a file, or another service)."""
    if isinstance(exc, DBAPIError | DisconnectionError):
        return True
    frame = exc.__traceback__
    while frame is not None:
        if frame.tb_frame.f_globals.get("__name__", "").startswith(_STORE_MODULES):
            return True
        frame = frame.tb_next
    return False


async def _store_down(request: Request, exc: Exception) -> Response:
    """A route that met the store down (the admin API, the chat API, sign-up, ...): a 503
    ``store_unavailable`` in the path's dialect and one warning, as the chat path and
    ``Store.reading`` answer it, not a 500 with two tracebacks. Anything else it catches
    goes on to ``_unexpected_error``."""
    if not (transient(exc) and _from_store(exc)):
        raise exc
    path = request.scope["path"]
    state: GatewayState | None = getattr(request.app.state, "gateway", None)
    if state is not None:
        state.store.outage.failed(exc)  # said once per outage, with its cause
    error = StoreUnavailable("the gateway's store is unreachable; try again shortly")
    log.info("store unreachable on %s (%s)", path, type(exc).__name__, extra={"path": path})
    return error_response(error_dialect(path, request.headers), error)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    path = request.scope["path"]  # not ``request.url``: a query it cannot read failed it
    log.exception("unexpected error", extra={"path": path})
    error = ModelwayError("internal gateway error")
    return error_response(error_dialect(path, request.headers), error)


class Gateway:
    """The ASGI application: chat calls skip Starlette's layers, everything else uses them.

    A chat call is the request that must cost nothing, and Starlette's middleware stack
    and router (five layers, a regex match per route) were a large part of what it did
    cost. Here a POST to a chat path (``CHAT_PATHS``) takes the same steps in one place:
    request id, ``chat_request`` (caller, call, ``X-Request-ID``). The Starlette app keeps
    the lifespan, every other route, and the chat routes for anything that is not a POST.
    Every request first passes ``refused`` (``browser_guard``: Host, origin, content type);
    behind a trusted proxy its scope names the client and scheme the proxy forwarded
    (``proxies``).
    """

    def __init__(
        self,
        app: Starlette,
        ids: RequestIds,
        guard: BrowserGuard | None = None,
        proxies: TrustedProxies | None = None,
    ) -> None:
        self.app = app
        self.ids = ids
        #: By default, open mode answers only to loopback names.
        self.guard = guard or BrowserGuard(HostPolicy((), "127.0.0.1"))
        #: By default no forwarded header is believed.
        self.proxies = proxies or TrustedProxies()

    @property
    def state(self) -> State:
        return self.app.state

    @property
    def gateway(self) -> GatewayState | None:
        """What the routes share, once the lifespan has started (None before)."""
        state: GatewayState | None = getattr(self.app.state, "gateway", None)
        return state

    def lifespan(self) -> contextlib.AbstractAsyncContextManager[object]:
        """Start and stop the gateway around in-process use (tests, profiles)."""
        return self.app.router.lifespan_context(self.app)

    def refused(
        self, state: GatewayState, method: str, path: str, headers: HeaderLookup
    ) -> Response | None:
        """The answer refusing a request a browser must not make (``browser_guard``), or None."""
        error = self.guard.refusal(method, path, headers, state.auth.is_open)
        if error is None:
            return None
        log.info("refused %s %s: %s", method, path, error.code)
        response = error_response(error_dialect(path, headers), error)
        request_id = self.ids.given_or_new(headers.get("x-request-id"))
        response.raw_headers.append((b"x-request-id", request_id.encode("latin-1")))
        return response

    def forwarded(self, scope: Scope) -> Scope:
        """``scope`` with the client and scheme a trusted proxy forwarded (``proxies``)."""
        peer = peer_host(scope)
        if not self.proxies.trusts(peer):
            return scope
        headers = Headers(scope=scope)
        client = self.proxies.client(peer, headers.getlist("x-forwarded-for"))
        scheme = self.proxies.scheme(peer, scope["scheme"], headers.getlist("x-forwarded-proto"))
        return {**scope, "client": (client, 0), "scheme": scheme}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = self.gateway
        if scope["type"] == "http" and state is not None:
            if self.proxies:
                scope = self.forwarded(scope)
            headers = Headers(scope=scope)
            refused = self.refused(state, scope["method"], scope["path"], headers)
            if refused is not None:
                await refused(scope, receive, send)
                return
            dialect = CHAT_PATHS.get(scope["path"]) if scope["method"] == "POST" else None
            if dialect is not None:
                await self._chat(state, dialect, headers, scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _chat(
        self,
        state: GatewayState,
        dialect: Dialect,
        headers: Headers,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        request_id = self.ids.given_or_new(headers.get("x-request-id"))
        read = functools.partial(read_body, Request(scope, receive))
        client = peer_host(scope)
        response = await chat.chat_request(state, dialect, headers, request_id, read, client=client)
        await response(scope, receive, send)


def create_app(
    config: Config, environ: Mapping[str, str], *, clock: Callable[[], float] = time.time
) -> Gateway:
    """The gateway for a validated config and the environment it reads keys from;
    ``clock`` tells admin sessions the time (tests pass their own)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = await Store.open(database_url(environ, config.store.url))  # migrations applied
        calls = stored_calls(config, environ, store)
        try:
            master = environ.get("MODELWAY_MASTER_KEY") or None
            auth = Authenticator(
                store, Secret(master) if master else None, config.server.key_checks
            )
            redis_url = config.redis_url(environ)
            if redis_url is not None:  # key changes heard from every worker and replica
                auth.key_changes = KeyChanges(auth.verifier, key_changes.connect(redis_url))
            if await auth.refresh_open_mode():
                # `modelway serve` has already said so loudly, once for all workers.
                log.info("open mode: no MODELWAY_MASTER_KEY and no virtual keys")
            await seed_budgets(store, calls.accounts, config.budgets)
            metrics = _metrics(config, calls, auth)
            state = GatewayState(
                config=config, calls=calls, store=store, auth=auth, metrics=metrics, clock=clock
            )
            await chat_connections.restore_connections(state)  # connected from the web chat
            app.state.gateway = state
            log.info("worker started", extra={"pid": os.getpid()})
            accounts = calls.accounts
            async with (
                _refreshing(metrics),
                auth.watching_open_mode(),
                auth.key_changes.listening(),
                refreshing_team_budgets(accounts.team_budgets, store, accounts.spending.seed),
                _refreshing_cache_clears(calls.cache, store),
            ):
                yield
        finally:
            log.info("worker stopping", extra={"pid": os.getpid()})
            try:
                await calls.aclose()  # after the server drained: every record is flushed
            finally:
                try:
                    await store.aclose()
                finally:
                    try:
                        if tracing.active():
                            await asyncio.to_thread(tracing.shutdown)  # the last spans leave
                    finally:
                        flush_logs()  # the last lines, which wait to be written together

    ids = RequestIds()
    app = Starlette(
        routes=[
            *chat.ROUTES,
            *openai_routes.ROUTES,
            *anthropic_routes.ROUTES,
            *ollama_routes.ROUTES,
            *health.ROUTES,
            *metrics_route.ROUTES,
            *chat_api.ROUTES,
            *chat_connections.ROUTES,
            *admin_session.ROUTES,
            *admin_keys.ROUTES,
            *admin_cache.ROUTES,
            *admin_teams.ROUTES,
            *admin_api.ROUTES,
            *admin_usage.ROUTES,
            *signup.ROUTES,
            *web_pages.ROUTES,
        ],
        middleware=[
            Middleware(web_pages.SecurityHeadersMiddleware),
            Middleware(RequestIdMiddleware, ids=ids),
            Middleware(AuthMiddleware),
        ],
        exception_handlers={
            HTTPException: _http_error,
            **dict.fromkeys(_OUTAGE_ERRORS, _store_down),
            Exception: _unexpected_error,
        },
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False  # ``_http_error`` tells an API client instead
    bind_host = environ.get(BIND_HOST_VARIABLE) or config.server.host
    guard = BrowserGuard(HostPolicy(config.server.allowed_hosts, bind_host))
    proxies = TrustedProxies(parse_networks(config.server.trusted_proxies))
    return Gateway(app, ids, guard, proxies)


def _metrics(config: Config, calls: Calls, auth: Authenticator) -> Metrics | None:
    if not config.metrics.enabled:
        return None
    writer = calls.accounts.recorder
    metrics = install_metrics(
        calls,
        writer if isinstance(writer, UsageWriter) else None,
        auth,
        max_series=config.metrics.max_series,
        per_key=config.metrics.per_key,
    )
    redis = calls.accounts.limits.outage
    metrics.outages = (auth.store.outage,) if redis is None else (auth.store.outage, redis)
    return metrics


@contextlib.asynccontextmanager
async def _refreshing(metrics: Metrics | None) -> AsyncIterator[None]:
    """With several workers, each copies its live facts into the shared files every
    second, so a scrape answered by another worker sees them (stale by at most that)."""
    if metrics is None or metrics.multiprocess_dir is None:
        yield
        return

    async def refresh() -> None:
        while True:
            await asyncio.sleep(METRICS_REFRESH_SECONDS)
            try:
                metrics.refresh()
            except Exception:
                log.exception("could not refresh the metrics")

    try:
        async with in_background(refresh()):
            yield
    finally:
        metrics.refresh()  # the last word of this worker, kept in its files


def app_from_environment() -> Gateway:
    """The app as worker processes build it: config path from ``MODELWAY_CONFIG``."""
    environ = environment()
    return create_app(load_config(None, environ), environ)


@contextlib.asynccontextmanager
async def _refreshing_cache_clears(
    cache: ResponseCache | None, store: Store
) -> AsyncIterator[None]:
    """Without Redis, clears made on other workers reach this one's cache (``cache.clears``)."""
    if cache is None:
        yield
        return
    async with refreshing_cache_clears(cache, store.cache_clears.generations):
        yield
