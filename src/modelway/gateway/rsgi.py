"""The gateway on granian's RSGI interface: chat calls served natively, the rest over ASGI.

RSGI hands the request to Python without building ASGI's message dicts and futures:
measured here, the reference relay serves ~1.5x the requests per second on RSGI that it
serves on granian's ASGI. A POST to a chat path reads its headers and body straight
from granian and answers with one ``response_bytes`` call (a stream through
``response_stream``). Every other request — pages, admin and chat APIs, health — goes
to the same ASGI app ``modelway serve`` always had, through the small bridge below
(``asgi_scope``, ``Receive``, ``Send``), written here because no library adapts RSGI
to ASGI. The bridge passes a body on as it arrives and never more of it than
``server.max_body_bytes``: ``await protocol()`` would gather a chunked body of any size
in memory before the app could refuse it.

Lifespan: ``__rsgi_init__`` starts the ASGI app's lifespan before the worker listens,
then settles the garbage collector (``settle_garbage_collector``); ``__rsgi_del__`` waits
(up to ``server.shutdown_grace``) for the requests still being answered, then stops it,
which flushes the usage writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
from collections.abc import AsyncGenerator, Mapping
from typing import Any, Protocol

from granian._granian import RSGIProtocolClosed as ProtocolClosed

from modelway.config import ServerSettings, environment, load_config
from modelway.dialects.base import Dialect
from modelway.gateway.app import Gateway, create_app
from modelway.gateway.chat import chat_request
from modelway.gateway.dialect_paths import CHAT_PATHS
from modelway.gateway.http import BodyLimits, limited_chunks, read_limited
from modelway.gateway.state import GatewayState
from modelway.gateway.streaming import EventStream
from modelway.gateway.workers import STOPPING_SIGNAL
from modelway.logs import configure_logging

log = logging.getLogger("modelway.gateway")
#: The cyclic garbage collector's thresholds in a serving worker (CPython's are 700, 10, 10).
GC_THRESHOLDS = (20_000, 20, 20)
#: How often a worker checks that its supervisor is still there.
_PARENT_CHECK_SECONDS = 1.0


class RsgiHeaders(Protocol):
    def get(self, key: str, default: None = None, /) -> str | None: ...
    def get_all(self, key: str, /) -> list[str]: ...
    def items(self) -> list[tuple[str, str]]: ...
    def __contains__(self, key: str, /) -> bool: ...


class RsgiScope(Protocol):
    proto: str
    http_version: str
    server: str
    client: str
    scheme: str
    method: str
    path: str
    query_string: str

    @property
    def headers(self) -> RsgiHeaders: ...


def _address(address: str) -> tuple[str, int] | None:
    host, _, port = address.rpartition(":")
    return (host, int(port)) if port.isdigit() else None


def asgi_scope(scope: RsgiScope) -> dict[str, Any]:
    """The ASGI scope for an RSGI request (``path`` comes percent-decoded from granian)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": scope.http_version,
        "server": _address(scope.server),
        "client": _address(scope.client),
        "scheme": scope.scheme,
        "method": scope.method,
        "root_path": "",
        "path": scope.path,
        "raw_path": scope.path.encode(),
        # granian hands the query over decoded as UTF-8: these are the bytes it came as.
        "query_string": scope.query_string.encode("utf-8", "surrogateescape"),
        "headers": [
            (name.encode("latin-1"), value.encode("latin-1"))
            for name, value in scope.headers.items()
        ],
        "state": {},
    }


class Receive:
    """ASGI ``receive`` over RSGI: the body a chunk a message, then waits for a disconnect.

    ``body`` is ``request_body``, bounded by ``server.max_body_bytes`` whatever the route
    does: a Content-Length over it is refused before anything is read, a chunked body at
    its first chunk past it (``PayloadTooLarge`` reaches the route that reads). A route's
    own ``read_body`` counts the same chunks, so it stops as early and answers in its
    own error shape. Without ``body`` (a chat call's, read already) it only waits.
    """

    __slots__ = ("_body", "_protocol")

    def __init__(self, protocol: Any, body: AsyncGenerator[bytes, None] | None = None) -> None:
        self._protocol = protocol
        self._body = body

    async def __call__(self) -> dict[str, Any]:
        if self._body is not None:
            async for chunk in self._body:
                if chunk:  # granian ends a chunked body with an empty chunk
                    return {"type": "http.request", "body": chunk, "more_body": True}
            self._body = None
            return {"type": "http.request", "body": b"", "more_body": False}
        await self._protocol.client_disconnect()
        return {"type": "http.disconnect"}

    async def aclose(self) -> None:
        """Stop reading the body (a route may answer without reading it all)."""
        if self._body is not None:
            await self._body.aclose()
        self._body = None


