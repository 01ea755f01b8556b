"""Reading request bodies and writing error responses, the same way for every route."""

from __future__ import annotations

import math
import time
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable
from typing import Any, ClassVar, NamedTuple
from urllib.parse import quote

import orjson
from granian._granian import RSGIProtocolClosed as ProtocolClosed
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from modelway.calls import MeteredCall
from modelway.config import ServerSettings
from modelway.deadlines import deadline_in
from modelway.dialects.base import Dialect
from modelway.dialects.openai import OpenAIDialect
from modelway.errors import (
    BadRequest,
    ClientGone,
    ModelwayError,
    PayloadTooLarge,
    RateLimited,
    RequestBodyTimeout,
    ServerBusy,
)

_OPENAI_ERRORS: Dialect = OpenAIDialect()
#: Seconds a caller has to send a whole request body (``server.body_timeout``): a slow
#: sender holds a connection and what it sent so far, so a trickle cannot hold them for ever.
BODY_READ_SECONDS = 60.0
#: Slow request bodies a worker receives at once (``server.max_bodies_arriving``); past
#: them a new request is 503.
MAX_BODIES_ARRIVING = 512
#: A body still arriving this long after it began is slow, and counts against
#: ``max_bodies_arriving`` (between one and two of these, in whole steps of it).
SLOW_BODY_SECONDS = 1.0
#: The deepest a JSON body may nest: parts of it are written again (to an upstream, into
#: a stream event, for a token count), and orjson writes no deeper than 254 levels.
MAX_JSON_NESTING = 128
#: What a header value keeps as it is: visible ASCII and space, but ``%`` (the escape).
_HEADER_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")


class BodyLimits(NamedTuple):
    """How a request body is taken in: at most ``max_bytes``, within ``timeout`` seconds,
    and no more than ``most_arriving`` bodies at once in this process."""

    max_bytes: int
    timeout: float = BODY_READ_SECONDS
    most_arriving: int = MAX_BODIES_ARRIVING


def body_limits(server: ServerSettings) -> BodyLimits:
    """The body limits ``server:`` in modelway.yaml sets."""
    return BodyLimits(server.max_body_bytes, server.body_timeout, server.max_bodies_arriving)


class _Arrivals:
    """The request bodies this process is receiving right now: how many, and how many
    began in each step of ``SLOW_BODY_SECONDS`` (a body is cut after ``body_timeout``, so
    there are few steps)."""

    count = 0
    by_step: ClassVar[dict[int, int]] = {}

    @classmethod
    def slow(cls, step: int) -> int:
        """Bodies that began before the step before ``step``: arriving a second or more."""
        return sum(count for began, count in cls.by_step.items() if began < step - 1)


#: The clock body arrivals are timed by (tests move it).
_clock: Callable[[], float] = time.monotonic


async def read_body(request: Request, limits: BodyLimits) -> bytes:
    """A Starlette request's whole body, within ``limits`` (``read_limited``)."""
    declared = request.headers.get("content-length")
    return await read_limited(declared, request.body, request.stream, limits)


