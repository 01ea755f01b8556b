"""aiohttp below ``ClientSession``: its connector's pool and its C response parser, nothing else.

The gateway's default transport (``server.upstream_client: aiohttp-lean``; ``aiohttp``
selects ``AiohttpTransport``, the session). Chosen by measurement (docs/benchmarks.md,
"Upstream clients"): under the reference relay's work it costs about half the CPU per
request of a ``ClientSession``, which per request merges default headers, consults a
cookie jar, checks auth and proxies, builds a ``ClientRequest`` and a ``ClientResponse``,
arms a timer and runs the redirect loop — none of which a gateway calling an API with
fixed headers needs.

What it keeps from aiohttp: ``TCPConnector`` (keep-alive pool, DNS cache, TLS, the
destination guard's socket factory) and the connection's ``ResponseHandler`` (parsing,
chunked bodies, decompression, a lost connection raised to the reader). The request head
is written here, once per request, in one ``write`` with the body. A connection returns
to the pool only after its answer was read to the end (the protocol knows whether the
upstream allows keep-alive); an answer left unfinished — a cancelled call, a caller that
hung up — closes its connection, so the upstream sees it at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver
from aiohttp.client_reqrep import ClientRequest
from yarl import URL

from modelway.deadlines import deadline_at
from modelway.errors import ConnectError, ConnectionLost, UpstreamError
from modelway.providers.destinations import guarded_socket
from modelway.providers.transport import (
    UpstreamRequest,
    UpstreamResponse,
    connect_timeout,
    connection_failed,
    whole_answer_timeout,
)

#: What a ``ClientSession`` sends unless told otherwise (its User-Agent is skipped, as in
#: ``AiohttpTransport``): the upstream answers the same way to either transport.
_AUTO_HEADERS = {"accept": "*/*", "accept-encoding": "gzip, deflate"}
#: Methods a reused connection the upstream had closed may be retried on (as the session).
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})


class _Route:
    """What every request to one URL shares: the pool key and the head's first lines."""

    __slots__ = ("key", "start")

    def __init__(self, url: str, loop: asyncio.AbstractEventLoop) -> None:
        parsed = URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise UpstreamError(f"not an http(s) URL: {url}")
        # The connector reads only the pool key, host, port and TLS settings from it.
        self.key = ClientRequest("GET", parsed, loop=loop)
        self.start = f" {parsed.raw_path_qs} HTTP/1.1\r\nHost: {parsed.host_port_subcomponent}\r\n"


