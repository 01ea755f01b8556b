"""The same-dialect fast path: a call relayed to a provider that speaks the caller's format.

The request is parsed once (routing needs the model), the model is rewritten and the
body re-serialised; the answer is relayed as the upstream sent it, so fields the
canonical form cannot carry (Anthropic thinking blocks, Ollama ``format``, OpenAI
``logprobs``, ...) survive. Stream events are checked and scanned for usage by a
per-wire scanner (``modelway.gateway.scanners``) but never re-encoded. OpenAI upstreams
are always asked for usage; the extra usage-only chunk is dropped unless the caller
asked for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson
from starlette.responses import Response

from modelway.engine import Engine, Outcome
from modelway.errors import ModelwayError, UpstreamError
from modelway.gateway.accounting import CLIENT_CLOSED, Ledger
from modelway.gateway.scanners import (
    AnthropicScanner,
    OllamaScanner,
    OpenAIScanner,
    StreamScanner,
    answer_usage,
)
from modelway.gateway.state import json_answer, outcome_headers
from modelway.gateway.streaming import EventStream
from modelway.providers.base import HttpRequest
from modelway.providers.openai import OpenAIAdapter, parse_json
from modelway.providers.upstream import Call, HttpProvider
from modelway.routing.resolve import Route, Target

if TYPE_CHECKING:
    from modelway.gateway.chat import CallerHeaders

_JSON = {"content-type": "application/json"}
#: The chat path of each wire whose adapter does not compute one.
_CHAT_PATHS = {"anthropic": "/v1/messages", "ollama": "/api/chat"}
#: Caller headers that change the upstream's behaviour and travel with a relayed call.
_FORWARDED_HEADERS = {"anthropic": ("anthropic-beta",), "openai": (), "ollama": ()}
_MEDIA_TYPES = {"ollama": "application/x-ndjson"}


def relayable(route: Route, wire: str) -> bool:
    """Every target speaks ``wire`` over HTTP."""
    return wire in _FORWARDED_HEADERS and all(
        isinstance(t.backend, HttpProvider) and t.backend.wire == wire for t in route.targets
    )


def _streams(wire: str, body: dict[str, Any]) -> bool:
    # Ollama streams unless told not to; the others only when asked.
    if wire == "ollama":
        return body.get("stream", True) is not False
    return body.get("stream") is True


def _scanner(wire: str, body: dict[str, Any]) -> StreamScanner:
    if wire == "anthropic":
        return AnthropicScanner()
    if wire == "ollama":
        return OllamaScanner()
    options = body.get("stream_options")
    return OpenAIScanner(isinstance(options, dict) and bool(options.get("include_usage")))


def _chat_path(target: Target, wire: str) -> str:
    assert isinstance(target.backend, HttpProvider)
    adapter = target.backend.adapter
    if isinstance(adapter, OpenAIAdapter):
        return adapter.path("chat/completions", target.model)
    return _CHAT_PATHS[wire]


async def _relay_stream(
    first: bytes,
    rest: AsyncIterator[bytes],
    scanner: StreamScanner,
    outcome: Outcome,
    ledger: Ledger,
) -> AsyncIterator[bytes]:
    failure: ModelwayError | None = None
    status = CLIENT_CLOSED
    sent = 0
    try:
        data = scanner.feed(first)
        ledger.first_byte()
        if data:
            sent += len(data)
            yield data
        async for chunk in rest:
            data = scanner.feed(chunk)
            if data:
                sent += len(data)
                yield data
        data = scanner.close()
        if data:
            yield data
        status = 200
    except ModelwayError as error:
        failure = error
        status = error.status
        yield scanner.error(error)
    finally:
        outcome.stream_ended(failure)
        await rest.aclose()  # type: ignore[attr-defined]
        await ledger.close(status, scanner.usage, failure, answer_bytes=sent)


async def relay_chat(
    engine: Engine,
    route: Route,
    body: dict[str, Any],
    wire: str,
    request_id: str,
    caller_headers: CallerHeaders,
    ledger: Ledger,
) -> Response:
    """Relay a chat body in ``wire``'s format along ``route`` with retries and failover."""
    stream = _streams(wire, body)
    ledger.stream = stream
    options = body.get("stream_options")
    headers = dict(_JSON)
    for name in _FORWARDED_HEADERS[wire]:
        value = caller_headers.get(name)
        if value is not None:
            headers[name] = value

    call = Call(request_id, route.timeouts)

    def upstream_request(target: Target) -> HttpRequest:
        body["model"] = target.model
        if stream and wire == "openai":
            body["stream_options"] = {**(options or {}), "include_usage": True}
        return HttpRequest("POST", _chat_path(target, wire), orjson.dumps(body), headers)

    if not stream:

        async def complete(target: Target) -> tuple[bytes, Any]:
            assert isinstance(target.backend, HttpProvider)
            answer = await target.backend.request(upstream_request(target), call)
            try:
                parsed = parse_json(answer)  # an answer that is not JSON is an upstream failure
            except UpstreamError as error:
                raise target.backend.attributed(error) from None
            return answer, parsed

        (answer, parsed), outcome = await engine.attempt_each(route, complete)
        ledger.outcome = outcome
        ledger.first_byte()
        await ledger.close(200, answer_usage(wire, parsed), answer_bytes=len(answer))
        return json_answer(answer, outcome)

    scanner = _scanner(wire, body)

    async def open_stream(target: Target) -> tuple[bytes, AsyncIterator[bytes]]:
        backend = target.backend
        assert isinstance(backend, HttpProvider)
        response = await backend.open(upstream_request(target), call)
        chunks = backend.raw_stream(response, call)
        try:
            return await anext(chunks), chunks
        except StopAsyncIteration:
            raise UpstreamError("the upstream stream was empty", provider=backend.name) from None

    (first, rest), outcome = await engine.attempt_each(route, open_stream, holds=True)
    ledger.outcome = outcome
    return EventStream(
        _relay_stream(first, rest, scanner, outcome, ledger),
        media_type=_MEDIA_TYPES.get(wire, "text/event-stream"),
        headers=outcome_headers(outcome),
    )
