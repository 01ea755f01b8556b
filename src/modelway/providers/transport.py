"""Sending bytes to an upstream: the one boundary between modelway and an HTTP library.

``HttpProvider`` talks to a ``Transport`` (send a request, get a response whose body
can be read whole or as chunks), as httpx's client talks to its transports. The
gateway uses ``LeanAiohttpTransport`` (``lean_transport.py``: aiohttp's connector and parser
without the session, chosen by measurement: docs/benchmarks.md, "Upstream clients") or,
by ``server.upstream_client: aiohttp``, ``AiohttpTransport``;
tests use ``MockTransport``, which answers in-process. Library exceptions become
``modelway.errors`` here and nowhere else.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping
from typing import NamedTuple, Protocol
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver

from modelway.errors import ConnectError, ConnectionLost, ModelwayError, Timeout, UpstreamError
from modelway.providers.destinations import RefusedDestination, guarded_socket


class UpstreamRequest(NamedTuple):
    """What a transport sends."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes | None
    #: Seconds to connect.
    connect_timeout: float
    #: Seconds for the whole exchange, body included; None when the caller times the
    #: reads itself (streams: first token, stall and total are enforced per chunk).
    total_timeout: float | None = None


class UpstreamResponse(Protocol):
    """A response whose status and headers are known and whose body is still to come."""

    status: int
    headers: Mapping[str, str]

    async def read(self) -> bytes:
        """The whole body; the response is closed afterwards."""
        ...

    def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives."""
        ...

    async def aclose(self) -> None:
        """Stop reading; an unfinished body closes its connection (the upstream sees it)."""
        ...


class Transport(Protocol):
    """Sends one request at a time, pooling connections across them."""

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        """The response, once its status line and headers arrived.

        Raises ``ConnectError`` or ``Timeout`` when it never did.
        """
        ...

    async def aclose(self) -> None:
        """Close pooled connections."""
        ...


# --- aiohttp ---------------------------------------------------------------------------


def whole_answer_timeout(total: float | None) -> Timeout:
    """The error of an answer not whole within the total timeout, which it names."""
    limit = "" if total is None else f" ({total:g} s total)"
    return Timeout(f"upstream too slow: waited longer than allowed for the whole answer{limit}")


def connect_timeout(connect: float) -> Timeout:
    """The error of a connection not open within the connect timeout, which it names."""
    return Timeout(f"upstream too slow: waited longer than allowed to connect ({connect:g} s)")


class _AiohttpResponse:
    def __init__(self, response: aiohttp.ClientResponse, url: str, total: float | None) -> None:
        self._response = response
        self._url = url
        self._total = total
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except TimeoutError:  # aiohttp's total (no read timer is set: see send)
            raise whole_answer_timeout(self._total) from None
        except aiohttp.ClientError as exc:
            raise ConnectionLost(f"connection lost mid-answer ({type(exc).__name__})") from None
        finally:
            self._response.release()

    async def chunks(self) -> AsyncIterator[bytes]:
        content = self._response.content
        try:
            while True:
                chunk = await content.readany()
                if not chunk:
                    return
                yield chunk
        except TimeoutError:  # aiohttp's total (no read timer is set: see send)
            raise whole_answer_timeout(self._total) from None
        except aiohttp.ClientError as exc:
            raise ConnectionLost(f"connection lost mid-stream ({type(exc).__name__})") from None

    async def aclose(self) -> None:
        if self._response.content.at_eof():
            self._response.release()
        else:
            # Closing (not releasing) drops the connection, so the upstream stops at once.
            self._response.close()


def connection_failed(error: aiohttp.ClientConnectorError, url: str) -> ModelwayError:
    """What a connection aiohttp could not open becomes: refused by the destination guard
    (not retryable: asking again reaches the same address), or an unreachable upstream."""
    if isinstance(error.os_error, RefusedDestination):
        host = urlsplit(url).hostname
        return UpstreamError(f"refused to connect to {host}: {error.os_error}")
    return ConnectError(f"cannot reach upstream ({type(error).__name__})")


class AiohttpTransport:
    """A pooled ``aiohttp`` session, created on first use inside the running loop.

    ``refuse_link_local``: no connection to a link-local or metadata address, checked on
    the address each connection is opened to (``destinations.guarded_socket``), for a
    provider whose URL came from the connect dialog. ``resolver`` replaces aiohttp's.
    """

    def __init__(
        self, *, refuse_link_local: bool = False, resolver: AbstractResolver | None = None
    ) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple[float | None, float], aiohttp.ClientTimeout] = {}
        self._refuse_link_local = refuse_link_local
        self._resolver = resolver

    def _open_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=0,
                ttl_dns_cache=300,
                resolver=self._resolver,
                socket_factory=guarded_socket if self._refuse_link_local else None,
            )
            self._session = aiohttp.ClientSession(
                connector=connector, skip_auto_headers=("User-Agent",)
            )
        return self._session

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        # No per-read socket timer: it costs on every read and the caller times reads.
        limits = (request.total_timeout, request.connect_timeout)
        timeout = self._timeouts.get(limits)
        if timeout is None:  # a few distinct pairs per gateway (one per alias at most)
            timeout = self._timeouts[limits] = aiohttp.ClientTimeout(
                total=request.total_timeout, sock_connect=request.connect_timeout
            )
        try:
            response = await self._open_session().request(
                request.method,
                request.url,
                data=request.body,
                headers=request.headers,
                timeout=timeout,
            )
        except aiohttp.ConnectionTimeoutError:
            raise connect_timeout(request.connect_timeout) from None
        except TimeoutError:
            raise whole_answer_timeout(request.total_timeout) from None
        except aiohttp.ClientConnectorError as exc:
            raise connection_failed(exc, request.url) from None
        except aiohttp.ClientError as exc:
            raise ConnectError(f"cannot reach upstream ({type(exc).__name__})") from None
        return _AiohttpResponse(response, request.url, request.total_timeout)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


# --- in-process, for tests -------------------------------------------------------------


class MockReply(NamedTuple):
    """What a ``MockTransport`` handler answers: a whole body or chunks to stream."""

    status: int = 200
    body: bytes | AsyncIterable[bytes] = b""
    headers: Mapping[str, str] = {}


MockHandler = Callable[[UpstreamRequest], MockReply | Awaitable[MockReply]]


class _MockResponse:
    def __init__(self, reply: MockReply) -> None:
        self.status = reply.status
        self.headers: Mapping[str, str] = dict(reply.headers)
        self._body = reply.body
        self.closed = False

    async def read(self) -> bytes:
        if isinstance(self._body, bytes):
            return self._body
        return b"".join([chunk async for chunk in self.chunks()])

    async def chunks(self) -> AsyncIterator[bytes]:
        if isinstance(self._body, bytes):
            yield self._body
            return
        async for chunk in self._body:
            if self.closed:
                return
            yield chunk

    async def aclose(self) -> None:
        self.closed = True
        close = getattr(self._body, "aclose", None)
        if close is not None:
            await close()


class MockTransport:
    """Answers every request with ``handler`` in-process, like ``httpx.MockTransport``."""

    def __init__(self, handler: MockHandler) -> None:
        self._handler = handler
        self.responses: list[_MockResponse] = []

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        reply = self._handler(request)
        if inspect.isawaitable(reply):
            reply = await reply
        assert isinstance(reply, MockReply)
        response = _MockResponse(reply)
        self.responses.append(response)
        return response

    async def aclose(self) -> None:
        return None
