"""``LeanAiohttpTransport`` keeps the transport contract: answers whole or streamed, statuses as
they came, one pooled connection reused, timeouts and unreachable upstreams as modelway errors,
and a cancelled or abandoned answer closes its upstream connection."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Mapping

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from modelway.config import parse_config
from modelway.errors import ConnectError, Timeout, UpstreamError
from modelway.providers.lean_transport import LeanAiohttpTransport
from modelway.providers.registry import transport_for
from modelway.providers.transport import AiohttpTransport, UpstreamRequest
from tests.polling import eventually


class Upstream:
    """An in-process upstream that notes each caller's port and each stream the caller left."""

    def __init__(self) -> None:
        self.peers: list[int] = []
        self.left = 0
        self.headers: list[Mapping[str, str]] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/answer", self.answer)
        app.router.add_post("/v1/stream", self.stream)
        app.router.add_post("/v1/stall", self.stall)
        app.router.add_post("/v1/gzip", self.gzipped)
        app.router.add_post("/v1/once", self.once)
        app.router.add_post("/v1/half", self.half)
        return app

    def _note(self, request: web.Request) -> None:
        self.peers.append(request.transport.get_extra_info("peername")[1])  # type: ignore[union-attr]
        self.headers.append(request.headers.copy())

    async def answer(self, request: web.Request) -> web.Response:
        self._note(request)
        body = await request.read()
        status = int(request.headers.get("x-status", "200"))
        return web.Response(status=status, body=b"echo:" + body, headers={"x-up": "1"})

    async def stream(self, request: web.Request) -> web.StreamResponse:
        self._note(request)
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        try:
            for index in range(50):
                await response.write(b"data: %d\n\n" % index)
                await asyncio.sleep(0.02 if index else 0)
        except (ConnectionError, asyncio.CancelledError):
            self.left += 1
            raise
        return response

    async def gzipped(self, request: web.Request) -> web.Response:
        self._note(request)
        body = b'{"big":"' + b"z" * 5000 + b'"}'
        return web.Response(body=gzip.compress(body), headers={"content-encoding": "gzip"})

    async def once(self, request: web.Request) -> web.Response:
        """Answers, then closes the connection (``Connection: close``)."""
        self._note(request)
        response = web.Response(body=b"bye")
        response.force_close()
        return response

    async def half(self, request: web.Request) -> web.StreamResponse:
        """Sends its head and half its body, then stalls."""
        self._note(request)
        response = web.StreamResponse(headers={"content-length": "4"})
        await response.prepare(request)
        await response.write(b"ha")
        await asyncio.sleep(30)
        return response

    async def stall(self, request: web.Request) -> web.Response:
        self._note(request)
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            self.left += 1
            raise
        return web.Response(body=b"late")


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[Upstream, str]]:
    state = Upstream()
    server = TestServer(state.app(), host="127.0.0.1")
    await server.start_server()
    try:
        yield state, f"http://127.0.0.1:{server.port}"
    finally:
        await server.close()


@pytest.fixture
async def transport() -> AsyncIterator[LeanAiohttpTransport]:
    lean = LeanAiohttpTransport()
    try:
        yield lean
    finally:
        await lean.aclose()


def post(url: str, body: bytes = b"{}", **headers: str) -> UpstreamRequest:
    return UpstreamRequest("POST", url, {"authorization": "Bearer k", **headers}, body, 5.0, 10.0)


async def test_answers_are_read_whole_and_one_connection_is_reused(
    upstream: tuple[Upstream, str], transport: LeanAiohttpTransport
) -> None:
    state, base = upstream
    for body in (b'{"a":1}', b'{"b":2}', b'{"c":3}'):
        response = await transport.send(post(f"{base}/v1/answer", body))
        assert response.status == 200 and response.headers["x-up"] == "1"
        assert await response.read() == b"echo:" + body
    assert len(set(state.peers)) == 1
    assert state.headers[0]["authorization"] == "Bearer k"
    assert state.headers[0]["Content-Length"] == "7"


async def test_a_gzipped_answer_is_read_decompressed_and_asks_for_it(
    upstream: tuple[Upstream, str], transport: LeanAiohttpTransport
) -> None:
    state, base = upstream
    response = await transport.send(post(f"{base}/v1/gzip"))
    assert await response.read() == b'{"big":"' + b"z" * 5000 + b'"}'
    assert "gzip" in state.headers[0]["Accept-Encoding"]


