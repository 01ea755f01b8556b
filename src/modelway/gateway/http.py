"""Reading request bodies and writing error responses, the same way for every route."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from modelway.dialects.base import Dialect
from modelway.dialects.openai import OpenAIDialect
from modelway.errors import BadRequest, ModelwayError, PayloadTooLarge, RateLimited

_OPENAI_ERRORS: Dialect = OpenAIDialect()


async def read_body(request: Request, limit: int) -> bytes:
    """A Starlette request's whole body, within ``limit`` bytes (``read_limited``)."""
    declared = request.headers.get("content-length")
    return await read_limited(declared, request.body, request.stream, limit)


async def read_limited(
    declared: str | None,
    whole: Callable[[], Awaitable[bytes]],
    chunks: Callable[[], AsyncIterator[bytes]],
    limit: int,
) -> bytes:
    """The whole body, refusing one longer than ``limit`` bytes before reading it all.

    ``declared`` is the Content-Length header: when there is one, ``whole()`` reads the
    body (the server enforces the length); otherwise ``chunks()`` is counted as it comes.
    """
    if declared is not None and declared.isdigit():
        if int(declared) > limit:
            raise PayloadTooLarge(f"the request body is larger than {limit} bytes")
        return await whole()
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the request body is larger than {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


def parse_json_body(body: bytes) -> Any:
    """The JSON in a request body, or ``BadRequest`` saying where it broke."""
    if not body.strip():
        raise BadRequest("the request body is empty; expected a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from None


def error_response(dialect: Dialect, error: ModelwayError) -> Response:
    """An error in the caller's dialect with its HTTP status (and ``Retry-After`` if known)."""
    headers: dict[str, str] = {}
    retry_after = getattr(error, "retry_after", None)
    if isinstance(error, RateLimited | ModelwayError) and retry_after is not None:
        # Rounded up: a client that obeys it to the second is not refused again.
        headers["retry-after"] = str(max(1, math.ceil(retry_after)))
    response = Response(
        dialect.encode_error(error),
        status_code=error.status,
        media_type="application/json",
        headers=headers,
    )
    if isinstance(error, RateLimited) and error.rate_limit_headers:
        response.raw_headers += error.rate_limit_headers
    if error.attempts is not None:
        response.raw_headers.append((b"x-modelway-attempts", b"%d" % error.attempts))
        provider = getattr(error, "provider", None)
        if provider:
            response.raw_headers.append((b"x-modelway-provider", provider.encode()))
    return response


RouteHandler = Callable[[Request], Awaitable[Response]]


def answers_errors(handler: RouteHandler) -> RouteHandler:
    """Answers a ``ModelwayError`` raised by ``handler`` in OpenAI's error shape.

    For the gateway's own JSON APIs (admin, chat, sign-up), which speak no other dialect.
    """

    async def answer(request: Request) -> Response:
        try:
            return await handler(request)
        except ModelwayError as error:
            return error_response(_OPENAI_ERRORS, error)

    answer.__doc__ = handler.__doc__
    return answer
