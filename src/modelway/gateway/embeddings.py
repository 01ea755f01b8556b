"""Embeddings over HTTP, in OpenAI's or Ollama's shape: decoded, run as a metered call, encoded.

Both shapes share ``model``, ``input`` (a string or a list of strings) and ``dimensions``,
and the bounds below: a caller's numbers never size the work unchecked. A text's length
is bounded by the body's (``server.max_body_bytes``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from modelway.calls.embeddings import embedding_request
from modelway.dialects.base import Dialect
from modelway.errors import BadRequest, ModelwayError
from modelway.gateway.auth import request_caller
from modelway.gateway.http import error_response, metered_answer, parse_json_body, read_body
from modelway.gateway.state import GatewayState, outcome_headers
from modelway.observability.context import Tracing, operation, traceparent
from modelway.types import EmbeddingRequest, EmbeddingResponse

#: The request a body asks for, and how to shape its answer (``BadRequest`` if malformed).
Decode = Callable[[Any], tuple[EmbeddingRequest, Callable[[EmbeddingResponse], Any]]]


def decode_embedding_request(body: Any) -> EmbeddingRequest:
    """``model``, ``input`` and ``dimensions``, as both shapes spell them; else ``BadRequest``."""
    if not isinstance(body, dict):
        raise BadRequest("model: required, a string")
    return embedding_request(body.get("model"), body.get("input"), body.get("dimensions"))


async def answer_embeddings(request: Request, dialect: Dialect, decode: Decode) -> Response:
    """Vectors from any provider that has them: admitted, limited and recorded as chat is."""
    state: GatewayState = request.app.state.gateway
    if Tracing.on:  # the caller's trace, which the call's span (a refusal's too) continues
        traceparent.set(request.headers.get("traceparent"))
        operation.set("embeddings")
    try:
        raw = await read_body(request, state.body_limits)
        embedding, encode = decode(parse_json_body(raw))
    except ModelwayError as error:
        # Refused before its call could begin: recorded all the same (``Calls.refused``).
        request_id = request.state.request_id
        caller = request_caller(request)
        await state.calls.refused(caller, dialect=dialect.name, request_id=request_id, error=error)
        return error_response(dialect, error)
    call = state.calls.open(
        request_caller(request),
        embedding.model,
        dialect=dialect.name,
        request_id=request.state.request_id,
        request_bytes=len(raw),
    )

    async def answer() -> Response:
        embedded = await call.embed(embedding)
        assert call.outcome is not None
        return Response(
            orjson.dumps(encode(embedded)),
            media_type="application/json",
            headers=outcome_headers(call.outcome),
        )

    return await metered_answer(call, dialect, answer)
