"""The Anthropic API besides messages (``gateway.chat``): ``/v1/messages/count_tokens``."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelway.errors import BadRequest, ModelwayError
from modelway.gateway.auth import request_caller
from modelway.gateway.dialect_paths import ANTHROPIC as DIALECT
from modelway.gateway.http import error_response, parse_json_body, read_body
from modelway.gateway.state import GatewayState
from modelway.tokens import estimate_prompt_tokens


async def count_tokens(request: Request) -> Response:
    """An offline estimate of the prompt's input tokens (``cl100k_base``; other vendors differ),
    for a model the caller's key may use."""
    state: GatewayState = request.app.state.gateway
    try:
        body = parse_json_body(await read_body(request, state.body_limits))
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object")
        # count_tokens takes no max_tokens; the shared decoder requires one.
        chat = DIALECT.decode_chat({**body, "max_tokens": 1})
        # A model the key may not use is a 403 before it is looked up, as for a message:
        # a key restricted by its model globs learns nothing of other models here.
        request_caller(request).check_model(chat.model)
        # An unknown model is a 404, as upstream; looking it up takes no round-robin turn.
        state.engine.route(chat.model, take_turn=False)
    except ModelwayError as error:
        return error_response(DIALECT, error)
    return Response(
        orjson.dumps({"input_tokens": estimate_prompt_tokens(chat)}),
        media_type="application/json",
        headers={"x-modelway-estimated": "true"},
    )


ROUTES = [
    Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
]
