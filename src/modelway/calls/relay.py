"""The same-dialect fast path: a call relayed to a provider that speaks the caller's format.

The request is parsed once (routing needs the model), the model is rewritten and the
body re-serialised; the answer is relayed as the upstream sent it, so fields the
canonical form cannot carry (Anthropic thinking blocks, Ollama ``format``, OpenAI
``logprobs``, ...) survive. Stream events are checked and scanned for usage by a
per-wire scanner (``modelway.calls.scanners``) but never re-encoded. OpenAI upstreams
are always asked for usage; the extra usage-only chunk is dropped unless the caller
asked for it. Metering is the caller's (``MeteredCall.relay``): this module only talks
to the upstream.

The caller's format names the relay (``"openai"``, ``"responses"``, ...); each is relayed
to providers of one wire: a Responses API body goes to the Responses API of an upstream
that serves one (``RESPONSES_PROVIDERS``: OpenAI, Azure), untouched but for its model
(hosted and namespace tools, reasoning items, ``include``, ``store`` and
``previous_response_id`` all reach it) — except a call whose
``previous_response_id`` names a response the gateway kept itself (``resp_mw…``, from a
translated call), which the face translates so the chain continues
(``gateway.response_state``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, NamedTuple, Protocol

import orjson

from modelway.calls.scanners import (
    StreamScanner,
    answer_finish_reason,
    answer_usage,
    response_id,
    scanner_for,
)
from modelway.dialects.anthropic import AnthropicDialect
from modelway.dialects.base import Dialect
from modelway.dialects.ollama import OllamaDialect
from modelway.dialects.openai import OpenAIDialect
from modelway.engine import Engine, Outcome
from modelway.errors import (
    BadRequest,
    EmptyResponse,
    ModelwayError,
    UpstreamError,
    UpstreamStatusError,
)
from modelway.providers.base import HttpRequest
from modelway.providers.openai import OpenAIAdapter, parse_json
from modelway.providers.upstream import Call, HttpProvider
from modelway.reasoning import gateway_tagged
from modelway.routing.targets import Route, Target
from modelway.tokens import answer_text_size
from modelway.types import Usage

_JSON = {"content-type": "application/json"}
#: The chat path of each wire whose adapter does not compute one.
_CHAT_PATHS = {"anthropic": "/v1/messages", "ollama": "/api/chat"}
#: The upstream wire each relayable caller format is relayed to.
_UPSTREAM_WIRES = {
    "openai": "openai",
    "responses": "openai",
    "anthropic": "anthropic",
    "ollama": "ollama",
}
#: Caller headers that change the upstream's behaviour and travel with a relayed call.
_FORWARDED_HEADERS = {"anthropic": ("anthropic-beta",), "openai": (), "responses": (), "ollama": ()}
_MEDIA_TYPES = {"ollama": "application/x-ndjson"}
#: Each relayable wire's own decoder: it judges a body only when an upstream failed on it.
#: Responses has none: its decoder refuses valid bodies it cannot translate (hosted tools).
_DIALECTS: dict[str, Dialect] = {
    "openai": OpenAIDialect(),
    "anthropic": AnthropicDialect(),
    "ollama": OllamaDialect(),
}


class Headers(Protocol):
    """A request's headers as the relay reads them (Starlette's or granian's)."""

    def get(self, key: str, /) -> str | None: ...


class WholeAnswer(NamedTuple):
    """A relayed answer read whole: the upstream's body as it sent it."""

    body: bytes
    usage: Usage | None
    outcome: Outcome
    finish_reason: str | None = None
    #: UTF-8 bytes of the answer's text, measured only when it reported no ``usage``.
    text_size: int = 0
    #: A Responses API answer's ``id``.
    response_id: str | None = None
    #: A Responses API ``background`` answer still queued or running: its usage comes
    #: when it ends (``background_ended``).
    running: bool = False


class Relayed(NamedTuple):
    """A relayed answer: the whole ``body``, or ``chunks`` of a stream (metered)."""

    body: bytes | None
    chunks: AsyncIterator[bytes] | None
    media_type: str
    outcome: Outcome
    #: A whole Responses API answer's ``id``.
    response_id: str | None = None
    #: What read a stream's chunks as they passed (its usage; a Responses stream's id, once
    #: seen); its ``error`` makes the final error event in the stream's own format.
    scanner: StreamScanner | None = None


class OpenedRelay(NamedTuple):
    """A relayed stream whose first chunk has arrived."""

    chunks: AsyncIterator[bytes]
    scanner: StreamScanner
    media_type: str
    outcome: Outcome


def relayable(route: Route, wire: str) -> bool:
    """Every target speaks the caller's format ``wire`` over HTTP."""
    upstream_wire = _UPSTREAM_WIRES.get(wire)
    return upstream_wire is not None and all(
        isinstance(t.backend, HttpProvider)
        and t.backend.wire == upstream_wire
        and (wire != "responses" or speaks_responses(t.backend))
        for t in route.targets
    )


