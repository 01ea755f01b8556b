"""A chat call over HTTP, in any dialect: read, decode, run as a metered call, answer.

Read the body → the caller from its key → ``calls.open`` (admission, route) → relayed to
a provider of the caller's own format, or translated through the canonical form →
the answer or stream in the caller's dialect. Errors before the first byte become an
error response; after it, a final error event. The call meters itself
(``modelway.calls``); this module only speaks HTTP. A translated Responses API call
keeps its answer for ``previous_response_id`` (``gateway.response_state``), and a
relayable one that continues a response the gateway kept is translated instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NamedTuple

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelway.cache import CacheControl, parse_cache_control
from modelway.calls import UNAUTHENTICATED, Caller, MeteredCall, Relayed
from modelway.calls.relay import Headers, signed_elsewhere
from modelway.dialects.base import Dialect, StreamEncoder
from modelway.dialects.carried import translation_loses
from modelway.dialects.ollama import OllamaDialect
from modelway.dialects.ollama_generate import OllamaGenerateDialect
from modelway.dialects.responses import ResponsesDialect, dropped_tools
from modelway.errors import BadRequest, ClientGone, ModelwayError
from modelway.gateway import relayed_responses, response_state
from modelway.gateway.auth import (
    RequestHeaders,
    authenticate,
    header_values,
    headers_key,
    hidden_value,
)
from modelway.gateway.dialect_paths import CHAT_PATHS
from modelway.gateway.http import (
    BodyLimits,
    JsonAnswer,
    error_response,
    header_value,
    metered_answer,
    parse_json_body,
    read_body,
)
from modelway.gateway.state import GatewayState, cache_headers, json_answer, outcome_headers
from modelway.gateway.streaming import EventStream
from modelway.logs import log_body
from modelway.observability.context import Tracing, operation, traceparent
from modelway.types import StreamEvent

log = logging.getLogger("modelway.gateway")
#: The longest ``Idempotency-Key`` taken (the IETF draft suggests a UUID: 36).
MAX_IDEMPOTENCY_KEY = 255


async def chat_request(
    state: GatewayState,
    dialect: Dialect,
    headers: RequestHeaders,
    request_id: str,
    read: Callable[[BodyLimits], Awaitable[bytes]],
    *,
    client: str | None,
) -> Response:
    """A chat call as the gateway serves it, under ASGI or RSGI alike.

    The caller from its key (``client``: the peer's address), the body by
    ``read(limits)``, ``chat_call``; any failure is answered in ``dialect``; the answer
    carries ``X-Request-ID``. A request refused before its call could begin (its key, its
    body) is recorded all the same: a usage record and a request line (``Calls.refused``).
    """
    caller = UNAUTHENTICATED
    if Tracing.on:  # the caller's trace, which the call's span (a refusal's too) continues
        traceparent.set(headers.get("traceparent"))
        operation.set("chat")
    try:
        try:
            caller = await authenticate(state.auth, headers_key(headers), client)
            raw = await read(state.body_limits)
            if state.config.logging.log_bodies:
                log_body(request_id, dialect.name, raw)
            asked = _asked(raw, headers)
        except ModelwayError as error:
            await state.calls.refused(
                caller, dialect=dialect.name, request_id=request_id, error=error
            )
            raise
        except asyncio.CancelledError:
            # The caller hung up (``rsgi._Hangup``) while its key or body was awaited:
            # recorded as a body read that saw it go would be.
            gone = ClientGone("the caller hung up before its request was read")
            await state.calls.refused(
                caller, dialect=dialect.name, request_id=request_id, error=gone
            )
            raise
        response = await chat_call(state, dialect, asked, len(raw), headers, request_id, caller)
    except ModelwayError as error:
        response = error_response(dialect, error)
    except Exception:
        log.exception("unexpected error", extra={"request_id": request_id})
        response = error_response(dialect, ModelwayError("internal gateway error"))
    response.raw_headers.append((b"x-request-id", request_id.encode("latin-1")))
    return response


class _Asked(NamedTuple):
    """What a chat request asks, read before its call opens."""

    body: dict[str, Any]
    model: str
    max_tokens: int | None
    cache: CacheControl
    idempotency_key: str | None


def _asked(raw: bytes, headers: RequestHeaders) -> _Asked:
    """The JSON object of a chat body, its ``model`` and the headers a call opens with;
    ``BadRequest`` for any of them malformed."""
    body = parse_json_body(raw)
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("model: required, a non-empty string")
    cache = parse_cache_control(headers.get("cache-control"))
    return _Asked(body, model, _max_tokens(body), cache, _idempotency_key(headers))


async def chat_call(
    state: GatewayState,
    dialect: Dialect,
    asked: _Asked,
    size: int,
    headers: Headers,
    request_id: str,
    caller: Caller,
) -> Response:
    """The answer to one chat body (``size`` bytes) in ``dialect``; rate-limit headers on
    every answer."""
    body = asked.body
    cache = asked.cache
    if state.calls.cache is not None and not cache.moot and _past_the_cache(dialect, body):
        cache = PAST_THE_CACHE
    call = state.calls.open(
        caller,
        asked.model,
        dialect=dialect.name,
        request_id=request_id,
        request_bytes=size,
        max_tokens=asked.max_tokens,
        cache=cache,
        idempotency_key=asked.idempotency_key,
    )

    async def answer() -> Response:
        if (
            call.relayable()
            and not call.caches()
            and not signed_elsewhere(dialect.name, body)
            and not (
                isinstance(dialect, ResponsesDialect) and response_state.names_stored_response(body)
            )
        ):
            # A provider of the caller's own format validates the rest itself and answers
            # any problem in that same format; only routing needed parsing here.
            if isinstance(dialect, ResponsesDialect) and "previous_response_id" in body:
                await relayed_responses.check_previous(state, call.caller, body)
            relayed = await call.relay(body, headers)
            if isinstance(dialect, ResponsesDialect):
                keep = relayed_responses.keep_seconds(state, body)
                if keep > 0:  # its provider keeps it: whose it is, for reading it back
                    relayed = await relayed_responses.remembered(state, call.caller, relayed, keep)
            response = _relayed_response(relayed)
        else:
            response = await _translated_response(state, call, dialect, body, size)
        if call.cache_status is not None:
            response.raw_headers += cache_headers(call)
        return response

    return await metered_answer(call, dialect, answer)


#: Neither looked up nor stored: as a request saying ``Cache-Control: no-cache, no-store``.
PAST_THE_CACHE = CacheControl(no_cache=True, no_store=True)


def _past_the_cache(dialect: Dialect, body: dict[str, Any]) -> bool:
    """Whether the cache, which keeps canonical answers, would change ``body``'s answer:
    it asks for something translation drops, or continues a response OpenAI keeps."""
    if isinstance(dialect, ResponsesDialect):
        return "previous_response_id" in body and not response_state.names_stored_response(body)
    return translation_loses(dialect.name, body)


async def _translated_response(
    state: GatewayState, call: MeteredCall, dialect: Dialect, body: dict[str, Any], size: int
) -> Response:
    if isinstance(dialect, OllamaDialect | OllamaGenerateDialect):
        loaded = dialect.model_load(body)  # Ollama's warm-up call: nothing to ask upstream
        if loaded is not None:
            return JsonAnswer(loaded)
    chat = dialect.decode_chat(body)
    turn = None
    if isinstance(dialect, ResponsesDialect):
        # Continues a kept response (its conversation joins chat.messages) and keeps this one.
        turn = await response_state.open_turn(state, call.caller, body, chat, size)
    response: Response
    if not chat.stream:
        answer = await call.complete(chat)
        if turn is not None:
            encoded = await turn.answer_body(answer, chat)
        else:
            encoded = dialect.encode_response(answer, chat)
        if call.outcome is not None:
            response = json_answer(encoded, call.outcome)
        else:
            response = JsonAnswer(encoded)
    else:
        events = await call.stream(chat)
        encoder = dialect.stream_encoder(chat)
        response = EventStream(
            _encoded(events, encoder) if turn is None else turn.encoded(events, encoder),
            media_type=dialect.stream_media_type,
            headers=None if call.outcome is None else outcome_headers(call.outcome),
        )
    if isinstance(dialect, ResponsesDialect):
        # Only the Responses API offers tools that run on OpenAI's side; translating
        # leaves them out, and the caller should learn which.
        dropped = dropped_tools(body)
        if dropped:
            value = header_value(",".join(dropped)).encode()
            response.raw_headers.append((b"x-modelway-dropped-tools", value))
    return response


async def _encoded(
    events: AsyncIterator[StreamEvent], encoder: StreamEncoder
) -> AsyncIterator[bytes]:
    """The caller's stream; a failure mid-stream ends it with an error event."""
    try:
        async for event in events:
            data = encoder.encode(event)
            if data:
                yield data
    except ModelwayError as error:
        yield encoder.error(error)
        return
    finally:
        await events.aclose()  # type: ignore[attr-defined]
    yield encoder.finish()


def _relayed_response(relayed: Relayed) -> Response:
    if relayed.body is not None:
        return json_answer(relayed.body, relayed.outcome)
    assert relayed.chunks is not None and relayed.scanner is not None
    return EventStream(
        _relayed(relayed.chunks, relayed.scanner.error),
        media_type=relayed.media_type,
        headers=outcome_headers(relayed.outcome),
    )


async def _relayed(
    chunks: AsyncIterator[bytes], error_event: Callable[[ModelwayError], bytes]
) -> AsyncIterator[bytes]:
    """The upstream's stream as relayed; a failure mid-stream ends it with an error event."""
    try:
        async for chunk in chunks:
            yield chunk
    except ModelwayError as error:
        yield error_event(error)
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]


