"""The response cache in the admin API: what it holds, and clearing it (``modelway cache``).

``GET /admin/api/cache`` gives the backend's entries and bytes; ``DELETE`` drops them all,
or one namespace's (``?namespace=team:<name>``, ``key:<id>``, ``shared``, ``open``).
With Redis every replica shares what is cleared at once; in memory the answering worker
drops its entries and counts the clear in the store, and every other worker of the
gateway drops its own within 5 s (``cache.clears``). ``removed`` counts this worker's.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelway.cache import ResponseCache
from modelway.errors import BadRequest, NotFound
from modelway.gateway.admin_api import json_response
from modelway.gateway.admin_guard import admin_only
from modelway.gateway.state import GatewayState

MAX_NAMESPACE = 300


def _cache(request: Request) -> ResponseCache:
    state: GatewayState = request.app.state.gateway
    cache = state.calls.cache
    if cache is None:
        raise NotFound("this gateway has no response cache")
    return cache


@admin_only
async def get_cache(request: Request) -> Response:
    """The backend, its entries and their bytes, and the ``cache:`` settings in force."""
    cache = _cache(request)
    stats = await cache.stats()
    settings = cache.settings
    return json_response(
        {
            "backend": stats.backend,
            "entries": stats.entries,
            "bytes": stats.bytes,
            "max_bytes": stats.max_bytes,
            "ttl": settings.ttl,
            "namespace": settings.namespace,
            "deterministic_only": settings.deterministic_only,
        }
    )


@admin_only
async def delete_cache(request: Request) -> Response:
    """Drop every entry, or one namespace's (``?namespace=``); how many went."""
    namespace = request.query_params.get("namespace")
    if namespace is not None and not 0 < len(namespace) <= MAX_NAMESPACE:
        raise BadRequest(f"namespace: 1 to {MAX_NAMESPACE} characters")
    cache = _cache(request)
    removed = await cache.clear(namespace)
    if cache.shares_clears:
        # In memory: the other workers read the count and drop theirs within 5 s.
        state: GatewayState = request.app.state.gateway
        await state.store.cache_clears.bump(namespace)
        await cache.apply_clears(await state.store.cache_clears.generations())
    return json_response({"removed": removed, "namespace": namespace})


ROUTES = [
    Route("/admin/api/cache", get_cache, methods=["GET"]),
    Route("/admin/api/cache", delete_cache, methods=["DELETE"]),
]
