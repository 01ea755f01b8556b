"""The same-dialect fast path: an OpenAI-format call to an OpenAI-format provider.

The request is parsed once (routing needs the model), the model is rewritten and the
body re-serialised; the answer is relayed as the upstream sent it. Stream events are
checked to be JSON and scanned for usage but never re-encoded. Upstream is always
asked for usage (``stream_options.include_usage``); the extra usage-only chunk is
dropped when the caller did not ask for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.responses import Response, StreamingResponse

from modelway.dialects.openai import encode_error_body
from modelway.engine import Engine, Outcome
from modelway.errors import ModelwayError, StreamTruncated, UndecodableResponse, UpstreamError
from modelway.gateway.state import outcome_headers
from modelway.providers.base import HttpRequest
from modelway.providers.openai import OpenAIAdapter, parse_json, parse_usage
from modelway.providers.upstream import Call, HttpProvider
from modelway.routing.resolve import Route, Target
from modelway.streams import SSEDecoder
from modelway.types import Usage

_JSON = {"content-type": "application/json"}
_DONE = b"data: [DONE]\n\n"


def relayable(route: Route) -> bool:
    """Every target speaks the OpenAI wire format over HTTP."""
    return all(
        isinstance(t.backend, HttpProvider) and t.backend.wire == "openai" for t in route.targets
    )


class UsageScanner:
    """Relays an OpenAI stream's SSE events, reading usage and checking each is JSON."""

    def __init__(self, caller_wants_usage: bool) -> None:
        self._sse = SSEDecoder()
        self._wants_usage = caller_wants_usage
        self.done = False
        self.usage: Usage | None = None

    def feed(self, chunk: bytes) -> bytes:
        """The bytes to pass on for this upstream chunk."""
        return self._relay(self._sse.feed(chunk))

    def close(self) -> bytes:
        """Bytes left at the end; ``StreamTruncated`` if ``[DONE]`` never came."""
        out = self._relay(self._sse.close())
        if not self.done:
            raise StreamTruncated("the upstream stream ended before [DONE]")
        return out

    def _relay(self, events: list[Any]) -> bytes:
        out: list[bytes] = []
        for event in events:
            data: str = event.data
            if data == "[DONE]":
                self.done = True
                out.append(_DONE)
                continue
            try:
                parsed = orjson.loads(data)
            except orjson.JSONDecodeError:
                raise UndecodableResponse(
                    "the upstream sent a stream chunk that is not JSON", raw=data
                ) from None
            if isinstance(parsed, dict) and parsed.get("usage"):
                self.usage = parse_usage(parsed["usage"])
                if not self._wants_usage and not parsed.get("choices"):
                    continue
            # Data that came on several ``data:`` lines goes out on as many.
            out.append(b"data: " + data.encode().replace(b"\n", b"\ndata: ") + b"\n\n")
        return b"".join(out)


async def _relay_stream(
    first: bytes, rest: AsyncIterator[bytes], scanner: UsageScanner
) -> AsyncIterator[bytes]:
    try:
        data = scanner.feed(first)
        if data:
            yield data
        async for chunk in rest:
            data = scanner.feed(chunk)
            if data:
                yield data
        data = scanner.close()
        if data:
            yield data
    except ModelwayError as error:
        yield b"data: " + encode_error_body(error) + b"\n\n"


async def relay_chat(
    engine: Engine, route: Route, body: dict[str, Any], request_id: str
) -> Response:
    """Relay a Chat Completions body along ``route`` with retries and failover."""
    stream = body.get("stream") is True
    options = body.get("stream_options")
    wants_usage = isinstance(options, dict) and bool(options.get("include_usage"))

    call = Call(request_id, route.timeouts)

    def upstream_request(target: Target) -> HttpRequest:
        body["model"] = target.model
        if stream:
            body["stream_options"] = {**(options or {}), "include_usage": True}
        assert isinstance(target.backend, HttpProvider)
        adapter = target.backend.adapter
        assert isinstance(adapter, OpenAIAdapter)
        return HttpRequest(
            "POST", adapter.path("chat/completions", target.model), orjson.dumps(body), _JSON
        )

    if not stream:

        async def complete(target: Target) -> bytes:
            assert isinstance(target.backend, HttpProvider)
            answer = await target.backend.request(upstream_request(target), call)
            parse_json(answer)  # an answer that is not JSON is an upstream failure
            return answer

        answer, outcome = await engine.attempt_each(route, complete)
        return Response(answer, media_type="application/json", headers=outcome_headers(outcome))

    async def open_stream(target: Target) -> tuple[bytes, AsyncIterator[bytes]]:
        backend = target.backend
        assert isinstance(backend, HttpProvider)
        response = await backend.open(upstream_request(target), call)
        chunks = backend.raw_stream(response, call)
        try:
            return await anext(chunks), chunks
        except StopAsyncIteration:
            raise UpstreamError("the upstream stream was empty", provider=backend.name) from None

    (first, rest), outcome = await engine.attempt_each(route, open_stream)
    return _streaming_response(_relay_stream(first, rest, UsageScanner(wants_usage)), outcome)


def _streaming_response(body: AsyncIterator[bytes], outcome: Outcome) -> StreamingResponse:
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={**outcome_headers(outcome), "cache-control": "no-cache"},
    )
