"""The OpenAI-format API: chat completions, responses, completions, models, embeddings."""

from __future__ import annotations

import base64
import struct
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelway.dialects.completions import CompletionsDialect
from modelway.dialects.openai import OpenAIDialect
from modelway.dialects.responses import ResponsesDialect
from modelway.errors import BadRequest, ModelwayError, NotFound
from modelway.gateway.chat import serve_chat
from modelway.gateway.http import error_response, parse_json_body, read_body
from modelway.gateway.state import GatewayState, outcome_headers
from modelway.types import EmbeddingRequest, ModelInfo

DIALECT = OpenAIDialect()
RESPONSES = ResponsesDialect()
COMPLETIONS = CompletionsDialect()


async def chat_completions(request: Request) -> Response:
    """Chat Completions, relayed to an OpenAI-format provider or translated for any other."""
    return await serve_chat(request, DIALECT)


async def responses(request: Request) -> Response:
    """The Responses API, served by any provider through the canonical form."""
    return await serve_chat(request, RESPONSES)


async def completions(request: Request) -> Response:
    """Legacy Completions: one prompt, answered by any chat model."""
    return await serve_chat(request, COMPLETIONS)


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
    """Embeddings from any provider that has them, in OpenAI's shape."""
    state: GatewayState = request.app.state.gateway
    try:
        body = parse_json_body(await read_body(request, state.max_body_bytes))
        embedding_request, encoding = _decode_embedding_request(body)
        answer, outcome = await state.engine.embeddings(
            embedding_request, request_id=request.state.request_id
        )
    except ModelwayError as error:
        return error_response(DIALECT, error)
    data = [
        {"object": "embedding", "index": i, "embedding": _encode_vector(v, encoding)}
        for i, v in enumerate(answer.vectors)
    ]
    tokens = answer.usage.prompt_tokens
    payload = {
        "object": "list",
        "data": data,
        "model": answer.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    return Response(
        orjson.dumps(payload), media_type="application/json", headers=outcome_headers(outcome)
    )


ROUTES = [
    Route("/v1/chat/completions", chat_completions, methods=["POST"]),
    Route("/v1/responses", responses, methods=["POST"]),
    Route("/v1/completions", completions, methods=["POST"]),
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/v1/models/{model_id:path}", get_model, methods=["GET"]),
    Route("/v1/embeddings", embeddings, methods=["POST"]),
]
