"""The response cache in the admin API: what it holds, and clearing it (``modelway cache``).

``GET /admin/api/cache`` gives the backend's entries and bytes; ``DELETE`` drops them all,
or one namespace's (``?namespace=team:<name>``, ``key:<id>``, ``shared``, ``master``,
``open``). A namespace must be one the cache uses, of a team or key the store knows:
anything else is a 400, so a clear's count in the store (one row per namespace, re-read
by every worker) is bounded by the teams and keys, and ``*`` (the whole cache's row)
cannot be named. With Redis every replica shares what is cleared at once; in memory the
answering worker drops its entries and counts the clear in the store, and every other
worker of the gateway drops its own within 5 s (``cache.clears``). ``removed`` counts
this worker's.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelway.cache import ResponseCache, parse_namespace
from modelway.config import AliasCache
from modelway.errors import BadRequest, NotFound
from modelway.gateway.admin_api import json_response
from modelway.gateway.admin_guard import admin_only
from modelway.gateway.state import GatewayState
from modelway.store import Store

MAX_NAMESPACE = 300


def _cache(request: Request) -> ResponseCache:
    state: GatewayState = request.app.state.gateway
    cache = state.calls.cache
    if cache is None:
        raise NotFound("this gateway has no response cache")
    return cache


@admin_only
async def get_cache(request: Request) -> Response:
    """The backend, its entries and their bytes, and the settings in force: the ``cache:``
    section's (``every_alias``: whether it is there, turning the cache on for every alias)
    and each alias's own ``cache:`` where it sets one."""
    cache = _cache(request)
    stats = await cache.stats()
    settings = cache.settings
    config = request.app.state.gateway.config
    aliases = [
        {"alias": alias.name, **_own(alias.cache)}
        for alias in config.models
        if alias.cache is not None
    ]
    return json_response(
        {
            "backend": stats.backend,
            "entries": stats.entries,
            "bytes": stats.bytes,
            "max_bytes": stats.max_bytes,
            "every_alias": config.cache is not None,
            "ttl": settings.ttl,
            "namespace": settings.namespace,
            "deterministic_only": settings.deterministic_only,
            "aliases": aliases,
        }
    )


def _own(setting: bool | AliasCache) -> dict[str, Any]:
    """What an alias's own ``cache:`` sets (its unset fields follow the section's)."""
    if isinstance(setting, bool):
        return {"enabled": setting}
    own = {name: getattr(setting, name) for name in setting.__struct_fields__}
    return {name: value for name, value in own.items() if value is not None}


@admin_only
async def delete_cache(request: Request) -> Response:
    """Drop every entry, or one namespace's (``?namespace=``); how many went."""
    namespace = request.query_params.get("namespace")
    cache = _cache(request)
    state: GatewayState = request.app.state.gateway
    if namespace is not None:
        await _check_namespace(state.store, namespace)
    removed = await cache.clear(namespace)
    if cache.shares_clears:
        # In memory: the other workers read the count and drop theirs within 5 s.
        await state.store.cache_clears.bump(namespace)
        await cache.apply_clears(await state.store.cache_clears.generations())
    return json_response({"removed": removed, "namespace": namespace})


async def _check_namespace(store: Store, namespace: str) -> None:
    """``BadRequest`` unless ``namespace`` is one the cache uses, of a team or key in ``store``."""
    parsed = parse_namespace(namespace) if len(namespace) <= MAX_NAMESPACE else None
    if parsed is None:
        raise BadRequest(
            f"namespace: team:<name>, key:<id>, shared, master or open (not {namespace[:40]!r});"
            " leave it out to clear the whole cache"
        )
    kind, name = parsed
    if kind == "key" and await store.keys.get(name) is None:
        raise BadRequest(f"namespace: there is no key {name[:40]!r}")
    if kind == "team" and not (
        await store.keys.any_in_team(name) or await store.teams.get(name) is not None
    ):
        raise BadRequest(f"namespace: there is no team {name[:40]!r}")


ROUTES = [
    Route("/admin/api/cache", get_cache, methods=["GET"]),
    Route("/admin/api/cache", delete_cache, methods=["DELETE"]),
]
