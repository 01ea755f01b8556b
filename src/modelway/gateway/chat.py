"""A chat call in any dialect: relayed to a provider of the same format, else translated.

Pipeline: read body → decode in the caller's dialect → route → relay, or call through
the canonical form (retries, failover) and encode the answer or stream in the caller's
dialect. Errors before the first byte become an error response; errors after it become
a final error event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response

from modelway.dialects.base import Dialect, StreamEncoder
from modelway.errors import BadRequest, ModelwayError
from modelway.gateway.http import error_response, parse_json_body, read_body
from modelway.gateway.relay import relay_chat, relayable
from modelway.gateway.state import GatewayState, json_answer, outcome_headers
from modelway.gateway.streaming import EventStream
from modelway.routing.resolve import Route
from modelway.types import ChatRequest, StreamEvent


async def encode_stream(
    events: AsyncIterator[StreamEvent], encoder: StreamEncoder
) -> AsyncIterator[bytes]:
    """The caller's stream bytes; a failure mid-stream ends it with an error event."""
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


async def answer_chat(
    state: GatewayState,
    chat: ChatRequest,
    dialect: Dialect,
    request_id: str,
    route: Route | None = None,
) -> Response:
    """Call the engine for a decoded request and answer in the caller's dialect."""
    engine = state.engine
    if chat.stream:
        opened = await engine.open_stream(
            chat, request_id=request_id, dialect=dialect.name, route=route
        )
        return EventStream(
            encode_stream(opened.events, dialect.stream_encoder(chat)),
            media_type=dialect.stream_media_type,
            headers=outcome_headers(opened.outcome),
        )
    response, outcome = await engine.complete(
        chat, request_id=request_id, dialect=dialect.name, route=route
    )
    return json_answer(dialect.encode_response(response), outcome)


async def serve_chat(request: Request, dialect: Dialect) -> Response:
    """The whole chat pipeline for one HTTP request in ``dialect``.

    A provider that speaks the caller's own format gets the body relayed as is;
    any other is reached through the canonical form.
    """
    state: GatewayState = request.app.state.gateway
    request_id: str = request.state.request_id
    try:
        body = parse_json_body(await read_body(request, state.max_body_bytes))
        model = body.get("model") if isinstance(body, dict) else None
        if not isinstance(model, str) or not model:
            raise BadRequest("model: required, a non-empty string")
        route = state.engine.router.route(model)  # resolved once: round-robin turns once
        if relayable(route, dialect.name):
            # A provider of the caller's own format validates the rest itself and answers
            # any problem in that same format; only routing needed parsing here.
            return await relay_chat(
                state.engine, route, body, dialect.name, request_id, request.headers
            )
        chat = dialect.decode_chat(body)
        return await answer_chat(state, chat, dialect, request_id, route)
    except ModelwayError as error:
        return error_response(dialect, error)
