"""Health endpoints: liveness touches nothing, readiness checks dependencies."""

from __future__ import annotations

import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelway import __version__
from modelway.gateway.state import GatewayState
from modelway.routing.resolve import Router


async def live(request: Request) -> Response:
    """The process is up."""
    return Response(b'{"status":"ok"}', media_type="application/json")


async def ready(request: Request) -> Response:
    """Ready to serve: the engine is built and the store answers (Redis joins when used)."""
    state: GatewayState | None = getattr(request.app.state, "gateway", None)
    if state is None:
        return Response(b'{"status":"starting"}', status_code=503, media_type="application/json")
    if not await state.store.ping():
        return Response(
            b'{"status":"unavailable","checks":{"engine":"ok","store":"unreachable"}}',
            status_code=503,
            media_type="application/json",
        )
    return Response(
        b'{"status":"ready","checks":{"engine":"ok","store":"ok"}}', media_type="application/json"
    )


async def health(request: Request) -> Response:
    """Uptime, version and the providers that are enabled."""
    state: GatewayState = request.app.state.gateway
    router = state.engine.router
    body = {
        "status": "ok",
        "version": __version__,
        "uptime_seconds": round(time.time() - state.started_at, 3),
        "providers": sorted({backend.name for backend in router.backends.values()}),
        "aliases": sorted(router.aliases),
        "default_provider": router.default_provider,
        "deployments": _deployments(router),
    }
    return Response(orjson.dumps(body), media_type="application/json")


def _deployments(router: Router) -> dict[str, list[dict[str, Any]]]:
    """Each alias's deployments: healthy, cooling (skipped) or probing, with live counters."""
    now = time.monotonic()
    return {
        alias: [state.snapshot(now) for state in states]
        for alias, states in router.deployment_states().items()
    }


ROUTES = [
    Route("/health/live", live, methods=["GET"]),
    Route("/health/ready", ready, methods=["GET"]),
    Route("/health", health, methods=["GET"]),
]