async def read_limited(
    declared: str | None,
    whole: Callable[[], Awaitable[bytes]],
    chunks: Callable[[], AsyncIterable[bytes]],
    limits: BodyLimits,
) -> bytes:
    """The whole body as ``limited_chunks`` bounds it, sent within ``limits.timeout``.

    While ``limits.most_arriving`` bodies have each been arriving for a second or more,
    a new request is refused at once (503, ``Retry-After``) without reading it: each slow
    sender holds a connection, and a crowd of them must not take every file descriptor
    the worker has. Bodies that come at once do not count, however many there are: a
    thousand callers starting together are all taken in (1,000 streams at once had ~15 %
    of them refused when every body arriving counted).
    """
    step = int(_clock() // SLOW_BODY_SECONDS)
    by_step = _Arrivals.by_step
    if _Arrivals.count >= limits.most_arriving and _Arrivals.slow(step) >= limits.most_arriving:
        raise ServerBusy(
            "too many request bodies are arriving slowly at once; try again shortly",
            retry_after=1,
        )
    _Arrivals.count += 1
    by_step[step] = by_step.get(step, 0) + 1
    try:
        async with deadline_in(limits.timeout):
            if _declared_within(declared, limits.max_bytes):
                return await whole()  # one read, not a generator, on the common path
            parts = limited_chunks(None, whole, chunks, limits.max_bytes)
            return b"".join([chunk async for chunk in parts])
    except TimeoutError:
        raise RequestBodyTimeout(
            f"the request body did not arrive within {limits.timeout:g} s"
        ) from None
    except (ClientDisconnect, ProtocolClosed):  # the client left mid-body (ASGI, RSGI)
        raise ClientGone("the client closed the connection before its body was in") from None
    finally:
        _Arrivals.count -= 1
        left = by_step[step] - 1
        if left:
            by_step[step] = left
        else:
            del by_step[step]


async def limited_chunks(
    declared: str | None,
    whole: Callable[[], Awaitable[bytes]],
    chunks: Callable[[], AsyncIterable[bytes]],
    limit: int,
) -> AsyncGenerator[bytes, None]:
    """A body's chunks, refusing one longer than ``limit`` bytes before reading it all.

    ``declared`` is the Content-Length header: one over ``limit`` is refused before
    anything is read; within it, ``whole()`` reads the body (the server enforces the
    length). Otherwise ``chunks()`` is counted as it comes and stopped at the first
    chunk that passes ``limit``: no more than ``limit`` bytes and one chunk are held.
    """
    if _declared_within(declared, limit):
        yield await whole()
        return
    size = 0
    async for chunk in chunks():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        yield chunk


def _declared_within(declared: str | None, limit: int) -> bool:
    """Whether a Content-Length was sent; ``PayloadTooLarge`` if it is over ``limit``."""
    if declared is None or not declared.isdigit():
        return False
    if int(declared) > limit:
        raise _too_large(limit)
    return True


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the request body is larger than {limit} bytes")


def parse_json_body(body: bytes) -> Any:
    """The JSON in a request body, or ``BadRequest`` saying where it broke or that it nests
    deeper than ``MAX_JSON_NESTING``."""
    if not body.strip():
        raise BadRequest("the request body is empty; expected a JSON object")
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from None
    # Fewer brackets than levels allowed cannot nest too deep: most bodies skip the walk.
    if body.count(b"[") + body.count(b"{") > MAX_JSON_NESTING:
        check_nesting("the request body", value)
    return value


def check_nesting(what: str, value: Any) -> None:
    """``BadRequest`` if ``value`` nests lists and objects deeper than ``MAX_JSON_NESTING``."""
    # Iterative: a deep value must not exhaust the stack it is being checked for.
    stack = [(value, 1)] if isinstance(value, list | dict) else []
    while stack:
        node, depth = stack.pop()
        if depth > MAX_JSON_NESTING:
            raise BadRequest(f"{what} nests deeper than {MAX_JSON_NESTING} levels")
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, list | dict))


async def metered_answer(
    call: MeteredCall, dialect: Dialect, answer: Callable[[], Awaitable[Response]]
) -> Response:
    """``answer()`` within ``call``; errors in ``dialect``; rate-limit headers on every answer."""
    try:
        async with call:
            response = await answer()
    except ModelwayError as error:
        response = error_response(dialect, error)
    rate_limit_headers = call.rate_limit_headers  # a property that builds them: read once
    if rate_limit_headers:
        response.raw_headers += rate_limit_headers
    return response


def header_value(text: str) -> str:
    """``text`` fit for a response header: anything but visible ASCII percent-encoded (UTF-8).

    Model names are the caller's and may hold any character; a header can carry neither
    characters outside Latin-1 (encoding them raises) nor line breaks.
    """
    if text.isascii() and text.isprintable() and "%" not in text:
        return text
    return quote(text, safe=_HEADER_SAFE, errors="surrogatepass")


class JsonAnswer(Response):
    """A JSON body answered as it is: ``Response(body, media_type=...)`` without the
    generic header merging of ``Response.__init__`` (a third of the time, measured:
    ~0.3 µs against ~0.95), for the answers every chat call builds."""

    media_type = "application/json"

    def __init__(self, body: bytes, status_code: int = 200) -> None:
        self.status_code = status_code
        self.body = body
        self.background = None
        self.raw_headers = [
            (b"content-length", b"%d" % len(body)),
            (b"content-type", b"application/json"),
        ]


#: Said with a refusal that asking again will not change (a wrong key, a spent budget):
#: the OpenAI and Anthropic SDKs, and the agents built on them, retry no further. Claude
#: Code retries a 401 for minutes without it.
_NO_RETRY = (b"x-should-retry", b"false")


def error_response(dialect: Dialect, error: ModelwayError) -> Response:
    """An error in the caller's dialect with its HTTP status (and ``Retry-After`` if known;
    ``x-should-retry: false`` for a refusal no retry would change)."""
    response = JsonAnswer(dialect.encode_error(error), error.status)
    if not error.retryable and 400 <= error.status < 500:
        response.raw_headers.append(_NO_RETRY)
    retry_after = error.retry_after
    if retry_after is not None:
        # Rounded up: a client that obeys it to the second is not refused again.
        response.raw_headers.append((b"retry-after", b"%d" % max(1, math.ceil(retry_after))))
    if isinstance(error, RateLimited) and error.rate_limit_headers:
        response.raw_headers += error.rate_limit_headers
    if error.attempts is not None:
        response.raw_headers.append((b"x-modelway-attempts", b"%d" % error.attempts))
        tried = error.tried  # the provider and model asked last, which failed
        if tried is not None:
            provider, model = tried
            response.raw_headers.append((b"x-modelway-provider", header_value(provider).encode()))
            response.raw_headers.append((b"x-modelway-model", header_value(model).encode()))
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