class Send:
    """ASGI ``send`` over RSGI: one ``response_bytes``, or a stream when there is more.

    granian ends a streamed response when its transport object is released, not when
    the handler returns, so the transport is let go as soon as the body is complete
    (``finish``): an exception's reference cycle that still holds this ``Send`` must
    not keep the caller waiting until the next garbage collection.
    """

    __slots__ = ("_done", "_headers", "_protocol", "_status", "_stream")

    def __init__(self, protocol: Any) -> None:
        self._protocol = protocol
        self._status = 500
        self._headers: list[tuple[str, str]] = []
        self._stream: Any = None
        self._done = False

    async def __call__(self, message: Mapping[str, Any]) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self._status = message["status"]
            self._headers = _text_headers(message.get("headers", ()))
            return
        if kind != "http.response.body" or self._done:
            return
        body: bytes = message.get("body", b"")
        more = message.get("more_body", False)
        if self._stream is None:
            if not more:
                self._done = True
                self._protocol.response_bytes(self._status, self._headers, body)
                return
            self._stream = self._protocol.response_stream(self._status, self._headers)
        if body:
            try:
                await self._stream.send_bytes(body)
            except RuntimeError as closed:  # granian's ProtocolClosed: the client left
                self.finish()
                raise ConnectionResetError(str(closed)) from None
        if not more:
            self.finish()

    def finish(self) -> None:
        """The response is over: release the stream so granian ends it."""
        self._done = True
        self._stream = None


def _text_headers(raw: Any) -> list[tuple[str, str]]:
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in raw]


def request_body(protocol: Any, headers: RsgiHeaders, limit: int) -> AsyncGenerator[bytes, None]:
    """An RSGI request's body as it arrives, within ``limit`` bytes (``limited_chunks``)."""
    return limited_chunks(headers.get("content-length"), protocol, lambda: protocol, limit)


async def read_body(protocol: Any, headers: RsgiHeaders, limits: BodyLimits) -> bytes:
    """An RSGI request's whole body, within ``limits`` (``read_limited``).

    The chunks are ``protocol`` itself, not ``protocol.__aiter__()``: granian hands the
    body over once, and ``async for`` calls ``__aiter__`` again (a protocol error).
    """
    body: bytes = await read_limited(
        headers.get("content-length"), protocol, lambda: protocol, limits
    )
    return body


