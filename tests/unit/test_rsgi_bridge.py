"""The RSGI side of the gateway: the ASGI bridge and the body reader, against a stand-in
for granian's protocol object (the real one is exercised end to end by every integration
test, since ``modelway serve`` runs on it)."""

from __future__ import annotations

import asyncio
import itertools
import weakref
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelway.config import ServerSettings, parse_config
from modelway.errors import PayloadTooLarge, RequestBodyTimeout
from modelway.gateway.app import Gateway, create_app
from modelway.gateway.http import BodyLimits, answers_errors, read_body
from modelway.gateway.request_id import RequestIds
from modelway.gateway.rsgi import (
    ProtocolClosed,
    Receive,
    RsgiGateway,
    Send,
    asgi_scope,
    request_body,
    send_stream,
)
from modelway.gateway.rsgi import read_body as read_rsgi_body
from modelway.gateway.streaming import EventStream
from tests.polling import eventually


class Headers:
    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs

    def get(self, key: str, default: None = None) -> str | None:
        return next((v for k, v in self._pairs if k == key), default)

    def get_all(self, key: str) -> list[str]:
        return [v for k, v in self._pairs if k == key]

    def items(self) -> list[tuple[str, str]]:
        return list(self._pairs)

    def __contains__(self, key: str) -> bool:
        return any(k == key for k, _ in self._pairs)


@dataclass
class Scope:
    headers: Headers
    proto: str = "http"
    http_version: str = "1.1"
    server: str = "127.0.0.1:8080"
    client: str = "127.0.0.1:51000"
    scheme: str = "http"
    method: str = "GET"
    path: str = "/v1/models/mock/echo"
    query_string: str = "limit=5&key=a%20b"


class Stream:
    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closed = False

    async def send_bytes(self, data: bytes) -> None:
        if self.closed:
            raise ProtocolClosed("protocol closed")  # granian's RSGIProtocolClosed
        self.sent.append(data)


