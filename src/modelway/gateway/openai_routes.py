"""The OpenAI-format API besides chat (``gateway.chat``): models and embeddings."""

from __future__ import annotations

import base64
import struct
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelway.errors import BadRequest, ModelwayError, NotFound
from modelway.gateway.auth import request_caller
from modelway.gateway.chat import metered_answer
from modelway.gateway.dialect_paths import OPENAI as DIALECT
from modelway.gateway.http import error_response, parse_json_body, read_body
from modelway.gateway.state import GatewayState, outcome_headers
from modelway.types import EmbeddingRequest, ModelInfo


def _model_object(info: ModelInfo) -> dict[str, Any]:
    return {"id": info.id, "object": "model", "created": 0, "owned_by": info.owned_by}


async def list_models(request: Request) -> Response:
    """Aliases and every enabled provider's models."""
    state: GatewayState = request.app.state.gateway
    models = await state.engine.models()
    body = {"object": "list", "data": [_model_object(m) for m in models]}
    return Response(orjson.dumps(body), media_type="application/json")


async def get_model(request: Request) -> Response:
    """One model by id (ids may contain slashes: ``mock/echo``)."""
    state: GatewayState = request.app.state.gateway
    model_id = request.path_params["model_id"]
    for info in await state.engine.models():
        if info.id == model_id:
            return Response(orjson.dumps(_model_object(info)), media_type="application/json")
    return error_response(
        DIALECT, NotFound(f"model {model_id!r} not found", code="model_not_found")
    )


def _decode_embedding_request(body: Any) -> tuple[EmbeddingRequest, str]:
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        raise BadRequest("model: required, a string")
    texts = body.get("input")
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise BadRequest("input: expected a string or a non-empty list of strings")
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise BadRequest("encoding_format: expected 'float' or 'base64'")
    dimensions = body.get("dimensions")
    if dimensions is not None and (not isinstance(dimensions, int) or dimensions <= 0):
        raise BadRequest("dimensions: expected a positive integer")
    return EmbeddingRequest(model=body["model"], input=texts, dimensions=dimensions), encoding


def _encode_vector(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "float":
        return vector
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


async def embeddings(request: Request) -> Response:
    """Embeddings from any provider that has them, in OpenAI's shape: a metered call."""
    state: GatewayState = request.app.state.gateway
    try:
        raw = await read_body(request, state.max_body_bytes)
        embedding_request, encoding = _decode_embedding_request(parse_json_body(raw))
    except ModelwayError as error:
        return error_response(DIALECT, error)
    call = state.calls.open(
        request_caller(request),
        embedding_request.model,
        dialect=DIALECT.name,
        request_id=request.state.request_id,
        request_bytes=len(raw),
    )

    async def answer() -> Response:
        embedded = await call.embed(embedding_request)
        data = [
            {"object": "embedding", "index": i, "embedding": _encode_vector(v, encoding)}
            for i, v in enumerate(embedded.vectors)
        ]
        tokens = embedded.usage.prompt_tokens
        payload = {
            "object": "list",
            "data": data,
            "model": embedded.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        assert call.outcome is not None
        return Response(
            orjson.dumps(payload),
            media_type="application/json",
            headers=outcome_headers(call.outcome),
        )

    return await metered_answer(call, DIALECT, answer)


ROUTES = [
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/v1/models/{model_id:path}", get_model, methods=["GET"]),
    Route("/v1/embeddings", embeddings, methods=["POST"]),
]
