"""The RSGI side of the gateway: the ASGI bridge and the body reader, against a stand-in
for granian's protocol object (the real one is exercised end to end by every integration
test, since ``modelway serve`` runs on it)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from modelway.errors import PayloadTooLarge
from modelway.gateway.rsgi import Receive, Send, asgi_scope, read_body


class Headers:
    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs

    def get(self, key: str, default: None = None) -> str | None:
        return next((v for k, v in self._pairs if k == key), default)

    def items(self) -> list[tuple[str, str]]:
        return list(self._pairs)


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
            raise RuntimeError("protocol closed")
        self.sent.append(data)


@dataclass
class Protocol:
    body: bytes = b""
    chunks: list[bytes] = field(default_factory=list)
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)
    answered: tuple[int, list[tuple[str, str]], bytes] | None = None
    stream: Stream | None = None

    async def __call__(self) -> bytes:
        return self.body

    def __aiter__(self) -> AsyncIterator[bytes]:
        async def chunks() -> AsyncIterator[bytes]:
            for chunk in self.chunks:
                yield chunk

        return chunks()

    async def client_disconnect(self) -> None:
        await self.disconnected.wait()

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


async def test_receive_gives_the_body_once_then_waits_for_the_client_to_leave() -> None:
    protocol = Protocol(body=b'{"a":1}')
    receive = Receive(protocol)

    assert await receive() == {"type": "http.request", "body": b'{"a":1}', "more_body": False}
    waiting = asyncio.create_task(receive())
    await asyncio.sleep(0)
    assert not waiting.done()
    protocol.disconnected.set()
    assert await waiting == {"type": "http.disconnect"}


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
        await read_body(protocol, Headers([("content-length", "100")]), limit=10)
    assert await read_body(protocol, Headers([("content-length", "100")]), limit=100) == (
        b"x" * 100
    )


async def test_a_chunked_body_is_refused_once_it_passes_the_limit() -> None:
    chunks: Any = [b"12345", b"67890", b"abc"]

    assert await read_body(Protocol(chunks=chunks), Headers([]), limit=13) == b"1234567890abc"
    with pytest.raises(PayloadTooLarge):
        await read_body(Protocol(chunks=chunks), Headers([]), limit=12)


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
