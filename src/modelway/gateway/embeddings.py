"""Embeddings over HTTP, in OpenAI's or Ollama's shape: decoded, run as a metered call, encoded."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from modelway.dialects.base import Dialect
from modelway.errors import ModelwayError
from modelway.gateway.auth import request_caller
from modelway.gateway.http import error_response, metered_answer, parse_json_body, read_body
from modelway.gateway.state import GatewayState, outcome_headers
from modelway.types import EmbeddingRequest, EmbeddingResponse

#: The request a body asks for, and how to shape its answer (``BadRequest`` if malformed).
Decode = Callable[[Any], tuple[EmbeddingRequest, Callable[[EmbeddingResponse], Any]]]


async def answer_embeddings(request: Request, dialect: Dialect, decode: Decode) -> Response:
    """Vectors from any provider that has them: admitted, limited and recorded as chat is."""
    state: GatewayState = request.app.state.gateway
    try:
        raw = await read_body(request, state.max_body_bytes)
        embedding, encode = decode(parse_json_body(raw))
    except ModelwayError as error:
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
