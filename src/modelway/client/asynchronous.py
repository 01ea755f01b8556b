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

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, overload

import msgspec

from modelway.calls import ANONYMOUS, Accounts, Calls, MeteredCall
from modelway.calls.embeddings import embedding_request
from modelway.client.chat_request import MessageLike, ToolLike, build_chat_request
from modelway.client.usage import UsageTracker
from modelway.config import Config, Timeouts, environment, load_config
from modelway.engine import Engine, Outcome
from modelway.limits import Limits
from modelway.store.records import UsageRecord
from modelway.types import (
    ChatResponse,
    EmbeddingResponse,
    ModelInfo,
    StreamEvent,
    Usage,
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

    def __init__(self, events: AsyncIterator[StreamEvent], outcome: Outcome) -> None:
        self._events = events
        self.outcome = outcome
        self._finished = False
        self._loop = asyncio.get_running_loop()

    def __del__(self) -> None:
        # Left open (a ``break`` outside ``async with``, no ``aclose()``): the upstream call
        # is cancelled now, on the stream's loop, not once the cyclic collector finds it.
        if getattr(self, "_finished", True) or self._loop.is_closed():
            return
        self._finished = True
        aclose = getattr(self._events, "aclose", None)
        if aclose is not None:
            self._loop.call_soon_threadsafe(_close_later, aclose)

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
        return event

    async def aclose(self) -> None:
        """Stop reading: cancels the upstream call if it is still running."""
        if self._finished:
            return
        self._finished = True
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


#: Closings of streams left open, kept until each is done (a task nobody holds may vanish).
_CLOSING: set[asyncio.Task[Any]] = set()


def _close_later(aclose: Callable[[], Awaitable[Any]]) -> None:
    task = asyncio.ensure_future(aclose())
    _CLOSING.add(task)
    task.add_done_callback(_CLOSING.discard)


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
            environ = environment()
        if not isinstance(config, Config):
            config = load_config(config, environ)
        limits = Limits.from_environment(None)  # deployments' own caps, in this process
        self.usage = UsageTracker(config.prices)
        accounts = Accounts(limits, _TrackedUsage(self.usage), config.prices)
        self._calls = Calls(Engine(config, environ, rates=limits.rates), accounts)
        self._max_retries = max_retries
        self._closed = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()})"

    def describe(self) -> str:
        """Enabled providers and aliases by name only: never a key or a base URL."""
        router = self._calls.engine.router
        providers = sorted({*router.settings, *({"mock"} & router.backends.keys())})
        state = ", closed" if self._closed else ""
        return f"providers={providers}, aliases={sorted(router.aliases)}{state}"

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"this {type(self).__name__} is closed")

    @property
    def engine(self) -> Engine:
        """The engine this client calls: routing, retries and failover."""
        return self._calls.engine

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
        reach providers that speak OpenAI's wire format; the openai SDK's and LiteLLM's
        client options (``timeout``, ``api_key``, ``extra_headers``, ``num_retries``, ...)
        are a ``BadRequest`` saying what to use instead. ``fallbacks`` are models tried
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
        async with self._open(model, fallbacks or (), retries) as call:
            if not stream:
                return await call.complete(request)
            events = await call.stream(request)
            assert call.outcome is not None
            return AsyncChatStream(events, call.outcome)  # the call ends with the stream

    def _open(
        self, model: str, fallbacks: Sequence[str] = (), retries: int | None = None
    ) -> MeteredCall:
        return self._calls.open(
            ANONYMOUS,
            model,
            dialect=_DIALECT,
            request_id=_request_id(),
            fallbacks=fallbacks,
            max_retries=retries,
            timeouts=self._timeouts,
        )

    async def embeddings(
        self, model: str, input: str | Sequence[str], *, dimensions: int | None = None
    ) -> EmbeddingResponse:
        """One vector per input text, in order."""
        self._check_open()
        texts = input if isinstance(input, str) else list(input)
        request = embedding_request(model, texts, dimensions)  # as the gateway checks it
        async with self._open(model) as call:
            return await call.embed(request)

    async def models(self) -> list[ModelInfo]:
        """Aliases, then every enabled provider's models as ``provider/model``."""
        self._check_open()
        return await self._calls.engine.models()

    async def aclose(self) -> None:
        """Release pooled connections; the client cannot be used afterwards."""
        if not self._closed:
            self._closed = True
            await self._calls.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


class _TrackedUsage:
    """The client's usage records, added up in its ``UsageTracker`` (there is no store)."""

    def __init__(self, tracker: UsageTracker) -> None:
        self._tracker = tracker

    def record(self, record: UsageRecord) -> None:
        if record.provider is None or record.model is None:
            return  # refused before any provider was asked
        if record.status >= 400 and not (record.prompt_tokens or record.completion_tokens):
            return  # the provider failed: nothing answered, nothing spent
        usage = Usage(
            record.prompt_tokens,
            record.completion_tokens,
            record.cached_tokens,
            estimated=record.usage_estimated,  # a cut stream: counted locally, billed still
            cache_write_tokens=record.cache_write_tokens,
        )
        cost = None if record.unpriced else record.cost_usd
        self._tracker.record(record.provider, record.model, usage, cost=cost)

    async def aclose(self) -> None:
        pass
