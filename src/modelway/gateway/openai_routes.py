"""The OpenAI-format API besides chat (``gateway.chat``): models, embeddings, and the
Responses API answers read back (``GET``/``DELETE /v1/responses/{id}``, its input items,
``cancel``): the gateway's own (``response_state``) or a provider's (``relayed_responses``)."""

from __future__ import annotations

import base64
import struct
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelway.calls import Caller
from modelway.errors import BadRequest, ModelwayError, NotFound, UpstreamError
from modelway.gateway import relayed_responses, response_state
from modelway.gateway.auth import request_caller
from modelway.gateway.dialect_paths import ANTHROPIC, models_dialect
from modelway.gateway.dialect_paths import OPENAI as DIALECT
from modelway.gateway.embeddings import answer_embeddings, decode_embedding_request
from modelway.gateway.http import error_response
from modelway.gateway.state import GatewayState
from modelway.types import EmbeddingRequest, EmbeddingResponse, ModelInfo


def _model_object(info: ModelInfo) -> dict[str, Any]:
    return {"id": info.id, "object": "model", "created": 0, "owned_by": info.owned_by}


def _anthropic_model(info: ModelInfo) -> dict[str, Any]:
    # Anthropic's ModelInfo: no creation date is known, so the epoch's.
    return {
        "type": "model",
        "id": info.id,
        "display_name": info.id,
        "created_at": "1970-01-01T00:00:00Z",
    }


async def list_models(request: Request) -> Response:
    """Aliases and every enabled provider's models (those the caller's key may use), in
    OpenAI's list shape, or Anthropic's for an Anthropic client."""
    state: GatewayState = request.app.state.gateway
    models = await state.models_for(request_caller(request))
    if models_dialect(request.headers) is ANTHROPIC:
        data = [_anthropic_model(m) for m in models]
        first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
        body: dict[str, Any] = {"data": data, "has_more": False, "first_id": first, "last_id": last}
    else:
        body = {"object": "list", "data": [_model_object(m) for m in models]}
    return Response(orjson.dumps(body), media_type="application/json")


async def get_model(request: Request) -> Response:
    """One model by id (ids may contain slashes: ``mock/echo``)."""
    state: GatewayState = request.app.state.gateway
    model_id = request.path_params["model_id"]
    dialect = models_dialect(request.headers)
    for info in await state.models_for(request_caller(request)):
        if info.id == model_id:
            shown = _anthropic_model(info) if dialect is ANTHROPIC else _model_object(info)
            return Response(orjson.dumps(shown), media_type="application/json")
    return error_response(
        dialect, NotFound(f"model {model_id!r} not found", code="model_not_found")
    )


def _decode_embedding_request(body: Any) -> tuple[EmbeddingRequest, str]:
    embedding_request = decode_embedding_request(body)
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise BadRequest("encoding_format: expected 'float' or 'base64'")
    return embedding_request, encoding


def _encode_vector(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "float":
        return vector
    try:
        packed = struct.pack(f"<{len(vector)}f", *vector)
    except (struct.error, OverflowError):  # an upstream's values that are not float32s
        raise UpstreamError("the upstream's embedding is not a list of float32 numbers") from None
    return base64.b64encode(packed).decode()


def _openai_embeddings(
    body: Any,
) -> tuple[EmbeddingRequest, Callable[[EmbeddingResponse], dict[str, Any]]]:
    embedding_request, encoding = _decode_embedding_request(body)

    def encode(embedded: EmbeddingResponse) -> dict[str, Any]:
        tokens = embedded.usage.prompt_tokens
        return {
            "object": "list",
            "data": [
                {"object": "embedding", "index": i, "embedding": _encode_vector(v, encoding)}
                for i, v in enumerate(embedded.vectors)
            ],
            "model": embedded.model or embedding_request.model,  # Gemini names none
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    return embedding_request, encode


async def embeddings(request: Request) -> Response:
    """Embeddings from any provider that has them, in OpenAI's shape: a metered call."""
    return await answer_embeddings(request, DIALECT, _openai_embeddings)


async def get_response(request: Request) -> Response:
    """A Responses API answer: one the gateway kept (a translated call) or one its provider
    keeps (a relayed call), in the caller's scope."""
    if not response_state.is_gateway_id(request.path_params["response_id"]):
        return await _relayed(request, "GET")
    stream = request.query_params.get("stream", "false")
    if stream != "false":
        # Its events were not kept: it was answered at once, never in the background.
        if stream == "true":
            reason = "the gateway keeps no events of its own responses; read it whole"
        else:
            reason = "expected true or false"
        return error_response(DIALECT, BadRequest(f"stream: {reason}"))
    return await _stored_response(request, response_state.stored_response)


async def list_input_items(request: Request) -> Response:
    """The input items of a response, a page at a time (``limit``, ``order``, ``after``),
    as ``client.responses.input_items.list`` reads them."""
    if not response_state.is_gateway_id(request.path_params["response_id"]):
        return await _relayed(request, "GET", "/input_items")

    async def items(state: GatewayState, caller: Caller, response_id: str) -> bytes:
        return await response_state.stored_input_items(
            state, caller, response_id, request.query_params
        )

    return await _stored_response(request, items)


async def delete_response(request: Request) -> Response:
    """Delete a response: ``{"id", "object": "response", "deleted": true}``."""
    if not response_state.is_gateway_id(request.path_params["response_id"]):
        return await _relayed(request, "DELETE")
    return await _stored_response(request, response_state.delete_stored_response)


async def cancel_response(request: Request) -> Response:
    """Cancel a background response its provider is still working on. The gateway's own
    answers are never in the background: for one of them, a 400 as OpenAI's."""
    if not response_state.is_gateway_id(request.path_params["response_id"]):
        return await _relayed(request, "POST", "/cancel")
    return await _stored_response(request, response_state.cancel_stored_response)


async def _relayed(request: Request, method: str, suffix: str = "") -> Response:
    state: GatewayState = request.app.state.gateway
    caller = request_caller(request)
    try:
        ticket = await state.calls.accounts.admit_request(caller)
        response = await relayed_responses.forwarded(
            state,
            caller,
            request.path_params["response_id"],
            method=method,
            suffix=suffix,
            # As sent: a query that is not ASCII is refused, not decoded (and failed on).
            query=request.scope["query_string"].decode("latin-1"),
            request_id=getattr(request.state, "request_id", ""),
        )
    except ModelwayError as error:
        return error_response(DIALECT, error)
    response.raw_headers += ticket.headers
    return response


async def _stored_response(
    request: Request, action: Callable[[GatewayState, Caller, str], Awaitable[bytes]]
) -> Response:
    """A read of a response the gateway kept: like a relayed one, a request against the
    key's RPM (``Accounts.admit_request``)."""
    state: GatewayState = request.app.state.gateway
    caller = request_caller(request)
    try:
        ticket = await state.calls.accounts.admit_request(caller)
        body = await action(state, caller, request.path_params["response_id"])
    except ModelwayError as error:
        return error_response(DIALECT, error)
    response = Response(body, media_type="application/json")
    response.raw_headers += ticket.headers
    return response


ROUTES = [
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/v1/models/{model_id:path}", get_model, methods=["GET"]),
    Route("/v1/embeddings", embeddings, methods=["POST"]),
    Route("/v1/responses/{response_id}", get_response, methods=["GET"]),
    Route("/v1/responses/{response_id}", delete_response, methods=["DELETE"]),
    Route("/v1/responses/{response_id}/input_items", list_input_items, methods=["GET"]),
    Route("/v1/responses/{response_id}/cancel", cancel_response, methods=["POST"]),
]
