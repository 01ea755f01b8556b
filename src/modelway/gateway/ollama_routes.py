"""The Ollama API: ``/api/chat``, ``/api/generate``, ``/api/tags``, ``/api/embed``, ..."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelway import __version__
from modelway.dialects.ollama import OllamaDialect
from modelway.dialects.ollama_generate import OllamaGenerateDialect
from modelway.errors import BadRequest, ModelwayError
from modelway.gateway.chat import serve_chat
from modelway.gateway.http import error_response, parse_json_body, read_body
from modelway.gateway.state import GatewayState, outcome_headers
from modelway.types import EmbeddingRequest, ModelInfo

DIALECT = OllamaDialect()
GENERATE = OllamaGenerateDialect()
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


async def chat(request: Request) -> Response:
    """An Ollama chat call, served by any provider."""
    return await serve_chat(request, DIALECT)


async def generate(request: Request) -> Response:
    """An Ollama generate call (one prompt), served by any provider."""
    return await serve_chat(request, GENERATE)


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
        for m in await state.engine.models()
    ]
    return _json({"models": models})


async def show(request: Request) -> Response:
    """What Ollama clients ask before using a model; 404 when nothing serves it."""
    state: GatewayState = request.app.state.gateway
    try:
        body = parse_json_body(await read_body(request, state.max_body_bytes))
        name = body.get("model") or body.get("name") if isinstance(body, dict) else None
        if not isinstance(name, str) or not name:
            raise BadRequest("model: required, a string")
        target = state.engine.router.route(name).targets[0]
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
    """Embeddings from any provider that has them, in Ollama's shape."""
    state: GatewayState = request.app.state.gateway
    try:
        body = parse_json_body(await read_body(request, state.max_body_bytes))
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            raise BadRequest("model: required, a string")
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else texts
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            raise BadRequest("input: expected a string or a non-empty list of strings")
        answer, outcome = await state.engine.embeddings(
            EmbeddingRequest(model=body["model"], input=texts, dimensions=body.get("dimensions")),
            request_id=request.state.request_id,
        )
    except ModelwayError as error:
        return error_response(DIALECT, error)
    return _json(
        {
            "model": body["model"],
            "embeddings": answer.vectors,
            "prompt_eval_count": answer.usage.prompt_tokens,
        },
        outcome_headers(outcome),
    )


async def version(request: Request) -> Response:
    """The Ollama API version these routes follow, and modelway's own."""
    return _json({"version": OLLAMA_API_VERSION, "modelway": __version__})


ROUTES = [
    Route("/api/chat", chat, methods=["POST"]),
    Route("/api/generate", generate, methods=["POST"]),
    Route("/api/tags", tags, methods=["GET"]),
    Route("/api/show", show, methods=["POST"]),
    Route("/api/embed", embed, methods=["POST"]),
    Route("/api/version", version, methods=["GET"]),
]