@dataclass
class Protocol:
    """granian's protocol object for one request: its body, and what was answered.

    As granian's, it hands the body over once, whole (``await protocol()``) or as an
    iterator (``protocol.__aiter__()``, which is the protocol itself), and a chunked body
    ends with an empty chunk before ``StopAsyncIteration``.
    """

    #: The body as one piece; None: the ``chunks`` gathered (what granian does then).
    body: bytes | None = None
    chunks: Iterable[bytes] = ()
    #: After the last chunk, the body neither goes on nor ends (a caller gone quiet).
    stalls: bool = False
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)
    #: Every disconnect future handed out (granian holds each until it is cancelled).
    watches: list[asyncio.Future[bool]] = field(default_factory=list)
    answered: tuple[int, list[tuple[str, str]], bytes] | None = None
    stream: Stream | None = None
    #: How much of the body was read: whole reads, and chunks taken from ``chunks``.
    whole_reads: int = 0
    chunks_read: int = 0
    _handed_over: bool = False
    _rest: AsyncIterator[bytes] | None = None

    async def __call__(self) -> bytes:
        self._hand_over()
        self.whole_reads += 1
        if self.body is not None:
            return self.body
        return b"".join([chunk async for chunk in self._chunks()])

    def __aiter__(self) -> Protocol:
        self._hand_over()
        self._rest = self._chunks()
        return self

    async def __anext__(self) -> bytes:
        if self._rest is None:
            raise StopAsyncIteration
        try:
            return await anext(self._rest)
        except StopAsyncIteration:
            self._rest = None
            return b""

    def _hand_over(self) -> None:
        if self._handed_over:
            raise RuntimeError("RSGI protocol error")  # granian's, for a second read
        self._handed_over = True

    async def _chunks(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            self.chunks_read += 1
            yield chunk
        if self.stalls:
            await asyncio.Event().wait()

    def client_disconnect(self) -> asyncio.Future[bool]:
        """As granian's: a future of the caller leaving, live until it is cancelled."""
        watch = asyncio.ensure_future(self.disconnected.wait())
        self.watches.append(watch)
        return watch

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.answered = (status, headers, body)

    def response_stream(self, status: int, headers: list[tuple[str, str]]) -> Stream:
        self.answered = (status, headers, b"")
        self.stream = Stream()
        return self.stream


def test_the_asgi_scope_carries_method_path_query_headers_and_addresses() -> None:
    scope = asgi_scope(Scope(Headers([("authorization", "Bearer k"), ("x-a", "1")])))

    assert scope["type"] == "http" and scope["method"] == "GET"
    assert scope["path"] == "/v1/models/mock/echo"
    assert scope["query_string"] == b"limit=5&key=a%20b"
    assert scope["headers"] == [(b"authorization", b"Bearer k"), (b"x-a", b"1")]
    assert scope["client"] == ("127.0.0.1", 51000)
    assert scope["server"] == ("127.0.0.1", 8080)


async def test_receive_gives_the_body_as_it_comes_then_waits_for_the_client_to_leave() -> None:
    protocol = Protocol(chunks=[b'{"a"', b":1}"])
    receive = Receive(protocol, request_body(protocol, Headers([]), limit=100))

    assert await receive() == {"type": "http.request", "body": b'{"a"', "more_body": True}
    assert await receive() == {"type": "http.request", "body": b":1}", "more_body": True}
    assert await receive() == {"type": "http.request", "body": b"", "more_body": False}
    waiting = asyncio.create_task(receive())
    await asyncio.sleep(0)
    assert not waiting.done()
    protocol.disconnected.set()
    assert await waiting == {"type": "http.disconnect"}


async def test_a_declared_body_is_read_whole_in_one_message() -> None:
    protocol = Protocol(body=b'{"a":1}')
    receive = Receive(protocol, request_body(protocol, Headers([("content-length", "7")]), 100))

    assert await receive() == {"type": "http.request", "body": b'{"a":1}', "more_body": True}
    assert await receive() == {"type": "http.request", "body": b"", "more_body": False}
    assert (protocol.whole_reads, protocol.chunks_read) == (1, 0)


async def test_a_whole_answer_goes_out_in_one_response_bytes_call() -> None:
    protocol = Protocol()
    send = Send(protocol)

    await send({"type": "http.response.start", "status": 201, "headers": [(b"x-a", b"1")]})
    await send({"type": "http.response.body", "body": b"done"})

    assert protocol.answered == (201, [("x-a", "1")], b"done")
    assert protocol.stream is None


async def test_a_body_with_more_to_come_is_streamed_chunk_by_chunk() -> None:
    protocol = Protocol()
    send = Send(protocol)

    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"one", "more_body": True})
    await send({"type": "http.response.body", "body": b"two", "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})

    assert protocol.stream is not None and protocol.stream.sent == [b"one", b"two"]


async def test_writing_to_a_client_that_left_raises_a_connection_error() -> None:
    protocol = Protocol()
    send = Send(protocol)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"one", "more_body": True})
    assert protocol.stream is not None
    protocol.stream.closed = True

    with pytest.raises(ConnectionResetError):
        await send({"type": "http.response.body", "body": b"two", "more_body": True})


async def test_a_declared_body_over_the_limit_is_refused_before_it_is_read() -> None:
    protocol = Protocol(body=b"x" * 100)

    with pytest.raises(PayloadTooLarge):
        await read_rsgi_body(protocol, Headers([("content-length", "100")]), BodyLimits(10))
    assert await read_rsgi_body(
        protocol, Headers([("content-length", "100")]), BodyLimits(100)
    ) == (b"x" * 100)


async def test_a_chunked_body_is_refused_once_it_passes_the_limit() -> None:
    # Also: the body is taken from granian's iterator once (a second __aiter__ is an error).
    chunks: Any = [b"12345", b"67890", b"abc"]

    assert await read_rsgi_body(Protocol(chunks=chunks), Headers([]), BodyLimits(13)) == (
        b"1234567890abc"
    )
    with pytest.raises(PayloadTooLarge):
        await read_rsgi_body(Protocol(chunks=chunks), Headers([]), BodyLimits(12))


async def test_a_chat_body_that_stops_coming_is_a_timeout() -> None:
    limits = BodyLimits(100, timeout=0.01)
    with pytest.raises(RequestBodyTimeout):
        await read_rsgi_body(Protocol(chunks=[b"{"], stalls=True), Headers([]), limits)


