"""``Client``: the ``AsyncClient`` API for synchronous code.

Nothing is implemented twice: each ``Client`` runs an ``AsyncClient`` on a private event
loop in a daemon thread and waits for its results. A stream is bridged one event at a
time, so closing it early closes the async stream and cancels the upstream call::

    with Client() as client:
        reply = client.chat("mock/echo", messages=[{"role": "user", "content": "Hi"}])
        with client.chat("mock/echo", messages=..., stream=True) as stream:
            for event in stream:
                ...
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
import weakref
from collections.abc import Coroutine, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypeVar, overload

from modelway.client.asynchronous import AsyncChatStream, AsyncClient
from modelway.client.chat_request import MessageLike, ToolLike
from modelway.client.usage import UsageTracker
from modelway.config import Config, Timeouts
from modelway.engine import Outcome
from modelway.types import ChatResponse, EmbeddingResponse, ModelInfo, StreamEvent

T = TypeVar("T")
#: How long closing waits for connections to be released before giving up.
SHUTDOWN_TIMEOUT = 5.0


class _LoopThread:
    """An event loop running in a daemon thread; ``run`` waits for a coroutine on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="modelway-client", daemon=True
        )
        self._thread.start()

    @property
    def stopped(self) -> bool:
        return self.loop.is_closed() or not self._thread.is_alive()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """The coroutine's result, run on the loop; an interrupt cancels it there."""
        if threading.current_thread() is self._thread:
            coroutine.close()
            # Waiting here for work queued on this very loop would never return.
            raise RuntimeError(
                "a modelway Client was called from its own event loop; use AsyncClient"
            )
        if self.stopped:
            coroutine.close()
            raise RuntimeError("this modelway Client is closed")
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    def submit(self, coroutine: Coroutine[Any, Any, object]) -> None:
        """Run the coroutine on the loop without waiting for it."""
        if self.stopped:
            coroutine.close()
            return
        asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(SHUTDOWN_TIMEOUT)
        if not self._thread.is_alive():
            self.loop.close()


def _shutdown(runner: _LoopThread, client: AsyncClient) -> None:
    """Close the async client and stop its loop (on ``close()``, collection or exit)."""

    async def close_all() -> None:
        await client.aclose()
        await runner.loop.shutdown_asyncgens()

    if not runner.stopped:
        future = asyncio.run_coroutine_threadsafe(close_all(), runner.loop)
        try:
            future.result(SHUTDOWN_TIMEOUT)
        except (concurrent.futures.TimeoutError, Exception):
            future.cancel()
    runner.stop()


class ChatStream:
    """A streamed answer: an iterator of canonical ``StreamEvent``s.

    ``close()`` (or leaving a ``with`` block) before the end cancels the upstream call;
    a stream dropped unclosed is closed in the background.
    """

    def __init__(self, stream: AsyncChatStream, runner: _LoopThread) -> None:
        self._stream = stream
        self._runner = runner
        self._closed = False

    def __repr__(self) -> str:
        return repr(self._stream).replace("AsyncChatStream", "ChatStream", 1)

    @property
    def outcome(self) -> Outcome:
        """Which target answered, after how many attempts."""
        return self._stream.outcome

    def __iter__(self) -> ChatStream:
        return self

    def __next__(self) -> StreamEvent:
        if self._closed:
            raise StopIteration
        try:
            return self._runner.run(self._stream.__anext__())
        except StopAsyncIteration:
            self._closed = True
            raise StopIteration from None

    def close(self) -> None:
        """Stop reading: cancels the upstream call if it is still running."""
        if self._closed:
            return
        self._closed = True
        if not self._runner.stopped:
            self._runner.run(self._stream.aclose())

    def __enter__(self) -> ChatStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        # Never wait here: a collection may run on the loop's own thread.
        if not getattr(self, "_closed", True):
            self._runner.submit(self._stream.aclose())


class Client:
    """Chat, stream, embed and list models through modelway's engine, synchronously.

    Takes the same arguments as ``AsyncClient``. Safe to share between threads.
    """

    def __init__(
        self,
        config: str | os.PathLike[str] | Path | Config | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        max_retries: int | None = None,
        timeouts: Timeouts | Mapping[str, float] | None = None,
    ) -> None:
        runner = _LoopThread()

        async def build() -> AsyncClient:
            # Built on the loop that will use its connection pools.
            return AsyncClient(config, environ=environ, max_retries=max_retries, timeouts=timeouts)

        try:
            self._async = runner.run(build())
        except BaseException:
            runner.stop()
            raise
        self._runner = runner
        self._finalizer = weakref.finalize(self, _shutdown, runner, self._async)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._async.describe()})"

    @property
    def usage(self) -> UsageTracker:
        """Tokens, requests and cost of every call so far."""
        return self._async.usage

    @property
    def async_client(self) -> AsyncClient:
        """The ``AsyncClient`` this client drives (its engine, its usage)."""
        return self._async

    @overload
    def chat(
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
    def chat(
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
    ) -> ChatStream: ...

    @overload
    def chat(
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
    ) -> ChatResponse | ChatStream: ...

    def chat(
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
    ) -> ChatResponse | ChatStream:
        """An answer from ``model``; with ``stream=True`` a ``ChatStream`` of events.

        Arguments as for ``AsyncClient.chat``.
        """
        answer = self._runner.run(
            self._async.chat(
                model,
                messages,
                stream=stream,
                tools=tools,
                tool_choice=tool_choice,
                temperature=temperature,
                max_tokens=max_tokens,
                top_p=top_p,
                stop=stop,
                fallbacks=fallbacks,
                max_retries=max_retries,
                **extra,
            )
        )
        if isinstance(answer, AsyncChatStream):
            return ChatStream(answer, self._runner)
        return answer

    def embeddings(
        self, model: str, input: str | Sequence[str], *, dimensions: int | None = None
    ) -> EmbeddingResponse:
        """One vector per input text, in order."""
        return self._runner.run(self._async.embeddings(model, input, dimensions=dimensions))

    def models(self) -> list[ModelInfo]:
        """Aliases, then every enabled provider's models as ``provider/model``."""
        return self._runner.run(self._async.models())

    def close(self) -> None:
        """Release connections and stop the client's thread; idempotent."""
        self._finalizer()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
