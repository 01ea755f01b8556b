"""Health endpoints: liveness touches nothing, readiness is this replica's own state,
``/health`` asks the shared store and Redis."""

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
    """Whether this replica can serve: the engine is built and usage records have somewhere
    to go (the store or the spill file).

    The store and Redis being unreachable do not make a replica unready: every replica
    shares them, so a database restart would pull every replica out of the load balancer
    at once while each could still serve (records spill, limits fall back to memory).
    Their state is in ``GET /health`` and ``modelway_dependency_up``; it is shown here as
    last seen, without waiting on either.
    """
    state: GatewayState | None = getattr(request.app.state, "gateway", None)
    if state is None:
        return Response(b'{"status":"starting"}', status_code=503, media_type="application/json")
    checks = {"engine": "ok", **_last_seen(state)}
    writer = state.calls.accounts.recorder
    if isinstance(writer, UsageWriter):
        checks["usage_records"] = "ok" if writer.writable else "unwritable"
        if writer.dropped:
            checks["usage_records_dropped"] = str(writer.dropped)
    fine = checks.get("usage_records", "ok") == "ok"
    return Response(
        orjson.dumps({"status": "ready" if fine else "unavailable", "checks": checks}),
        status_code=200 if fine else 503,
        media_type="application/json",
    )


async def health(request: Request) -> Response:
    """Uptime, version, the providers that are enabled and whether the store and Redis
    answer now (asked here; an outage begun or ended is logged once)."""
    state: GatewayState = request.app.state.gateway
    router = state.engine.router
    limits = state.calls.accounts.limits
    dependencies = {"store": "ok" if await state.store.ping() else "unreachable"}
    if limits.backend == "redis":
        dependencies["redis"] = "ok" if await limits.ping() else "unreachable"
    body = {
        "status": "ok" if all(v == "ok" for v in dependencies.values()) else "degraded",
        "dependencies": dependencies,
        "version": __version__,
        "uptime_seconds": round(time.time() - state.started_at, 3),
        "providers": sorted({backend.name for backend in router.backends.values()}),
        "aliases": sorted(router.aliases),
        "default_provider": router.default_provider,
        "deployments": _deployments(router),
    }
    return Response(orjson.dumps(body), media_type="application/json")


def _last_seen(state: GatewayState) -> dict[str, str]:
    """The store's and Redis's state as this process's last calls to them found it."""
    seen = {"store": "unreachable" if state.store.outage.down else "ok"}
    outage = state.calls.accounts.limits.outage
    if outage is not None:
        seen["redis"] = "unreachable" if outage.down else "ok"
    return seen


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
