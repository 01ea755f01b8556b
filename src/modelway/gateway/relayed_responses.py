"""Responses API answers relayed to a provider that keeps them (OpenAI, Azure), read back
through the gateway.

A relayed ``POST /v1/responses`` (``calls.relay``) is answered by OpenAI or Azure, which
keep the response under their own id (``resp_…``) unless the body says ``store: false``.
The gateway keeps no copy; it remembers whose the id is and which provider holds it
(``store.responses``, ``relayed_responses``; for ``responses.store_days``, 0 remembering
nothing): a whole answer before it is returned, a stream before the chunk that names
the id (its first event, ``response.created``) is passed on — so a client may ask for it
at once, as a background response's client does.

``GET``/``DELETE /v1/responses/{id}``, its ``input_items`` and ``POST …/cancel`` for such
an id go to that provider with the gateway's credentials, its query string as sent
(``include``, ``stream=true`` and ``starting_after`` for a background stream, a page of
items), and its answer or error comes back as it sent it. The caller must be the one that
created it (``response_state.owner_of``: its key's team, else its key): any other id,
someone else's included, is a 404 that never reaches the provider. Nor may a relayed call
continue someone else's (``previous_response_id``, ``check_previous``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.responses import Response

from modelway.calls import Caller
from modelway.calls.relay import Relayed, speaks_responses
from modelway.calls.scanners import scanner_for
from modelway.errors import BadRequest, ModelwayError
from modelway.gateway.response_state import not_found, owner_of
from modelway.gateway.state import GatewayState
from modelway.gateway.streaming import EventStream
from modelway.providers.base import HttpRequest
from modelway.providers.openai import OpenAIAdapter
from modelway.providers.upstream import Call, HttpProvider

log = logging.getLogger("modelway.gateway")

#: A provider's response id as the gateway accepts one: what fits a URL path segment.
_RELAYED_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
#: A query string passed on as sent: URL-encoded, nothing that could end the request line.
_QUERY = re.compile(r"[!-~]{1,4096}")
#: The bytes of a stream's beginning searched for its id, at most.
_ID_SEARCH_BYTES = 65_536
_DAY = 86400.0


async def check_previous(state: GatewayState, caller: Caller, body: dict[str, Any]) -> None:
    """A relayed call may continue (``previous_response_id``) a response the gateway knows
    was relayed for someone else only as a 404, as if it did not exist. An id the gateway
    does not know (made before, or straight at the provider) goes on to the provider."""
    previous = body.get("previous_response_id")
    if not isinstance(previous, str) or not _RELAYED_ID.fullmatch(previous):
        return  # a malformed one is the provider's to refuse
    owner = await state.store.responses.relayed_owner(previous)
    if owner is not None and owner != owner_of(caller):
        raise not_found(previous, "previous_response_id")


def keep_seconds(state: GatewayState, body: dict[str, Any]) -> float:
    """How long a relayed answer to ``body`` is remembered (0: not at all)."""
    if body.get("store") is False:
        return 0.0  # the provider keeps nothing either
    return state.config.responses.store_days * _DAY


async def remembered(
    state: GatewayState, caller: Caller, relayed: Relayed, seconds: float
) -> Relayed:
    """``relayed``, its response id remembered as ``caller``'s before the id goes out."""
    provider = relayed.outcome.target.backend.name
    owner = owner_of(caller)
    if relayed.body is not None:
        response_id = _answer_id(relayed.body)
        if response_id is not None:
            await _save(state, response_id, owner, provider, seconds)
        return relayed
    assert relayed.chunks is not None
    return relayed._replace(chunks=_remembering(relayed.chunks, state, owner, provider, seconds))


