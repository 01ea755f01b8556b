"""A chat call in any dialect: relayed to a provider of the same format, else translated.

Pipeline: read body → decode in the caller's dialect → route → relay, or call through
the canonical form (retries, failover) and encode the answer or stream in the caller's
dialect. Errors before the first byte become an error response; errors after it become
a final error event.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response

from modelway.dialects.base import Dialect, StreamEncoder
from modelway.engine import OpenStream
from modelway.errors import BadRequest, ModelwayError
from modelway.gateway.accounting import CLIENT_CLOSED, Ledger
from modelway.gateway.auth import ANONYMOUS, Caller, authenticate, key_in
from modelway.gateway.http import error_response, parse_json_body, read_body
from modelway.gateway.relay import relay_chat, relayable
from modelway.gateway.state import GatewayState, json_answer, outcome_headers
from modelway.gateway.streaming import EventStream
from modelway.routing.resolve import Route
from modelway.types import ChatRequest, Usage, UsageReport

log = logging.getLogger("modelway.gateway")


async def encode_stream(
    opened: OpenStream, encoder: StreamEncoder, ledger: Ledger
) -> AsyncIterator[bytes]:
    """The caller's stream bytes; a failure mid-stream ends it with an error event."""
    events = opened.events
    usage: Usage | None = None
    failure: ModelwayError | None = None
    status = CLIENT_CLOSED
    sent = 0
    try:
        async for event in events:
            if isinstance(event, UsageReport):
                usage = event.usage
            data = encoder.encode(event)
            if data:
                ledger.first_byte()
                sent += len(data)
                yield data
        status = 200
    except ModelwayError as error:
        failure = error
        status = error.status
        yield encoder.error(error)
        return
    finally:
        await events.aclose()  # type: ignore[attr-defined]
        await ledger.close(status, usage, failure, answer_bytes=sent)
    yield encoder.finish()


async def answer_chat(
    state: GatewayState,
    chat: ChatRequest,
    dialect: Dialect,
    request_id: str,
    route: Route,
    ledger: Ledger,
) -> Response:
    """Call the engine for a decoded request and answer in the caller's dialect."""
    engine = state.engine
    ledger.stream = chat.stream
    if chat.stream:
        opened = await engine.open_stream(
            chat, request_id=request_id, dialect=dialect.name, route=route
        )
        ledger.outcome = opened.outcome
        return EventStream(
            encode_stream(opened, dialect.stream_encoder(chat), ledger),
            media_type=dialect.stream_media_type,
            headers=outcome_headers(opened.outcome),
        )
    response, outcome = await engine.complete(
        chat, request_id=request_id, dialect=dialect.name, route=route
    )
    ledger.outcome = outcome
    ledger.first_byte()
    answer = dialect.encode_response(response)
    await ledger.close(200, response.usage, answer_bytes=len(answer))
    return json_answer(answer, outcome)


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


class CallerHeaders(Protocol):
    """The request's headers as the chat pipeline reads them (Starlette's or granian's)."""

    def get(self, key: str, /) -> str | None: ...


async def chat_request(
    state: GatewayState,
    dialect: Dialect,
    headers: CallerHeaders,
    request_id: str,
    read: Callable[[int], Awaitable[bytes]],
) -> Response:
    """A chat call as the gateway's direct path serves it, under ASGI or RSGI alike.

    The caller from its key, the body by ``read(limit)``, ``chat_call``; any failure is
    answered in ``dialect``; the answer carries ``X-Request-ID``.
    """
    try:
        key = key_in(headers.get("authorization"), headers.get("x-api-key"))
        caller = await authenticate(state.auth, key)
        raw = await read(state.max_body_bytes)
        response = await chat_call(state, dialect, raw, headers, request_id, caller)
    except ModelwayError as error:
        response = error_response(dialect, error)
    except Exception:
        log.exception("unexpected error", extra={"request_id": request_id})
        response = error_response(dialect, ModelwayError("internal gateway error"))
    response.raw_headers.append((b"x-request-id", request_id.encode("latin-1")))
    return response


async def serve_chat(request: Request, dialect: Dialect) -> Response:
    """``chat_call`` for a Starlette request (``request_id`` and caller set on its state)."""
    state: GatewayState = request.app.state.gateway
    try:
        raw = await read_body(request, state.max_body_bytes)
    except ModelwayError as error:
        return error_response(dialect, error)
    caller: Caller = request.scope.get("state", {}).get("caller", ANONYMOUS)
    return await chat_call(state, dialect, raw, request.headers, request.state.request_id, caller)


async def chat_call(
    state: GatewayState,
    dialect: Dialect,
    raw: bytes,
    headers: CallerHeaders,
    request_id: str,
    caller: Caller,
) -> Response:
    """The whole chat pipeline for one request body in ``dialect``.

    Limits and budget → route → relay to a provider of the caller's own format, or call
    any other through the canonical form → one usage record. Rate-limit headers go on
    every answer, refusals included.
    """
    ledger: Ledger | None = None
    try:
        body = parse_json_body(raw)
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("model: required, a non-empty string")
        ledger = state.accounts.open(
            caller, request_id, dialect.name, model, body.get("stream") is True
        )
        await ledger.admit(len(raw), _max_tokens(body))
        route = state.engine.router.route(model)  # resolved once: round-robin turns once
        ledger.alias = route.alias
        if relayable(route, dialect.name):
            # A provider of the caller's own format validates the rest itself and answers
            # any problem in that same format; only routing needed parsing here.
            response = await relay_chat(
                state.engine, route, body, dialect.name, request_id, headers, ledger
            )
        else:
            chat = dialect.decode_chat(body)
            response = await answer_chat(state, chat, dialect, request_id, route, ledger)
    except ModelwayError as error:
        if ledger is not None:
            await ledger.close(error.status, error=error)
        response = error_response(dialect, error)
    if ledger is not None:
        rate_limit_headers = ledger.ticket.headers  # a property that builds them: read once
        if rate_limit_headers:
            response.raw_headers += rate_limit_headers
    return response
