"""Responses API answers relayed to a provider that keeps them (OpenAI, Azure), read back
through the gateway.

A relayed ``POST /v1/responses`` (``calls.relay``) is answered by OpenAI or Azure, which
keep the response under their own id (``resp_…``) unless the body says ``store: false``.
The gateway keeps no copy; it remembers whose the id is and which upstream holds it
(``store.responses``, ``relayed_responses``: the provider's name and base URL, hashed —
a deployment with a ``base_url`` of its own is another upstream), for as long as OpenAI
keeps a response by default (30 days; ``responses.store_days`` if longer): a whole answer
before it is returned, a stream before the chunk that names the id (its first event,
``response.created``) is passed on — so a client may ask for it at once, as a background
response's client does. A store slow to take it delays the answer ``SAVE_WAIT`` (1 s) at
most; the save then finishes beside it.

``GET``/``DELETE /v1/responses/{id}``, its ``input_items`` and ``POST …/cancel`` for such
an id go to that upstream with the gateway's credentials, its query string as sent
(``include``, ``stream=true`` and ``starting_after`` for a background stream, a page of
items; printable ASCII only), and its answer or stream comes back as it sent it, an error
with the upstream's status and message in the gateway's OpenAI error shape. The
caller must be the one that created it (``response_state.owner_of``: its key's team, else
its key): any other id, someone else's included, is a 404 that never reaches the
provider. Nor may a relayed call continue someone else's (``previous_response_id``,
``check_previous``); an id the gateway has no row for (made before it remembered them,
or whose row could not be saved) goes on as it always did. A store that cannot be read
is a 503; one that cannot be written loses only the read-back, never the answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import Response

from modelway.calls import Caller
from modelway.calls.relay import Relayed, speaks_responses
from modelway.calls.scanners import scanner_for
from modelway.errors import BadRequest, ModelwayError, UpstreamStatusError
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
_DAY = 86400.0
#: Days OpenAI keeps a stored response by default: whose it is is remembered as long.
PROVIDER_KEEPS_DAYS = 30.0
#: Seconds an answer waits for its id to be remembered, at most.
SAVE_WAIT = 1.0


async def check_previous(state: GatewayState, caller: Caller, body: dict[str, Any]) -> None:
    """A relayed call may continue (``previous_response_id``) a response the gateway knows
    was relayed for someone else only as a 404, as if it did not exist. An id the gateway
    does not know (made before, or straight at the provider) goes on to the provider."""
    previous = body.get("previous_response_id")
    if not isinstance(previous, str) or not _RELAYED_ID.fullmatch(previous):
        return  # a malformed one is the provider's to refuse
    owner = await state.store.reading(state.store.responses.relayed_owner(previous))
    if owner is not None and owner != owner_of(caller):
        raise not_found(previous, "previous_response_id")


def keep_seconds(state: GatewayState, body: dict[str, Any]) -> float:
    """How long a relayed answer to ``body`` is remembered (0: not at all): as long as
    OpenAI keeps one by default, or ``responses.store_days`` if that is longer."""
    if body.get("store") is False:
        return 0.0  # the provider keeps nothing either
    return max(PROVIDER_KEEPS_DAYS, state.config.responses.store_days) * _DAY


async def remembered(
    state: GatewayState, caller: Caller, relayed: Relayed, seconds: float
) -> Relayed:
    """``relayed``, its response id remembered as ``caller``'s before the id goes out."""
    backend = relayed.outcome.target.backend
    assert isinstance(backend, HttpProvider)  # a relay goes only to HTTP providers
    owner = owner_of(caller)
    if relayed.body is not None:
        response_id = _valid_id(relayed.response_id)
        if response_id is not None:
            await _save(state, response_id, owner, backend, seconds)
        return relayed
    assert relayed.chunks is not None
    chunks = _remembering(relayed.chunks, relayed.scanner, state, owner, backend, seconds)
    return relayed._replace(chunks=chunks)


async def _remembering(
    chunks: AsyncIterator[bytes],
    scanner: object,
    state: GatewayState,
    owner: str,
    backend: HttpProvider,
    seconds: float,
) -> AsyncIterator[bytes]:
    """The stream as it came; the chunk in which the relay's scanner (which reads every
    event before it is passed on) first saw the response's id waits until it is remembered."""
    saved = False
    try:
        async for chunk in chunks:
            if not saved:
                response_id = getattr(scanner, "response_id", None)
                if response_id is not None:
                    saved = True
                    valid = _valid_id(response_id)
                    if valid is not None:
                        await _save(state, valid, owner, backend, seconds)
            yield chunk
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]


def _valid_id(response_id: str | None) -> str | None:
    """The id, if the gateway can keep it and put it in a URL path later."""
    if response_id is not None and _RELAYED_ID.fullmatch(response_id):
        return response_id
    if response_id is not None:
        log.warning("a relayed response's id is not one the gateway keeps: not remembered")
    return None


