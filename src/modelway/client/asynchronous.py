"""``AsyncClient``: modelway as a Python library, in-process, no gateway needed.

It builds the same ``Engine`` the gateway runs (env keys and/or ``modelway.yaml``),
so routing, aliases, retries and failover behave exactly as they do there::

    async with AsyncClient() as client:
        reply = await client.chat("mock/echo", messages=[{"role": "user", "content": "Hi"}])
        async with await client.chat("mock/echo", messages=..., stream=True) as stream:
            async for event in stream:
                ...
        client.usage.summary()

One ``AsyncClient`` belongs to one event loop: its pooled HTTP connections do.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, overload

import msgspec

from modelway.client.chat_request import MessageLike, ToolLike, build_chat_request
from modelway.client.usage import UsageTracker
from modelway.config import Config, Timeouts, load_config
from modelway.engine import Engine, Outcome
from modelway.routing.resolve import Route
from modelway.types import (
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ModelInfo,
    StreamEvent,
    Usage,
    UsageReport,
)

#: The chat request's fields are in OpenAI's vocabulary, so its ``extra`` fields are too.
_DIALECT = "openai"


def _request_id() -> str:
    return f"mw-{uuid.uuid4().hex}"


class AsyncChatStream:
    """A streamed answer: an async iterator of canonical ``StreamEvent``s.

    The first event has already arrived, so ``outcome`` (which target answered, after
    how many attempts) is known. Closing the stream early (``aclose()``, or leaving an
    ``async with`` block) cancels the upstream call. Usage is recorded when the stream
    ends or is closed.
    """

    def __init__(
        self, events: AsyncIterator[StreamEvent], outcome: Outcome, usage: UsageTracker
    ) -> None:
        self._events = events
        self.outcome = outcome
        self._tracker = usage
        self._usage: Usage | None = None
        self._finished = False

    def __repr__(self) -> str:
        target = self.outcome.target
        state = "finished" if self._finished else "open"
        return f"AsyncChatStream(model='{target.backend.name}/{target.model}', {state})"

    def __aiter__(self) -> AsyncChatStream:
        return self

    async def __anext__(self) -> StreamEvent:
        if self._finished:
            raise StopAsyncIteration
        try:
            event = await anext(self._events)
        except BaseException:
            # The end of the stream, an upstream error or a cancellation: all finish it.
            await self.aclose()
            raise
        if isinstance(event, UsageReport):
            self._usage = event.usage
        return event

    async def aclose(self) -> None:
        """Stop reading: cancels the upstream call if it is still running."""
        if self._finished:
            return
        self._finished = True
        target = self.outcome.target
        self._tracker.record(target.backend.name, target.model, self._usage)
        aclose = getattr(self._events, "aclose", None)
        if aclose is not None:
            await aclose()

    async def __aenter__(self) -> AsyncChatStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


class AsyncClient:
    """Chat, stream, embed and list models through modelway's engine, in-process.

    ``config`` is a path to ``modelway.yaml``, a loaded ``Config``, or None (then
    ``$MODELWAY_CONFIG`` or ``./modelway.yaml`` if present). ``environ`` supplies the
    provider keys (default: ``.env`` overlaid by the process environment, as the
    gateway reads them). ``max_retries`` is the default retry budget per target;
    ``timeouts`` (``Timeouts`` or a dict of its fields: connect, first_token, stall,
    total, in seconds) replace the configured ones for every call.
    """

    def __init__(
        self,
        config: str | os.PathLike[str] | Path | Config | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        max_retries: int | None = None,
        timeouts: Timeouts | Mapping[str, float] | None = None,
    ) -> None:
        if timeouts is not None and not isinstance(timeouts, Timeouts):
            try:
                timeouts = msgspec.convert(dict(timeouts), Timeouts)
            except msgspec.ValidationError as error:
                raise ValueError(f"timeouts: {error}") from None
        self._timeouts = timeouts
        if environ is None:
            # Imported here: the gateway app (Starlette) is not needed to use the library.
            from modelway.gateway.app import environment

            environ = environment()
        if not isinstance(config, Config):
            config = load_config(config, environ)
        self._engine = Engine(config, environ)
        self._max_retries = max_retries
        self.usage = UsageTracker(config.prices)
        self._closed = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()})"

    def describe(self) -> str:
        """Enabled providers and aliases by name only: never a key or a base URL."""
        router = self._engine.router
        providers = sorted({"mock", *router.settings})
        state = ", closed" if self._closed else ""
        return f"providers={providers}, aliases={sorted(router.aliases)}{state}"

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"this {type(self).__name__} is closed")

    @property
    def engine(self) -> Engine:
        """The engine this client calls: routing, retries and failover."""
        return self._engine

    @overload
    async def chat(
        self,
        model: str,
        messages: Sequence[MessageLike],
        *,
        stream: Literal[False] = False,
        tools: Sequence[ToolLike] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        top_p: float | None = None,
        stop: str | Sequence[str] | None = None,
        fallbacks: Sequence[str] | None = None,
        max_retries: int | None = None,
        **extra: Any,
    ) -> ChatResponse: ...

    @overload
    async def chat(
        self,
        model: str,
        messages: Sequence[MessageLike],
        *,
        stream: Literal[True],
        tools: Sequence[ToolLike] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        top_p: float | None = None,
        stop: str | Sequence[str] | None = None,
        fallbacks: Sequence[str] | None = None,
        max_retries: int | None = None,
        **extra: Any,
    ) -> AsyncChatStream: ...

    @overload
    async def chat(
        self,
        model: str,
        messages: Sequence[MessageLike],
        *,
        stream: bool,
        tools: Sequence[ToolLike] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        top_p: float | None = None,
        stop: str | Sequence[str] | None = None,
        fallbacks: Sequence[str] | None = None,
        max_retries: int | None = None,
        **extra: Any,
    ) -> ChatResponse | AsyncChatStream: ...

    async def chat(
        self,
        model: str,
        messages: Sequence[MessageLike],
        *,
        stream: bool = False,
        tools: Sequence[ToolLike] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        top_p: float | None = None,
        stop: str | Sequence[str] | None = None,
        fallbacks: Sequence[str] | None = None,
        max_retries: int | None = None,
        **extra: Any,
    ) -> ChatResponse | AsyncChatStream:
        """An answer from ``model``; with ``stream=True`` an ``AsyncChatStream`` of events.

        ``messages`` and ``tools`` take OpenAI-style dicts or canonical ``Message`` /
        ``Tool`` structs. Other keyword arguments (``seed``, ``response_format``, ...)
        reach providers that speak OpenAI's wire format. ``fallbacks`` are models tried
        after every target of ``model`` failed with a retryable error.
        """
        self._check_open()
        request = build_chat_request(
            model,
            messages,
            stream=stream,
            tools=tools,
            tool_choice=tool_choice,
            temperature=temperature,
            max_tokens=max_tokens,
            top_p=top_p,
            stop=stop,
            extra=extra,
        )
        retries = self._max_retries if max_retries is None else max_retries
        if stream:
            events, outcome = await self._engine.open_stream(
                request,
                request_id=_request_id(),
                dialect=_DIALECT,
                route=self._route(model, fallbacks, retries),
            )
            return AsyncChatStream(events, outcome, self.usage)
        response, outcome = await self._engine.complete(
            request,
            request_id=_request_id(),
            dialect=_DIALECT,
            route=self._route(model, fallbacks, retries),
        )
        self.usage.record(outcome.target.backend.name, outcome.target.model, response.usage)
        return response

    def _route(self, model: str, fallbacks: Sequence[str] | None, retries: int | None) -> Route:
        route = self._engine.route(model, fallbacks or (), retries)
        return route if self._timeouts is None else route._replace(timeouts=self._timeouts)

    async def embeddings(
        self, model: str, input: str | Sequence[str], *, dimensions: int | None = None
    ) -> EmbeddingResponse:
        """One vector per input text, in order."""
        self._check_open()
        texts = [input] if isinstance(input, str) else list(input)
        request = EmbeddingRequest(model=model, input=texts, dimensions=dimensions)
        response, outcome = await self._engine.embeddings(request, request_id=_request_id())
        self.usage.record(outcome.target.backend.name, outcome.target.model, response.usage)
        return response

    async def models(self) -> list[ModelInfo]:
        """Aliases, then every enabled provider's models as ``provider/model``."""
        self._check_open()
        return await self._engine.models()

    async def aclose(self) -> None:
        """Release pooled connections; the client cannot be used afterwards."""
        if not self._closed:
            self._closed = True
            await self._engine.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
