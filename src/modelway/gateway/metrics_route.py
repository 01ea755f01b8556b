"""``GET /metrics``: the Prometheus exposition, for whoever may read it.

With auth configured (a master key): the master key or ``metrics.token`` as a bearer
token. In open mode: loopback clients, and others only with ``metrics.token`` (set one to
scrape an open gateway from another host), since anyone else could read what the gateway
serves and to whom. ``metrics.enabled: false``: 404. A refused key counts as an auth
failure, as on every other route.
"""

from __future__ import annotations

import hmac

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelway.errors import AuthenticationError
from modelway.gateway.auth import presented_key
from modelway.gateway.state import GatewayState

_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def _json(status: int, message: str) -> Response:
    body = '{"error": {"message": "' + message + '", "type": "invalid_request_error"}}'
    return Response(body, status_code=status, media_type="application/json")


def _allowed(state: GatewayState, request: Request) -> Response | None:
    """None when the request may read the metrics, else the refusal."""
    try:
        key = presented_key(request.scope)
    except AuthenticationError:  # the key header sent twice
        key = None
    token = state.config.metrics.token
    if state.auth.is_open:
        host = request.client.host if request.client else ""
        if host in _LOOPBACK or _matches(key, token):
            return None
        return _json(403, "open mode serves /metrics to loopback clients and metrics.token only")
    master = state.auth.master_key
    if _matches(key, token) or _matches(key, master.reveal() if master is not None else None):
        return None
    state.auth.failures += 1  # modelway_refusals_total{reason="auth_failed"}, as elsewhere
    return _json(401, "/metrics needs the master key or metrics.token as a bearer token")


def _matches(key: str | None, secret: str | None) -> bool:
    return bool(key and secret and hmac.compare_digest(key.encode(), secret.encode()))


async def metrics(request: Request) -> Response:
    state: GatewayState | None = getattr(request.app.state, "gateway", None)
    if state is None or state.metrics is None:
        return _json(404 if state is not None else 503, "metrics are off")
    refused = _allowed(state, request)
    if refused is not None:
        return refused
    return Response(state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


ROUTES = [Route("/metrics", metrics, methods=["GET"])]