def settle_garbage_collector() -> None:
    """Once the worker has started: what it built so far is kept for good (``gc.freeze``),
    and the cyclic collector runs after 20,000 net new container objects, not 700.

    A request's objects are freed by reference counting as it ends; the collector only
    walks what is alive. With CPython's thresholds and 32 requests in flight, a served
    worker ran ~4,950 collections (37 of the whole heap: modules, config, pools) in
    ~52,000 requests, 2.1 s in all: ~40 µs of CPU per request. Frozen, a full collection
    walks only what came after the start; at 20,000, garbage held in cycles (an
    exception's traceback, say) still goes, a few MB at most later. docs/performance.md.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class RsgiGateway:
    """The RSGI application ``modelway serve`` runs in each granian worker."""

    def __init__(self, app: Gateway, server: ServerSettings) -> None:
        self.asgi = app
        self._shutdown_grace = server.shutdown_grace
        self._max_body_bytes = server.max_body_bytes
        self._lifespan = contextlib.AsyncExitStack()
        self._in_flight = 0
        self._drained: asyncio.Event | None = None  # set once stopping, when none are open
        #: The requests being answered, to cut at the end of the shutdown grace.
        self._open: set[asyncio.Task[Any]] = set()
        self._stopping_since: float | None = None

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.run_until_complete(self._lifespan.enter_async_context(self.asgi.lifespan()))
        settle_garbage_collector()
        loop.call_later(_PARENT_CHECK_SECONDS, self._check_parent, os.getppid(), loop)
        # The supervisor says "stopping" (``STOPPING_SIGNAL``) just before its SIGTERM:
        # granian then waits for every open connection before ``__rsgi_del__``, so the
        # grace is counted from here (a stream longer than it was killed with its record).
        loop.add_signal_handler(STOPPING_SIGNAL, self._stopping, loop)

    def _stopping(self, loop: asyncio.AbstractEventLoop) -> None:
        """The shutdown began: what is still open when the grace is over is cut."""
        if self._stopping_since is None:
            self._stopping_since = loop.time()
            loop.call_later(self._shutdown_grace, self._cut)

    def _cut(self) -> None:
        """End the requests still open at the end of the grace, so that each is recorded
        (a 503 ``server_stopping``) and the usage writer flushed before the worker is
        killed: the caller's connection closes mid-answer."""
        if not self._open:
            return
        log.warning("shutdown grace over: cutting %d request(s) still open", len(self._open))
        state = self.asgi.gateway
        if state is not None:
            state.calls.stopping = True
        for task in list(self._open):
            task.cancel()

    def _check_parent(self, parent: int, loop: asyncio.AbstractEventLoop) -> None:
        """A worker whose supervisor was killed (no signal reached it) stops by itself."""
        if os.getppid() != parent:
            log.warning("the supervisor process is gone; this worker stops")
            self._stopping(loop)
            os.kill(os.getpid(), signal.SIGTERM)  # the same graceful stop as a signal
            return
        loop.call_later(_PARENT_CHECK_SECONDS, self._check_parent, parent, loop)

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.run_until_complete(self._stop())

    async def _stop(self) -> None:
        if self._in_flight:
            self._drained = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._shutdown_grace):
                    await self._drained.wait()
        if self._in_flight:
            log.warning("stopping with %d request(s) still open", self._in_flight)
        await self._lifespan.aclose()

    async def __rsgi__(self, scope: RsgiScope, protocol: Any) -> None:
        if scope.proto != "http":
            return  # no websockets here
        self._in_flight += 1
        task = asyncio.current_task()
        if task is not None:
            self._open.add(task)
        try:
            state = self.asgi.gateway
            dialect = CHAT_PATHS.get(scope.path) if scope.method == "POST" else None
            if dialect is not None and state is not None:
                # The bridged requests pass the same check in the ASGI app.
                refused = self.asgi.refused(state, "POST", scope.path, scope.headers)
                if refused is not None:
                    protocol.response_bytes(
                        refused.status_code, _text_headers(refused.raw_headers), refused.body
                    )
                    return
                await self._chat(state, dialect, scope, protocol)
            else:
                await self._bridged(scope, protocol)
        except asyncio.CancelledError:
            if state is None or not state.calls.stopping:
                raise
            # Cut at the end of the shutdown grace (``_cut``): recorded, nothing to say.
        finally:
            self._open.discard(task)
            self._in_flight -= 1
            if not self._in_flight and self._drained is not None:
                self._drained.set()

    async def _bridged(self, scope: RsgiScope, protocol: Any) -> None:
        body = request_body(protocol, scope.headers, self._max_body_bytes)
        receive = Receive(protocol, body)
        send = Send(protocol)
        try:
            await self.asgi(asgi_scope(scope), receive, send)
        finally:
            send.finish()
            await receive.aclose()

    async def _chat(
        self, state: GatewayState, dialect: Dialect, scope: RsgiScope, protocol: Any
    ) -> None:
        headers = scope.headers
        peer = _address(scope.client)
        client = peer[0] if peer else None
        proxies = self.asgi.proxies
        if proxies and proxies.trusts(client):
            client = proxies.client(client, headers.get_all("x-forwarded-for"))
        # A caller who hangs up stops the call at once, before its answer or mid-stream:
        # its upstream request is cancelled, the record says 499, and an idempotency key
        # it held is freed. granian's disconnect future calls back without being awaited:
        # no task per call. It is cancelled once the answer is out: granian keeps each
        # one until the connection closes, ~1 KB a request on a keep-alive connection
        # otherwise.
        gone = protocol.client_disconnect()
        left = _Hangup(asyncio.current_task())
        gone.add_done_callback(left)
        try:
            response = await chat_request(
                state,
                dialect,
                headers,
                self.asgi.ids.given_or_new(headers.get("x-request-id")),
                lambda limits: read_body(protocol, headers, limits),
                client=client,
            )
            if isinstance(response, EventStream):
                await send_stream(response, protocol)
            else:
                protocol.response_bytes(
                    response.status_code, _text_headers(response.raw_headers), response.body
                )
        except asyncio.CancelledError:
            if left.cancelled_call():
                return  # nobody is there to answer
            raise
        finally:
            gone.remove_done_callback(left)
            gone.cancel()


async def send_stream(response: EventStream, protocol: Any) -> None:
    """``response`` sent chunk by chunk straight to granian's stream (no ASGI messages).

    The first chunk is taken before the headers go out, so the body has started and
    closing it always runs its cleanup (an unstarted generator skips it); the body is
    closed however the stream ends, which closes the upstream response. A write that
    fails (granian's ``ProtocolClosed``: the client left between two chunks) ends it
    quietly; a caller hanging up while the body waits cancels the task (``_Hangup``).
    granian ends the stream when its transport is released, so nothing may hold it once
    the last chunk is written: not an exception's traceback either.
    """
    body = response.body_iterator
    try:
        first = await anext(body, b"")
        transport = protocol.response_stream(
            response.status_code, _text_headers(response.raw_headers)
        )
        try:
            if first:
                await transport.send_bytes(first)
            async for chunk in body:
                await transport.send_bytes(chunk)
        except ProtocolClosed:
            pass  # the client left between two chunks
        finally:
            del transport
    finally:
        await body.aclose()  # type: ignore[attr-defined]


class _Hangup:
    """Called when the caller's connection closes: cancels the call's task (once)."""

    __slots__ = ("_task", "fired")

    def __init__(self, task: asyncio.Task[Any] | None) -> None:
        self._task = task
        self.fired = False

    def __call__(self, _future: object) -> None:
        task = self._task
        if task is not None and not task.done():
            self.fired = True
            task.cancel()

    def cancelled_call(self) -> bool:
        """Whether the cancellation came from here; if so it is taken back (``uncancel``)."""
        task = self._task
        if not self.fired or task is None:
            return False
        return task.uncancel() == 0


def app_from_environment() -> RsgiGateway:
    """The app as granian workers build it: config path from ``MODELWAY_CONFIG``."""
    environ = environment()
    config = load_config(None, environ)
    configure_logging(config.logging)
    return RsgiGateway(create_app(config, environ), config.server)