async def test_the_stream_is_released_when_the_body_ends_or_the_handler_gives_up() -> None:
    # granian ends a stream when its transport is released: nothing may keep it.
    protocol = Protocol()
    send = Send(protocol)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"one", "more_body": True})
    assert send._stream is not None
    await send({"type": "http.response.body", "body": b"", "more_body": False})
    assert send._stream is None

    unfinished = Send(Protocol())
    await unfinished({"type": "http.response.start", "status": 200, "headers": []})
    await unfinished({"type": "http.response.body", "body": b"one", "more_body": True})
    unfinished.finish()
    assert unfinished._stream is None


class Chunks:
    """A stream's body: its chunks, each after a suspension; knows whether it was closed."""

    def __init__(self, *chunks: bytes, then: BaseException | None = None) -> None:
        self.chunks = chunks
        self.then = then
        self.taken = 0
        self.closed = False

    async def body(self) -> AsyncIterator[bytes]:
        try:
            for chunk in self.chunks:
                await asyncio.sleep(0)
                self.taken += 1
                yield chunk
            if self.then is not None:
                raise self.then
        finally:
            self.closed = True


async def test_an_event_stream_goes_to_granian_chunk_by_chunk_with_its_headers() -> None:
    protocol = Protocol()
    source = Chunks(b"data: 1\n\n", b"data: 2\n\n")
    response = EventStream(source.body(), "text/event-stream", {"x-modelway-provider": "mock"})

    await send_stream(response, protocol)

    assert protocol.answered is not None and protocol.stream is not None
    status, headers, _ = protocol.answered
    assert status == 200
    assert ("content-type", "text/event-stream; charset=utf-8") in headers
    assert ("x-modelway-provider", "mock") in headers
    assert not any(name == "content-length" for name, _ in headers)
    assert protocol.stream.sent == [b"data: 1\n\n", b"data: 2\n\n"]
    assert source.closed


async def test_a_client_gone_between_two_chunks_ends_the_stream_quietly_and_closes_the_body() -> (
    None
):
    class LeavesAfterOne(Stream):
        async def send_bytes(self, data: bytes) -> None:
            await super().send_bytes(data)
            self.closed = True  # the next write finds the connection gone

    protocol = Protocol()
    protocol.response_stream = lambda status, headers: LeavesAfterOne()  # type: ignore[method-assign]
    source = Chunks(b"one", b"two", b"three")

    await send_stream(EventStream(source.body(), "text/event-stream"), protocol)

    assert source.taken == 2  # the write of the second failed: no more was read
    assert source.closed


async def test_the_stream_is_let_go_at_its_end_even_when_its_body_fails() -> None:
    # granian ends a stream when its transport is released: a traceback kept by whoever
    # handles the error must not hold it.
    streams: list[weakref.ref[Stream]] = []

    def response_stream(status: int, headers: list[tuple[str, str]]) -> Stream:
        stream = Stream()
        streams.append(weakref.ref(stream))
        return stream

    protocol = Protocol()
    protocol.response_stream = response_stream  # type: ignore[method-assign]
    source = Chunks(b"one", then=ValueError("the body broke"))

    with pytest.raises(ValueError) as failed:
        await send_stream(EventStream(source.body(), "text/event-stream"), protocol)

    assert failed.value.__traceback__ is not None  # kept, with the frames it holds
    assert len(streams) == 1 and streams[0]() is None
    assert source.closed


