"""Health endpoints: liveness touches nothing, readiness asks whether this replica can
serve (with the store and Redis, unless ``server.ready_needs_dependencies`` is false),
``/health`` says everything."""

from __future__ import annotations

import asyncio
import math
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


#: How long one answer of the store and Redis serves readiness probes (a probe per replica
#: every few seconds, or anyone calling it in a loop, asks the database at most this often).
ASKED_FOR = 1.0


async def ready(request: Request) -> Response:
    """Whether this replica can serve: the engine is built, usage records have somewhere
    to go (the store or the spill file), and the store and Redis (when configured) answer.

    With ``server.ready_needs_dependencies: false`` the store and Redis do not count (shown
    as last seen, not asked): every replica shares them, so a database restart would pull
    every replica out of the load balancer at once while each could still serve (records
    spill, limits fall back to memory).
    """
    state: GatewayState | None = getattr(request.app.state, "gateway", None)
    if state is None:
        return Response(b'{"status":"starting"}', status_code=503, media_type="application/json")
    needed = ["usage_records"]
    if state.config.server.ready_needs_dependencies:
        dependencies = await _probe(request).asked(state)
        needed += dependencies
    else:
        dependencies = _last_seen(state)
    checks = {"engine": "ok", **dependencies}
    writer = state.calls.accounts.recorder
    if isinstance(writer, UsageWriter):
        checks["usage_records"] = "ok" if writer.writable else "unwritable"
        if writer.dropped:
            checks["usage_records_dropped"] = str(writer.dropped)
    fine = all(checks.get(name, "ok") == "ok" for name in needed)
    return Response(
        orjson.dumps({"status": "ready" if fine else "unavailable", "checks": checks}),
        status_code=200 if fine else 503,
        media_type="application/json",
    )


async def health(request: Request) -> Response:
    """Uptime, version, the providers that are enabled and whether the store and Redis
    answer (asked now, or at most ``ASKED_FOR`` ago, as readiness is: anyone calling it in
    a loop sends the database no query per call; an outage begun or ended is logged once)."""
    state: GatewayState = request.app.state.gateway
    router = state.engine.router
    dependencies = await _probe(request).asked(state)
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


def _probe(request: Request) -> _Probe:
    """The app's one probe of the store and Redis, shared by readiness and ``/health``."""
    probe: _Probe = request.app.state.__dict__.setdefault("dependency_probe", _Probe())
    return probe


class _Probe:
    """The store's and Redis's answers, asked at most every ``ASKED_FOR`` seconds; probes
    arriving meanwhile share one asking."""

    def __init__(self) -> None:
        self._asking: asyncio.Task[dict[str, str]] | None = None
        self._asked_at = -math.inf

    async def asked(self, state: GatewayState) -> dict[str, str]:
        now = time.monotonic()
        if self._asking is None or (self._asking.done() and now - self._asked_at > ASKED_FOR):
            self._asking = asyncio.ensure_future(_dependencies(state))
            self._asked_at = now
        return dict(await asyncio.shield(self._asking))


async def _dependencies(state: GatewayState) -> dict[str, str]:
    """Whether the store and Redis (when limits use it) answer now."""
    limits = state.calls.accounts.limits
    pings = {"store": state.store.ping()}
    if limits.backend == "redis":
        pings["redis"] = limits.ping()
    answers = await asyncio.gather(*pings.values())
    return {name: "ok" if up else "unreachable" for name, up in zip(pings, answers, strict=True)}


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