async def test_an_upstream_closing_after_each_answer_gets_a_fresh_connection(
    upstream: tuple[Upstream, str], transport: LeanAiohttpTransport
) -> None:
    state, base = upstream
    for _ in range(3):
        response = await transport.send(post(f"{base}/v1/once"))
        assert response.status == 200 and await response.read() == b"bye"
    assert len(set(state.peers)) == 3  # never a write into a connection it had closed


async def test_an_error_status_is_an_answer_with_its_body(
    upstream: tuple[Upstream, str], transport: LeanAiohttpTransport
) -> None:
    _, base = upstream
    response = await transport.send(post(f"{base}/v1/answer", b"x", **{"x-status": "429"}))
    assert response.status == 429 and await response.read() == b"echo:x"


async def test_a_stream_arrives_in_chunks_and_leaving_it_closes_the_connection(
    upstream: tuple[Upstream, str], transport: LeanAiohttpTransport
) -> None:
    state, base = upstream
    response = await transport.send(post(f"{base}/v1/stream"))
    chunks = response.chunks()
    assert (await anext(chunks)).startswith(b"data: 0")
    await response.aclose()
    await eventually(lambda: state.left == 1)
    answer = await transport.send(post(f"{base}/v1/answer"))
    await answer.read()
    assert state.peers[1] != state.peers[0]  # the abandoned connection was not pooled


async def test_a_cancelled_call_closes_its_upstream_connection(
    upstream: tuple[Upstream, str], transport: LeanAiohttpTransport
) -> None:
    state, base = upstream
    call = asyncio.ensure_future(transport.send(post(f"{base}/v1/stall")))
    await eventually(lambda: len(state.peers) == 1)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await eventually(lambda: state.left == 1)


async def test_the_total_timeout_covers_the_answer(
    upstream: tuple[Upstream, str], transport: LeanAiohttpTransport
) -> None:
    _, base = upstream
    request = UpstreamRequest("POST", f"{base}/v1/stall", {}, b"{}", 5.0, total_timeout=0.2)
    # It said "upstream did not answer in time", naming no limit.
    with pytest.raises(Timeout, match=r"longer than allowed for the whole answer \(0.2 s total\)"):
        await transport.send(request)


async def test_aiohttps_transport_names_the_total_timeout_too(
    upstream: tuple[Upstream, str],
) -> None:
    _, base = upstream
    request = UpstreamRequest("POST", f"{base}/v1/stall", {}, b"{}", 5.0, total_timeout=0.2)
    aiohttp_transport = AiohttpTransport()
    try:
        with pytest.raises(Timeout, match=r"the whole answer \(0.2 s total\)"):
            await aiohttp_transport.send(request)
    finally:
        await aiohttp_transport.aclose()


async def test_the_total_timeout_covers_a_body_that_stops_after_its_head(
    upstream: tuple[Upstream, str], transport: LeanAiohttpTransport
) -> None:
    _, base = upstream
    request = UpstreamRequest("POST", f"{base}/v1/half", {}, b"{}", 5.0, total_timeout=0.5)
    response = await transport.send(request)
    assert response.status == 200
    async with asyncio.timeout(10):  # bounds the test should the deadline not hold
        with pytest.raises(Timeout, match=r"the whole answer \(0.5 s total\)"):
            await response.read()


async def test_an_unreachable_upstream_is_a_connect_error(
    transport: LeanAiohttpTransport,
) -> None:
    with pytest.raises(ConnectError):
        await transport.send(post("http://127.0.0.1:1/v1/answer"))


async def test_a_header_with_a_line_break_is_never_sent(
    upstream: tuple[Upstream, str], transport: LeanAiohttpTransport
) -> None:
    _, base = upstream
    with pytest.raises(UpstreamError, match="line break"):
        await transport.send(post(f"{base}/v1/answer", **{"x-evil": "a\r\nx-injected: 1"}))


async def test_a_connected_provider_is_refused_a_link_local_address() -> None:
    lean = LeanAiohttpTransport(refuse_link_local=True)
    request = UpstreamRequest("POST", "http://169.254.169.254/latest/", {}, b"{}", 5.0)
    try:
        with pytest.raises(UpstreamError, match="refused to connect") as refused:
            await lean.send(request)
    finally:
        await lean.aclose()
    assert not refused.value.retryable


def test_server_upstream_client_selects_the_transport_lean_by_default() -> None:
    default = parse_config("", {}).server.upstream_client
    assert default == "aiohttp-lean"
    assert isinstance(transport_for(default, refuse_link_local=False), LeanAiohttpTransport)
    session = parse_config("server: {upstream_client: aiohttp}", {}).server.upstream_client
    assert isinstance(transport_for(session, refuse_link_local=False), AiohttpTransport)