def _head(method: str, route: _Route, headers: Mapping[str, str], length: int | None) -> bytes:
    lines = [method, route.start]
    for name, value in headers.items():
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            raise UpstreamError(f"header {name!r} holds a line break")
        lines.append(f"{name}: {value}\r\n")
    lowered = {name.lower() for name in headers}
    for name, value in _AUTO_HEADERS.items():
        if name not in lowered:
            lines.append(f"{name}: {value}\r\n")
    if length is not None:
        lines.append(f"Content-Length: {length}\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("latin-1")


class _LeanResponse:
    def __init__(
        self,
        connection: Any,
        message: Any,
        payload: aiohttp.StreamReader,
        deadline: float | None,
        total: float | None,
    ) -> None:
        self._connection = connection
        self._payload = payload
        self._deadline = deadline
        #: The total timeout the deadline came from, named when it passes.
        self._total = total
        self.status: int = message.code
        self.headers: Mapping[str, str] = message.headers

    def _finish(self) -> None:
        if self._payload.is_eof():
            self._connection.release()
        else:
            # Closing (not releasing) drops the connection, so the upstream stops at once.
            self._connection.close()

    async def read(self) -> bytes:
        payload = self._payload
        try:
            if payload.is_eof():  # the whole answer came with its head: read without waiting
                return await payload.read()
            async with deadline_at(self._deadline):
                return await payload.read()
        except TimeoutError:
            raise whole_answer_timeout(self._total) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise ConnectionLost(f"connection lost mid-answer ({type(exc).__name__})") from None
        finally:
            self._finish()

    async def chunks(self) -> AsyncIterator[bytes]:
        payload = self._payload
        try:
            while True:
                if self._deadline is None:
                    chunk = await payload.readany()
                else:
                    async with deadline_at(self._deadline):
                        chunk = await payload.readany()
                if not chunk:
                    return
                yield chunk
        except TimeoutError:  # only a deadline times these reads: the total's
            raise whole_answer_timeout(self._total) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise ConnectionLost(f"connection lost mid-stream ({type(exc).__name__})") from None

    async def aclose(self) -> None:
        self._finish()


class LeanAiohttpTransport:
    """aiohttp's connector and response parser without ``ClientSession``; the pool is created
    on first use inside the running loop.

    ``refuse_link_local`` and ``resolver`` as for ``AiohttpTransport``.
    """

    def __init__(
        self, *, refuse_link_local: bool = False, resolver: AbstractResolver | None = None
    ) -> None:
        self._connector: aiohttp.TCPConnector | None = None
        self._routes: dict[str, _Route] = {}
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}
        self._refuse_link_local = refuse_link_local
        self._resolver = resolver

    def _open_connector(self) -> aiohttp.TCPConnector:
        if self._connector is None or self._connector.closed:
            self._connector = aiohttp.TCPConnector(
                limit=0,
                ttl_dns_cache=300,
                resolver=self._resolver,
                socket_factory=guarded_socket if self._refuse_link_local else None,
            )
        return self._connector

    def _route(self, url: str) -> _Route:
        route = self._routes.get(url)
        if route is None:
            if len(self._routes) > 1024:  # URLs carrying a model name or query: bounded
                self._routes.clear()
            route = self._routes[url] = _Route(url, asyncio.get_running_loop())
        return route

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        loop = asyncio.get_running_loop()
        deadline = None if request.total_timeout is None else loop.time() + request.total_timeout
        timeout = self._timeouts.get(request.connect_timeout)
        if timeout is None:  # a few distinct values per gateway
            timeout = self._timeouts[request.connect_timeout] = aiohttp.ClientTimeout(
                sock_connect=request.connect_timeout
            )
        route = self._route(request.url)
        body = request.body
        method = request.method.upper()
        head = _head(method, route, request.headers, None if body is None else len(body))
        data = head + body if body else head
        attempts = 2 if method in _IDEMPOTENT else 1
        for attempt in range(attempts):
            try:
                async with deadline_at(deadline):
                    return await self._exchange(
                        route, timeout, method, data, deadline, request.total_timeout
                    )
            except aiohttp.ConnectionTimeoutError:
                raise connect_timeout(request.connect_timeout) from None
            except TimeoutError:
                raise whole_answer_timeout(request.total_timeout) from None
            except aiohttp.ClientConnectorError as exc:
                raise connection_failed(exc, request.url) from None
            except aiohttp.ServerDisconnectedError as exc:
                if attempt + 1 < attempts:
                    continue
                raise ConnectError(f"cannot reach upstream ({type(exc).__name__})") from None
            except (aiohttp.ClientError, OSError) as exc:
                raise ConnectError(f"cannot reach upstream ({type(exc).__name__})") from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _exchange(
        self,
        route: _Route,
        limits: aiohttp.ClientTimeout,
        method: str,
        data: bytes,
        deadline: float | None,
        total: float | None,
    ) -> _LeanResponse:
        connection = await self._open_connector().connect(route.key, [], limits)
        try:
            protocol = connection.protocol
            transport = connection.transport
            if protocol is None or transport is None:
                raise aiohttp.ServerDisconnectedError()
            protocol.set_response_params(skip_payload=method == "HEAD", read_until_eof=True)
            transport.write(data)
            while True:
                message, payload = await protocol.read()
                # An interim 1xx answer (100 Continue, 103 Early Hints) precedes the real one.
                if not 100 <= message.code < 200 or message.code == 101:
                    break
        except BaseException:
            connection.close()
            raise
        return _LeanResponse(connection, message, payload, deadline, total)

    async def aclose(self) -> None:
        if self._connector is not None:
            await self._connector.close()
            self._connector = None
