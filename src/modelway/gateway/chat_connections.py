"""The web chat's connect dialog: providers added at run time, their keys kept server-side.

A key arrives once, is saved in the store and handed to the engine; it is never sent
back (the list says only whether a provider has one) and never logged. A base URL at a
link-local or cloud metadata address is refused (``providers.destinations``), and a
provider connected here has its upstream errors told by status alone.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelway.errors import BadRequest, ModelwayError, NotFound
from modelway.gateway.chat_api import _json, _json_object, _require_admin
from modelway.gateway.http import answers_errors
from modelway.gateway.state import GatewayState
from modelway.providers.destinations import refused_destination
from modelway.providers.registry import SPECS

log = logging.getLogger("modelway.chat")


def _known_providers() -> list[str]:
    return sorted(name for name in SPECS if name != "mock")


@answers_errors
async def list_connections(request: Request) -> Response:
    """Providers connected at run time (whether each has a key, never the key)."""
    state: GatewayState = request.app.state.gateway
    _require_admin(request)
    unlisted = state.engine.unlisted  # as the last model listing found them
    connections = [
        {
            "provider": c.provider,
            "base_url": c.base_url,
            "has_key": c.has_key,
            "models_error": unlisted.get(c.provider),
        }
        for c in await state.store.connections.list()
    ]
    return _json({"connections": connections, "providers": _known_providers()})


@answers_errors
async def add_connection(request: Request) -> Response:
    """Connect (or re-key) a provider; its models are usable at once."""
    state: GatewayState = request.app.state.gateway
    _require_admin(request)
    body = await _json_object(request)
    provider, api_key, base_url = body.get("provider"), body.get("api_key"), body.get("base_url")
    if not isinstance(provider, str) or provider not in SPECS or provider == "mock":
        raise BadRequest(f"provider: one of {', '.join(_known_providers())}")
    if api_key is not None and not isinstance(api_key, str):
        raise BadRequest("api_key: a string or null")
    if base_url is not None and (
        not isinstance(base_url, str) or not base_url.startswith(("http://", "https://"))
    ):
        raise BadRequest("base_url: an http:// or https:// URL, or null")
    api_key, base_url = (api_key or "").strip() or None, (base_url or "").strip() or None
    if base_url is not None and not state.config.server.allow_link_local_provider_urls:
        refused = await refused_destination(base_url)
        if refused is not None:
            raise BadRequest(refused)
    state.engine.connect_provider(provider, api_key=api_key, base_url=base_url)
    await state.store.connections.save(provider, api_key, base_url)
    log.info("provider connected at run time", extra={"provider": provider})
    body = {"provider": provider, "base_url": base_url, "has_key": api_key is not None}
    return _json(body, status=201)


@answers_errors
async def delete_connection(request: Request) -> Response:
    """Forget a provider connected at run time and stop routing to it."""
    state: GatewayState = request.app.state.gateway
    _require_admin(request)
    provider = request.path_params["provider"]
    if not await state.store.connections.delete(provider):
        raise NotFound(f"no provider {provider!r} was connected at run time")
    state.engine.disconnect_provider(provider)
    return Response(status_code=204)


async def restore_connections(state: GatewayState) -> None:
    """Reconnect the providers saved by the connect dialog (at gateway start)."""
    for provider, (api_key, base_url) in (await state.store.connections.secrets()).items():
        try:
            state.engine.connect_provider(provider, api_key=api_key, base_url=base_url)
        except ModelwayError as error:
            log.warning("saved provider %s not reconnected: %s", provider, error.message)


ROUTES = [
    Route("/chat/api/connections", list_connections, methods=["GET"]),
    Route("/chat/api/connections", add_connection, methods=["POST"]),
    Route("/chat/api/connections/{provider}", delete_connection, methods=["DELETE"]),
]
