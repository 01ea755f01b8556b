"""The Ollama API: ``/api/chat``, ``/api/generate``, ``/api/tags``, ``/api/embed``, ..."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelway import __version__
from modelway.errors import BadRequest, ModelwayError
from modelway.gateway.auth import request_caller
from modelway.gateway.dialect_paths import OLLAMA as DIALECT
from modelway.gateway.embeddings import answer_embeddings, decode_embedding_request
from modelway.gateway.http import error_response, parse_json_body, read_body
from modelway.gateway.state import GatewayState
from modelway.types import EmbeddingRequest, EmbeddingResponse, ModelInfo

#: The Ollama API version whose shapes these routes follow.
OLLAMA_API_VERSION = "0.12.0"
_EPOCH = "1970-01-01T00:00:00Z"


def _json(body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), media_type="application/json", headers=headers)


def _details(info: ModelInfo) -> dict[str, Any]:
    return {
        "parent_model": "",
        "format": "",
        "family": info.owned_by,
        "families": [info.owned_by],
        "parameter_size": "",
        "quantization_level": "",
    }


async def tags(request: Request) -> Response:
    """Every model the gateway can serve, in Ollama's listing shape."""
    state: GatewayState = request.app.state.gateway
    models = [
        {
            "name": m.id,
            "model": m.id,
            "modified_at": _EPOCH,
            "size": 0,
            "digest": "",
            "details": _details(m),
        }
        for m in await state.models_for(request_caller(request))
    ]
    return _json({"models": models})


async def show(request: Request) -> Response:
    """What Ollama clients ask before using a model; 404 when nothing serves it, 403 when
    the caller's key may not use it (asked first: a key learns nothing of other models)."""
    state: GatewayState = request.app.state.gateway
    try:
        body = parse_json_body(await read_body(request, state.body_limits))
        name = body.get("model") or body.get("name") if isinstance(body, dict) else None
        if not isinstance(name, str) or not name:
            raise BadRequest("model: required, a string")
        request_caller(request).check_model(name)
        target = state.engine.route(name, take_turn=False).targets[0]
    except ModelwayError as error:
        return error_response(DIALECT, error)
    info = ModelInfo(id=name, owned_by=target.backend.name)
    return _json(
        {
            "modelfile": "",
            "parameters": "",
            "template": "",
            "details": _details(info),
            "model_info": {},
            "capabilities": ["completion", "tools"],
            "modified_at": _EPOCH,
        }
    )


async def embed(request: Request) -> Response:
    """Embeddings from any provider that has them, in Ollama's shape: a metered call."""
    return await answer_embeddings(request, DIALECT, _ollama_embeddings)


def _ollama_embeddings(
    body: Any,
) -> tuple[EmbeddingRequest, Callable[[EmbeddingResponse], dict[str, Any]]]:
    embedding_request = decode_embedding_request(body)

    def encode(embedded: EmbeddingResponse) -> dict[str, Any]:
        return {
            "model": embedding_request.model,
            "embeddings": embedded.vectors,
            "prompt_eval_count": embedded.usage.prompt_tokens,
        }

    return embedding_request, encode


async def version(request: Request) -> Response:
    """The Ollama API version these routes follow, and modelway's own."""
    return _json({"version": OLLAMA_API_VERSION, "modelway": __version__})


async def running(request: Request) -> Response:
    """``GET /api/ps``: the models loaded in memory here, which for a gateway is none (its
    models run at their providers); ``ollama ps`` then shows an empty table, not an error."""
    return _json({"models": []})


ROUTES = [
    Route("/api/tags", tags, methods=["GET"]),
    Route("/api/ps", running, methods=["GET"]),
    Route("/api/show", show, methods=["POST"]),
    Route("/api/embed", embed, methods=["POST"]),
    Route("/api/version", version, methods=["GET"]),
]
