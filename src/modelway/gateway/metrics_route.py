"""``GET /metrics``: the Prometheus exposition, for whoever may read it.

With auth configured (a master key): the master key or ``metrics.token`` as a bearer
token. In open mode: loopback clients, and others only with ``metrics.token`` (set one to
scrape an open gateway from another host), since anyone else could read what the gateway
serves and to whom. ``metrics.enabled: false``: 404. A wrong key counts as an auth
failure, as on every other route, and against its address's failed key checks
(``key_attempts``): past ``server.key_checks.failures_per_address`` a window, 429 with
``Retry-After``, so the master key cannot be guessed here at the network's speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from typing import NoReturn

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelway.errors import AuthenticationError, PermissionDenied
from modelway.gateway.auth import peer_host, presented_key
from modelway.gateway.http import answers_errors
from modelway.gateway.state import GatewayState

_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
_OPEN = "open mode serves /metrics to loopback clients and metrics.token only"
_NEEDS = "/metrics needs the master key or metrics.token as a bearer token"


def _json(status: int, message: str) -> Response:
    body = '{"error": {"message": "' + message + '", "type": "invalid_request_error"}}'
    return Response(body, status_code=status, media_type="application/json")


async def _check(state: GatewayState, request: Request) -> None:
    """Returns when the request may read the metrics; raises the refusal otherwise.

    A key that is wrong is a failed check of its address (``key_attempts``), in open mode
    too (a guess of ``metrics.token``); no key at all guesses nothing and is not counted.
    """
    try:
        key = presented_key(request.scope)
    except AuthenticationError:  # the key header sent twice
        key = None
    host = peer_host(request.scope)
    if state.auth.is_open and host in _LOOPBACK:
        return
    if key is None:
        _refuse(state)
    await state.auth.attempts.attempt(host, lambda: _compare(state, key))


async def _compare(state: GatewayState, key: str) -> None:
    master = state.auth.master_key
    if _matches(key, state.config.metrics.token) or (
        not state.auth.is_open and master is not None and _matches(key, master.reveal())
    ):
        return
    if state.auth.is_open:
        raise _WrongToken(_OPEN)  # answered 403, but counted: a wrong token is a guess
    _refuse(state)


def _refuse(state: GatewayState) -> NoReturn:
    if state.auth.is_open:
        raise PermissionDenied(_OPEN)
    state.auth.failures += 1  # modelway_refusals_total{reason="auth_failed"}, as elsewhere
    raise AuthenticationError(_NEEDS)


class _WrongToken(AuthenticationError):
    """A wrong ``metrics.token`` on an open gateway: a failed check, answered 403."""

    status = 403


def _matches(key: str | None, secret: str | None) -> bool:
    return bool(key and secret and hmac.compare_digest(key.encode(), secret.encode()))


@answers_errors
async def metrics(request: Request) -> Response:
    state: GatewayState | None = getattr(request.app.state, "gateway", None)
    if state is None or state.metrics is None:
        return _json(404 if state is not None else 503, "metrics are off")
    await _check(state, request)
    await _probe_dependencies(state)
    state.metrics.refresh()  # on the loop: it reads what the calls keep
    # Rendered in a thread: thousands of series (a key holder can name that many models)
    # took ~0.75 s of the event loop a scrape, every call on the worker waiting.
    body = await asyncio.to_thread(state.metrics.render)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


#: Seconds a scrape waits for the store's and Redis's answers to a ping.
PROBE_SECONDS = 1.0


async def _probe_dependencies(state: GatewayState) -> None:
    """Ask the store and Redis whether they answer, so ``modelway_dependency_up`` is
    what they say now: it followed only the calls, and a gateway whose calls use neither
    (no limited key, no cache) showed Redis up through its whole outage. A ping that
    fails starts the outage as a failed call does (logged once)."""
    pings = [state.store.ping()]
    limits = state.calls.accounts.limits
    if limits.backend == "redis":
        pings.append(limits.ping())
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(PROBE_SECONDS):
            await asyncio.gather(*pings, return_exceptions=True)


ROUTES = [Route("/metrics", metrics, methods=["GET"])]
