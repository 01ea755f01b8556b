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
from modelway.store.writer import UsageWriter


async def live(request: Request) -> Response:
    """The process is up."""
    return Response(b'{"status":"ok"}', media_type="application/json")


async def ready(request: Request) -> Response:
    """Ready to serve: the engine is built, the store answers and usage records have
    somewhere to go (the store or the spill file); Redis joins when used."""
    state: GatewayState | None = getattr(request.app.state, "gateway", None)
    if state is None:
        return Response(b'{"status":"starting"}', status_code=503, media_type="application/json")
    checks = {"engine": "ok", "store": "ok" if await state.store.ping() else "unreachable"}
    writer = state.calls.accounts.recorder
    if isinstance(writer, UsageWriter):
        checks["usage_records"] = "ok" if writer.writable else "unwritable"
        if writer.dropped:
            checks["usage_records_dropped"] = str(writer.dropped)
    fine = checks["store"] == "ok" and checks.get("usage_records", "ok") == "ok"
    return Response(
        orjson.dumps({"status": "ready" if fine else "unavailable", "checks": checks}),
        status_code=200 if fine else 503,
        media_type="application/json",
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