def _idempotency_key(headers: RequestHeaders) -> str | None:
    """The request's ``Idempotency-Key``, if it sent one (400 if empty, too long, or sent
    twice: which one would it mean?)."""
    value = headers.get("idempotency-key")
    if value is None:
        if hidden_value(headers, "idempotency-key"):
            raise BadRequest("Idempotency-Key: not ASCII text")
        return None
    if len(header_values(headers, "idempotency-key")) > 1:
        raise BadRequest("Idempotency-Key: sent more than once")
    if not value or len(value) > MAX_IDEMPOTENCY_KEY:
        raise BadRequest(f"Idempotency-Key: 1 to {MAX_IDEMPOTENCY_KEY} characters")
    return value


def _max_tokens(body: dict[str, Any]) -> int | None:
    """The reply budget the caller set, in any dialect's field name."""
    for name in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
        value = body.get(name)
        if isinstance(value, int):
            return value
    options = body.get("options")
    if isinstance(options, dict) and isinstance(options.get("num_predict"), int):
        return int(options["num_predict"])
    return None


def _chat_endpoint(dialect: Dialect) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        state: GatewayState = request.app.state.gateway
        read = lambda limits: read_body(request, limits)  # noqa: E731
        client = request.client.host if request.client else None
        request_id = request.state.request_id
        return await chat_request(state, dialect, request.headers, request_id, read, client=client)

    return endpoint


#: The chat paths as Starlette routes (``Gateway`` answers their POSTs before Starlette).
ROUTES = [
    Route(path, _chat_endpoint(dialect), methods=["POST"]) for path, dialect in CHAT_PATHS.items()
]