async def _remembering(
    chunks: AsyncIterator[bytes], state: GatewayState, owner: str, provider: str, seconds: float
) -> AsyncIterator[bytes]:
    """The stream as it came; the chunk that completes its first event with a response id
    waits until the id is remembered."""
    head: bytes | None = b""  # None once the id was found or given up on
    try:
        async for chunk in chunks:
            if head is not None:
                head += chunk
                response_id = _stream_id(head)
                if response_id is not None:
                    head = None
                    await _save(state, response_id, owner, provider, seconds)
                elif len(head) > _ID_SEARCH_BYTES:
                    head = None
                    log.warning("a relayed response stream named no id early on: not remembered")
            yield chunk
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]


def _answer_id(body: bytes) -> str | None:
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return _id_of(answer)


def _stream_id(head: bytes) -> str | None:
    """The response id its first whole events name (``response.created`` names it)."""
    for event in head.replace(b"\r\n", b"\n").split(b"\n\n")[:-1]:
        for line in event.split(b"\n"):
            if line.startswith(b"data:"):
                try:
                    data = orjson.loads(line[5:])
                except orjson.JSONDecodeError:
                    continue
                found = _id_of(data.get("response")) if isinstance(data, dict) else None
                if found is not None:
                    return found
    return None


def _id_of(response: Any) -> str | None:
    response_id = response.get("id") if isinstance(response, dict) else None
    if isinstance(response_id, str) and _RELAYED_ID.fullmatch(response_id):
        return response_id
    return None


async def _save(
    state: GatewayState, response_id: str, owner: str, provider: str, seconds: float
) -> None:
    try:
        await state.store.responses.save_relayed(response_id, owner, provider, keep_seconds=seconds)
    except Exception:
        # The caller's answer goes out; only reading it back through the gateway will miss.
        log.exception("could not remember relayed response %s", response_id)


async def forwarded(
    state: GatewayState,
    caller: Caller,
    response_id: str,
    *,
    method: str,
    suffix: str = "",
    query: str = "",
    request_id: str = "",
) -> Response:
    """``method`` on ``caller``'s relayed response (``suffix``: ``/input_items``,
    ``/cancel``), answered by the provider that keeps it (``NotFound`` if none does)."""
    owner = owner_of(caller)
    provider = None
    if _RELAYED_ID.fullmatch(response_id):
        provider = await state.store.responses.relayed_provider(response_id, owner)
    backend = state.engine.router.backends.get(provider) if provider is not None else None
    if not isinstance(backend, HttpProvider) or not speaks_responses(backend):
        # Never relayed for this caller, expired, or its provider is no longer configured.
        raise not_found(response_id, None)
    adapter = backend.adapter
    assert isinstance(adapter, OpenAIAdapter)  # as speaks_responses checked
    path = f"{adapter.path('responses', '')}/{response_id}{suffix}"
    if query:
        if not _QUERY.fullmatch(query):
            raise BadRequest("the query string: only URL-encoded printable ASCII is passed on")
        path += "?" + query
    body = b"{}" if method == "POST" else b""
    headers = {"content-type": "application/json"} if body else {}
    call = Call(request_id, state.config.server.timeouts)
    http = HttpRequest(method, path, body, headers)
    try:
        if method == "GET" and _streams(query):
            upstream = await backend.open(http, call)
            chunks = _ended_by_error(backend.raw_stream(upstream, call))
            return EventStream(chunks, media_type="text/event-stream")
        answer = await backend.request(http, call)
    except ModelwayError as error:
        if method == "DELETE" and getattr(error, "upstream_status", None) == 404:
            await state.store.responses.forget_relayed(response_id, owner)
        raise
    if method == "DELETE":
        await state.store.responses.forget_relayed(response_id, owner)
    return Response(answer, media_type="application/json")


def _streams(query: str) -> bool:
    return any(part.lower() in ("stream=true", "stream=1") for part in query.split("&"))


async def _ended_by_error(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """A stream as it came; one that breaks off ends with an ``error`` event."""
    try:
        async for chunk in chunks:
            yield chunk
    except ModelwayError as error:
        yield scanner_for("responses", {}).error(error)
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]