#: Providers known to serve OpenAI's Responses API themselves (OpenAI, and Azure on its v1
#: API). Most OpenAI-compatible services (DeepSeek, Mistral, ...) serve Chat Completions
#: only: Responses calls to them are translated, as they worked before the relay existed.
RESPONSES_PROVIDERS = frozenset({"openai", "azure"})


#: A background response's states before its end (OpenAI's ``status``).
_RUNNING = frozenset({"queued", "in_progress"})
#: How often a running background response is read for its end: from the first wait,
#: growing by half each time up to the longest, for at most ``BACKGROUND_WAIT`` seconds.
BACKGROUND_POLL = (1.0, 15.0)
BACKGROUND_WAIT = 3 * 3600.0


def _still_running(answer: Any) -> bool:
    return isinstance(answer, dict) and answer.get("status") in _RUNNING


async def background_ended(
    target: Target, answer: WholeAnswer, call: Call, *, wait: float = BACKGROUND_WAIT
) -> WholeAnswer | None:
    """A ``background`` Responses answer read from its provider until it ends (completed,
    failed, incomplete or cancelled), with the usage it ended with; None if it is gone
    (deleted) or still running after ``wait`` seconds. Each read is the gateway's own
    (``GET /responses/{id}`` with the deployment's key); one that fails is tried again."""
    backend = target.backend
    assert isinstance(backend, HttpProvider) and answer.response_id is not None
    adapter = backend.adapter
    assert isinstance(adapter, OpenAIAdapter)  # as speaks_responses checked
    path = adapter.path("responses", "") + "/" + answer.response_id
    pause, longest = BACKGROUND_POLL
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while loop.time() + pause < deadline:
        await asyncio.sleep(pause)
        pause = min(longest, pause * 1.5)
        try:
            body = await backend.request(HttpRequest("GET", path), call)
            parsed = parse_json(body)
        except UpstreamStatusError as error:
            if error.upstream_status == 404:
                return None
            continue
        except UpstreamError:
            continue
        if _still_running(parsed):
            continue
        usage = answer_usage("responses", parsed)
        size = answer_text_size(parsed) if usage is None else 0
        reason = answer_finish_reason("responses", parsed)
        return answer._replace(body=body, usage=usage, finish_reason=reason, text_size=size)
    return None


def signed_elsewhere(wire: str, body: dict[str, Any]) -> bool:
    """Whether a body in the caller's format ``wire`` carries thinking signed by another
    provider than the one it would be relayed to: an Anthropic ``thinking`` block or a
    Responses ``reasoning`` item whose signature is in the gateway's tagged form (handed
    out by a translated answer; a conversation moved between providers). Relayed as sent,
    the upstream would refuse a signature it did not write; such a call is translated,
    and each adapter sends its provider only its own."""
    if wire == "anthropic":
        messages = body.get("messages")
        for message in messages if isinstance(messages, list) else ():
            if not isinstance(message, dict) or message.get("role") != "assistant":
                continue
            content = message.get("content")
            for block in content if isinstance(content, list) else ():
                if (
                    isinstance(block, dict)
                    and block.get("type") == "thinking"
                    and gateway_tagged(block.get("signature"))
                ):
                    return True
    elif wire == "responses":
        items = body.get("input")
        for item in items if isinstance(items, list) else ():
            if (
                isinstance(item, dict)
                and item.get("type") == "reasoning"
                and gateway_tagged(item.get("encrypted_content"))
            ):
                return True
    return False


def speaks_responses(backend: HttpProvider) -> bool:
    adapter = backend.adapter
    return (
        isinstance(adapter, OpenAIAdapter)
        and adapter.speaks_responses
        and backend.name in RESPONSES_PROVIDERS
    )


def streams(wire: str, body: dict[str, Any]) -> bool:
    """Whether ``body`` asks for a stream in ``wire``'s convention (a 400 unless a boolean)."""
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        # The upstream would judge the field its own way; the gateway must know for sure.
        raise BadRequest("stream: expected a boolean")
    # Ollama streams unless told not to; the others only when asked.
    return stream is not False if wire == "ollama" else stream is True