async def test_a_stream_whose_caller_hangs_up_while_it_waits_stops_and_closes_its_body(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The upstream stalls after its first chunk; the caller leaves: the call's task is
    # cancelled at once (not when a write next fails), quietly, and the body is closed.
    stalled, closed = asyncio.Event(), asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        try:
            yield b"data: 1\n\n"
            stalled.set()
            await asyncio.Event().wait()
        finally:
            closed.set()

    async def chat_request(*args: Any, **kwargs: Any) -> EventStream:
        return EventStream(body(), "text/event-stream")

    monkeypatch.setattr("modelway.gateway.rsgi.chat_request", chat_request)
    environ = {"MODELWAY_DATA_DIR": str(tmp_path)}
    config = parse_config("", environ)
    app = create_app(config, environ)
    protocol = Protocol()
    async with app.lifespan():
        gateway = RsgiGateway(app, config.server)
        serving = asyncio.create_task(gateway.__rsgi__(post("/v1/chat/completions"), protocol))
        await asyncio.wait_for(stalled.wait(), 10)
        protocol.disconnected.set()
        await asyncio.wait_for(serving, 10)  # ends, and without an error

    assert closed.is_set()
    assert protocol.stream is not None and protocol.stream.sent == [b"data: 1\n\n"]
    assert protocol.watches and all(watch.done() for watch in protocol.watches)


async def test_a_caller_who_hangs_up_while_its_key_is_checked_is_recorded_499(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A key's first check (Argon2, the store) takes a while; a caller leaving meanwhile
    # cancelled the call and left no usage record and no request line (found in a trial).
    checking = asyncio.Event()

    async def authenticate(*args: Any, **kwargs: Any) -> Any:
        checking.set()
        await asyncio.Event().wait()

    monkeypatch.setattr("modelway.gateway.chat.authenticate", authenticate)
    environ = {"MODELWAY_DATA_DIR": str(tmp_path)}
    config = parse_config("", environ)
    app = create_app(config, environ)
    protocol = Protocol(body=b'{"model": "mock/echo", "messages": []}')
    async with app.lifespan():
        gateway = RsgiGateway(app, config.server)
        scope = post("/v1/chat/completions", ("x-request-id", "left-early"))
        serving = asyncio.create_task(gateway.__rsgi__(scope, protocol))
        await asyncio.wait_for(checking.wait(), 10)
        protocol.disconnected.set()
        await asyncio.wait_for(serving, 10)  # ends, and without an error
        state = app.state.gateway

        async def stored() -> list[Any] | None:
            return await state.store.usage.recent(limit=10) or None

        (record,) = await eventually(stored)

    assert protocol.answered is None  # nobody to answer
    assert (record.request_id, record.status, record.error_type) == (
        "left-early",
        499,
        "ClientGone",
    )


# --- bodies through the bridge: bounded by server.max_body_bytes -------------------------

LIMIT = 1000


async def echo(request: Request) -> Response:
    """Answers with the body it was given, read with no bound of its own."""
    return Response(await request.body())


ECHO_LIMITS = BodyLimits(10 * LIMIT)


async def echo_within_limit(request: Request) -> Response:
    """Answers with the body, read as the gateway's routes read theirs."""
    return Response(await read_body(request, ECHO_LIMITS))


def bridge() -> RsgiGateway:
    """The bridge in front of a small app whose routes answer errors as the gateway's do."""
    routes = [
        Route("/echo", answers_errors(echo), methods=["POST"]),
        Route("/echo-within-limit", answers_errors(echo_within_limit), methods=["POST"]),
    ]
    app = Gateway(Starlette(routes=routes), RequestIds())
    return RsgiGateway(app, ServerSettings(max_body_bytes=LIMIT))


def post(path: str, *headers: tuple[str, str]) -> Scope:
    return Scope(Headers(list(headers)), method="POST", path=path, query_string="")


def answer_of(protocol: Protocol) -> tuple[int, bytes]:
    assert protocol.answered is not None
    status, _, body = protocol.answered
    return status, body


def error_code(body: bytes) -> str:
    code: str = orjson.loads(body)["error"]["code"]
    return code


def many_chunks(size: int) -> Iterator[bytes]:
    """A chunked body of ten thousand chunks of ``size`` bytes."""
    return itertools.repeat(b"x" * size, 10_000)


async def test_a_chunked_body_past_the_limit_is_413_and_read_no_further() -> None:
    protocol = Protocol(chunks=many_chunks(100))

    await bridge().__rsgi__(post("/echo"), protocol)

    status, body = answer_of(protocol)
    assert status == 413 and error_code(body) == "payload_too_large"
    assert protocol.chunks_read == LIMIT // 100 + 1  # the chunk that passed it, no more


async def test_a_declared_length_past_the_limit_is_413_before_anything_is_read() -> None:
    protocol = Protocol(body=b"x" * (LIMIT + 1), chunks=many_chunks(100))

    await bridge().__rsgi__(post("/echo", ("content-length", str(LIMIT + 1))), protocol)

    status, body = answer_of(protocol)
    assert status == 413 and error_code(body) == "payload_too_large"
    assert (protocol.whole_reads, protocol.chunks_read) == (0, 0)


async def test_a_body_right_at_the_limit_is_accepted() -> None:
    chunked = Protocol(chunks=[b"x" * 100] * (LIMIT // 100))
    await bridge().__rsgi__(post("/echo"), chunked)
    declared = Protocol(body=b"y" * LIMIT)
    await bridge().__rsgi__(post("/echo", ("content-length", str(LIMIT))), declared)

    assert answer_of(chunked) == (200, b"x" * LIMIT)
    assert answer_of(declared) == (200, b"y" * LIMIT)


async def test_a_body_that_stops_coming_is_408_on_a_bridged_route(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(globals(), "ECHO_LIMITS", BodyLimits(10 * LIMIT, timeout=0.01))
    protocol = Protocol(chunks=[b"{"], stalls=True)

    await bridge().__rsgi__(post("/echo-within-limit"), protocol)

    status, body = answer_of(protocol)
    assert status == 408 and error_code(body) == "request_timeout"


@settings(max_examples=200, deadline=None)
@given(
    body=st.one_of(st.integers(0, 2 * LIMIT), st.integers(LIMIT - 2, LIMIT + 2)).flatmap(
        lambda size: st.binary(min_size=size, max_size=size)
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=2 * LIMIT), max_size=12),
    route=st.sampled_from(["/echo", "/echo-within-limit"]),
)
async def test_any_chunking_arrives_intact_within_the_limit_and_is_413_past_it(
    body: bytes, cuts: list[int], route: str
) -> None:
    """However a body is cut, the app gets it whole or the caller a 413; never a 500."""
    edges = sorted([0, len(body), *(cut for cut in cuts if cut < len(body))])
    chunks = [body[start:end] for start, end in itertools.pairwise(edges)]  # some empty
    protocol = Protocol(chunks=chunks)

    await bridge().__rsgi__(post(route), protocol)

    status, answered = answer_of(protocol)
    if len(body) <= LIMIT:
        assert (status, answered) == (200, body)
    else:
        assert status == 413 and error_code(answered) == "payload_too_large"
        read = [len(chunk) for chunk in chunks[: protocol.chunks_read]]
        assert sum(read[:-1]) <= LIMIT < sum(read)  # stopped at the chunk that passed it


async def test_the_gateways_own_api_refuses_a_chunked_body_past_max_body_bytes(
    tmp_path: Path,
) -> None:
    environ = {"MODELWAY_DATA_DIR": str(tmp_path)}
    config = parse_config("server:\n  max_body_bytes: 1000\n", environ)
    app = create_app(config, environ)
    protocol = Protocol(chunks=many_chunks(100))

    async with app.lifespan():
        json = ("content-type", "application/json")
        await RsgiGateway(app, config.server).__rsgi__(post("/chat/api/sessions", json), protocol)

    status, body = answer_of(protocol)
    assert status == 413 and error_code(body) == "payload_too_large"
    assert protocol.chunks_read == 11


async def test_a_chat_call_lets_go_of_its_disconnect_watch_when_answered(tmp_path: Path) -> None:
    # granian keeps a disconnect future until the connection closes: one left per call
    # on a keep-alive connection grew a worker by ~1 KB a request.
    environ = {"MODELWAY_DATA_DIR": str(tmp_path)}
    config = parse_config("", environ)
    app = create_app(config, environ)
    body = orjson.dumps({"model": "mock/echo", "messages": [{"role": "user", "content": "hi"}]})
    protocols = [Protocol(body=body) for _ in range(3)]
    async with app.lifespan():
        gateway = RsgiGateway(app, config.server)
        for protocol in protocols:
            json = ("content-type", "application/json")
            length = ("content-length", str(len(body)))
            await gateway.__rsgi__(post("/v1/chat/completions", json, length), protocol)
    for protocol in protocols:
        assert answer_of(protocol)[0] == 200
        assert protocol.watches and all(watch.cancelled() for watch in protocol.watches)