async def _save(
    state: GatewayState, response_id: str, owner: str, backend: HttpProvider, seconds: float
) -> None:
    """Remember the id, waiting at most ``SAVE_WAIT`` seconds: a store that is slow to take
    it (a held write lock) delays the answer that long, then the save goes on beside it."""
    saving = _saved(state, response_id, owner, backend, seconds)
    try:
        async with asyncio.timeout(SAVE_WAIT):
            await state.calls.finisher.run(saving)  # finishes on its own if not waited for
    except TimeoutError:
        log.warning(
            "remembering relayed response %s takes over %.0f s; its answer goes on without "
            "waiting (reading it back may miss until it is saved)",
            response_id,
            SAVE_WAIT,
        )


async def _saved(
    state: GatewayState, response_id: str, owner: str, backend: HttpProvider, seconds: float
) -> None:
    try:
        await state.store.responses.save_relayed(
            response_id, owner, backend.name, upstream_of(backend), keep_seconds=seconds
        )
    except Exception:
        # The caller's answer goes out; only reading it back through the gateway will miss.
        log.exception("could not remember relayed response %s", response_id)


def upstream_of(backend: HttpProvider) -> str:
    """Which upstream a backend reaches: its provider's name and base URL, hashed. A
    deployment with a ``base_url`` of its own is another upstream than its provider's;
    a new API key for the same one is not (a response stays where it was made)."""
    return hashlib.sha256(f"{backend.name}\n{backend.base_url}".encode()).hexdigest()[:32]


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
    ``/cancel``), answered by the upstream that keeps it (``NotFound`` if none does).

    Each backend reaching that upstream is asked in turn (deployments of one base URL
    with keys of different projects: only one knows the id) until one does not answer
    404. A deletion is forgotten once an upstream said it went, or every one said 404.
    """
    if query and not _QUERY.fullmatch(query):
        raise BadRequest("the query string: only URL-encoded printable ASCII is passed on")
    owner = owner_of(caller)
    upstream = None
    if _RELAYED_ID.fullmatch(response_id):
        upstream = await state.store.reading(
            state.store.responses.relayed_upstream(response_id, owner)
        )
    backends = _backends_of(state, upstream) if upstream is not None else []
    if not backends:
        # Never relayed for this caller, expired, or its upstream is no longer configured.
        raise not_found(response_id, None)
    call = Call(request_id, state.config.server.timeouts)
    for index, backend in enumerate(backends):
        try:
            response = await _asked(backend, method, f"/{response_id}{suffix}", query, call)
        except UpstreamStatusError as error:
            if error.upstream_status == 404 and index + 1 < len(backends):
                continue  # another project's key, maybe: the next backend may know it
            if error.upstream_status == 404 and method == "DELETE":
                await _forget(state, response_id, owner)
            raise
        if method == "DELETE":
            await _forget(state, response_id, owner)
        return response
    raise AssertionError("unreachable: the last backend answers or raises")


def _backends_of(state: GatewayState, upstream: str) -> list[HttpProvider]:
    found: list[HttpProvider] = []
    for backend in state.engine.router.backends.values():
        if (
            isinstance(backend, HttpProvider)
            and speaks_responses(backend)
            and backend not in found
            and upstream_of(backend) == upstream
        ):
            found.append(backend)
    return found


async def _asked(
    backend: HttpProvider, method: str, where: str, query: str, call: Call
) -> Response:
    """The upstream's answer to ``method`` on its response path + ``where``: streamed
    when it sends a stream (``?stream=true`` as the upstream reads it), else whole."""
    adapter = backend.adapter
    assert isinstance(adapter, OpenAIAdapter)  # as speaks_responses checked
    path = adapter.path("responses", "") + where + ("?" + query if query else "")
    body = b"{}" if method == "POST" else b""
    headers = {"content-type": "application/json"} if body else {}
    # Within the total time, its head too; a stream's reads also within its watchdog's.
    upstream = await backend.open(HttpRequest(method, path, body, headers), call, whole=True)
    media_type = upstream.headers.get("content-type") or "application/json"
    if media_type.startswith("text/event-stream"):
        chunks = _scanned(backend.raw_stream(upstream, call))
        return EventStream(chunks, media_type="text/event-stream")
    return Response(await backend.read_body(upstream), media_type="application/json")


async def _scanned(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """A read-back stream checked as a relayed one is; one that breaks off, or ends
    before its final event, ends with an ``error`` event numbered after the last one."""
    scanner = scanner_for("responses", {})
    try:
        async for chunk in chunks:
            data = scanner.feed(chunk)
            if data:
                yield data
        data = scanner.close()
        if data:
            yield data
    except ModelwayError as error:
        yield scanner.error(error)
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]


async def _forget(state: GatewayState, response_id: str, owner: str) -> None:
    try:
        await state.store.responses.forget_relayed(response_id, owner)
    except Exception:
        # The upstream's answer still goes out; the row expires in its time.
        log.exception("could not forget relayed response %s", response_id)