def stream_options(wire: str, body: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI stream's ``stream_options``, which the relay adds to (a 400 unless an object)."""
    # As the OpenAI dialect reads it: absent, null or empty is no options.
    options = (body.get("stream_options") if wire == "openai" else None) or {}
    if not isinstance(options, dict):
        raise BadRequest("stream_options: expected an object")
    return options


def _chat_path(target: Target, wire: str) -> str:
    assert isinstance(target.backend, HttpProvider)
    adapter = target.backend.adapter
    if isinstance(adapter, OpenAIAdapter):
        endpoint = "responses" if wire == "responses" else "chat/completions"
        return adapter.path(endpoint, target.model)
    return _CHAT_PATHS[wire]


class Relay:
    """One chat body in ``wire``'s format, relayed along a route with retries and failover."""

    def __init__(
        self, engine: Engine, route: Route, body: dict[str, Any], wire: str, headers: Headers
    ) -> None:
        self._engine = engine
        self._route = route
        self._body = body
        self._wire = wire
        self.stream = streams(wire, body)
        self._options = stream_options(wire, body) if self.stream else {}
        # Before the body is rewritten: a scanner reads whether the caller asked for usage.
        self._asked = {"stream_options": body.get("stream_options")}
        self._headers = dict(_JSON)
        for name in _FORWARDED_HEADERS[wire]:
            value = headers.get(name)
            if value is not None:
                self._headers[name] = value

    def _upstream_request(self, target: Target) -> HttpRequest:
        body = self._body
        body["model"] = target.model
        if self.stream and self._wire == "openai":
            body["stream_options"] = {**self._options, "include_usage": True}
        return HttpRequest(
            "POST", _chat_path(target, self._wire), orjson.dumps(body), self._headers
        )

    def _blamed(self, error: UpstreamStatusError) -> ModelwayError:
        """The error to report for an upstream's refusal of the relayed body.

        A relayed body is not validated on the way (that is the fast path's point), so a
        malformed one may make an upstream answer 5xx. When the caller's own format
        refuses the body, that 5xx is the caller's fault: a 400 naming the field, neither
        retried nor counted towards the deployment's cooldown for everyone else.
        """
        judge = _DIALECTS.get(self._wire)
        if error.upstream_status < 500 or judge is None:
            return error
        try:
            judge.decode_chat(self._body)
        except BadRequest as refused:
            return BadRequest(f"{refused} (the upstream answered {error.upstream_status} to it)")
        return error

    async def whole(self, call: Call) -> WholeAnswer:
        """The whole answer (a body that asked for no stream)."""

        async def complete(target: Target) -> tuple[bytes, Any]:
            assert isinstance(target.backend, HttpProvider)
            try:
                answer = await target.backend.request(self._upstream_request(target), call)
            except UpstreamStatusError as error:
                raise self._blamed(error) from None
            try:
                parsed = parse_json(answer)  # an answer that is not JSON is an upstream failure
            except UpstreamError as error:
                raise target.backend.attributed(error) from None
            return answer, parsed

        (answer, parsed), outcome = await self._engine.attempt_each(self._route, complete)
        usage = answer_usage(self._wire, parsed)
        size = answer_text_size(parsed) if usage is None else 0
        reason = answer_finish_reason(self._wire, parsed)
        kept = response_id(parsed) if self._wire == "responses" else None
        running = kept is not None and _still_running(parsed)
        return WholeAnswer(answer, usage, outcome, reason, size, kept, running)

    async def open(self, call: Call) -> OpenedRelay:
        """The stream, committed to a target once its first event arrived."""

        async def open_stream(
            target: Target,
        ) -> tuple[tuple[bytes, StreamScanner], AsyncIterator[bytes]]:
            backend = target.backend
            assert isinstance(backend, HttpProvider)
            started = asyncio.get_running_loop().time()  # ``total`` counts from here
            try:
                response = await backend.open(self._upstream_request(target), call, started=started)
            except UpstreamStatusError as error:
                raise self._blamed(error) from None
            chunks = backend.raw_stream(response, call, started)
            # Committed to this target at its first event, not its first bytes: a stream of
            # comments (``: keepalive``) that then ends fails over as an empty one does.
            scanner = scanner_for(self._wire, self._asked)
            while True:
                try:
                    chunk = await anext(chunks)
                except StopAsyncIteration:
                    # Its one event may have no line break after it (Ollama answers a load
                    # call with bare JSON): what the scanner still holds is the first.
                    try:
                        first = scanner.close()
                    except ModelwayError:
                        first = b""
                    if first:
                        return (first, scanner), chunks
                    raise EmptyResponse(
                        "the upstream stream ended before its first event", provider=backend.name
                    ) from None
                first = scanner.feed(chunk)
                if first:
                    return (first, scanner), chunks

        ((first, scanner), rest), outcome = await self._engine.attempt_each(
            self._route, open_stream, holds=True
        )
        return OpenedRelay(
            _scanned(first, rest, scanner, outcome),
            scanner,
            _MEDIA_TYPES.get(self._wire, "text/event-stream"),
            outcome,
        )


async def _scanned(
    first: bytes, rest: AsyncIterator[bytes], scanner: StreamScanner, outcome: Outcome
) -> AsyncIterator[bytes]:
    """``first`` (the first event, scanned), then the upstream's chunks as ``scanner`` passes
    them on; the target is released at the end."""
    failure: ModelwayError | None = None
    try:
        yield first
        async for chunk in rest:
            data = scanner.feed(chunk)
            if data:
                yield data
        data = scanner.close()
        if data:
            yield data
    except ModelwayError as error:
        failure = error
        raise
    finally:
        outcome.stream_ended(failure)
        await rest.aclose()  # type: ignore[attr-defined]
