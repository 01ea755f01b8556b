"""The reference relay's upstream clients: one pooled client each.

``aiohttp`` (a ``ClientSession``, what modelway uses), ``aiohttp-lean`` (aiohttp below the
session: its connector's pool and its C response parser, nothing else), ``httpx``, and the
Rust-backed async clients ``pyreqwest``, ``rnet`` and ``httpr`` (bench-only dependencies,
imported when chosen so the other relays' workers do not carry them).
``bench.upstream_clients`` compares them under the relay's work.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, Protocol

import aiohttp
import httpx
from aiohttp.client_reqrep import ClientRequest
from yarl import URL

JSON_HEADERS = {"content-type": "application/json", "authorization": "Bearer bench"}
#: Seconds a whole exchange may take (the longest bench stream lasts a few seconds).
TIMEOUT_SECONDS = 60


class UpstreamClient(Protocol):
    """Sends a chat body upstream over a pooled keep-alive connection."""

    async def post(self, url: str, body: bytes) -> tuple[int, bytes]:
        """POST ``body`` and return the status and the whole answer."""
        ...

    def stream(self, url: str, body: bytes) -> AsyncIterator[bytes]:
        """POST ``body`` and yield the answer's bytes as they arrive."""
        ...

    async def close(self) -> None:
        """Close the pool."""
        ...


class AiohttpUpstream:
    """aiohttp: one ``ClientSession`` with an unlimited keep-alive connector."""

    def __init__(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=None)
        self.session = aiohttp.ClientSession(connector=connector, headers=JSON_HEADERS)

    async def post(self, url: str, body: bytes) -> tuple[int, bytes]:
        async with self.session.post(url, data=body) as response:
            return response.status, await response.read()

    async def stream(self, url: str, body: bytes) -> AsyncIterator[bytes]:
        async with self.session.post(url, data=body) as response:
            async for chunk in response.content.iter_any():
                yield chunk

    async def close(self) -> None:
        await self.session.close()


class AiohttpLeanUpstream:
    """aiohttp below ``ClientSession``: the connector's pool, the request head written once per
    URL, the response read by the connection's own protocol (aiohttp's C parser).

    What the session adds and this skips, per request: merging default headers, the cookie
    jar, auth and proxy checks, a ``ClientRequest`` and a ``ClientResponse`` object, the
    total-timeout timer, traces, middlewares and the redirect loop. The connection goes back
    to the pool only once its answer was read to the end (the protocol knows whether it may
    be kept alive); an answer left unfinished closes it.
    """

    def __init__(self) -> None:
        self.connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=None)
        self.timeout = aiohttp.ClientTimeout(sock_connect=TIMEOUT_SECONDS)
        # Per URL: a request object the connector keys its pool on, and the request head.
        self.routes: dict[str, tuple[ClientRequest, bytes]] = {}

    def _route(self, url: str) -> tuple[ClientRequest, bytes]:
        route = self.routes.get(url)
        if route is None:
            parsed = URL(url)
            key = ClientRequest("POST", parsed, loop=asyncio.get_running_loop())
            lines = [
                f"POST {parsed.raw_path_qs} HTTP/1.1",
                f"Host: {parsed.host_port_subcomponent}",
            ]
            lines += [f"{name}: {value}" for name, value in JSON_HEADERS.items()]
            route = self.routes[url] = (key, ("\r\n".join(lines) + "\r\n").encode("latin-1"))
        return route

    async def _send(self, url: str, body: bytes) -> tuple[Any, int, aiohttp.StreamReader]:
        key, head = self._route(url)
        connection = await self.connector.connect(key, [], self.timeout)
        try:
            protocol = connection.protocol
            assert protocol is not None and connection.transport is not None
            protocol.set_response_params(read_until_eof=True)
            connection.transport.write(b"%sContent-Length: %d\r\n\r\n%s" % (head, len(body), body))
            message, payload = await protocol.read()
        except BaseException:
            connection.close()
            raise
        return connection, message.code, payload

    async def post(self, url: str, body: bytes) -> tuple[int, bytes]:
        connection, status, payload = await self._send(url, body)
        try:
            answer = await payload.read()
        except BaseException:
            connection.close()
            raise
        connection.release()
        return status, answer

    async def stream(self, url: str, body: bytes) -> AsyncIterator[bytes]:
        connection, _, payload = await self._send(url, body)
        try:
            while chunk := await payload.readany():
                yield chunk
        finally:
            if payload.is_eof():
                connection.release()
            else:
                connection.close()

    async def close(self) -> None:
        await self.connector.close()


class HttpxUpstream:
    """httpx: one ``AsyncClient`` with no pool limit."""

    def __init__(self) -> None:
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
        self.client = httpx.AsyncClient(
            limits=limits, headers=JSON_HEADERS, timeout=TIMEOUT_SECONDS
        )

    async def post(self, url: str, body: bytes) -> tuple[int, bytes]:
        response = await self.client.post(url, content=body)
        return response.status_code, response.content

    async def stream(self, url: str, body: bytes) -> AsyncIterator[bytes]:
        async with self.client.stream("POST", url, content=body) as response:
            async for chunk in response.aiter_raw():
                yield chunk

    async def close(self) -> None:
        await self.client.aclose()


class PyreqwestUpstream:
    """pyreqwest: reqwest (hyper, tokio) behind a native asyncio API; default runtime."""

    def __init__(self) -> None:
        from pyreqwest.client import ClientBuilder

        self.client = (
            ClientBuilder()
            .default_headers(JSON_HEADERS)
            .timeout(timedelta(seconds=TIMEOUT_SECONDS))
            .build()
        )

    async def post(self, url: str, body: bytes) -> tuple[int, bytes]:
        response = await self.client.post(url).body_bytes(body).build().send()
        return response.status, (await response.bytes()).to_bytes()

    async def stream(self, url: str, body: bytes) -> AsyncIterator[bytes]:
        # Its default (64 KiB) holds the response back until that much body has arrived or
        # the body ended: a whole short stream at once. 0 hands each read on as it comes.
        builder = self.client.post(url).body_bytes(body).streamed_read_buffer_limit(0)
        request = builder.build_streamed()
        async with request as response:
            reader = response.body_reader
            while (chunk := await reader.read_chunk()) is not None:
                yield chunk.to_bytes()

    async def close(self) -> None:
        await self.client.close()


class RnetUpstream:
    """rnet: wreq (hyper, tokio) behind a native asyncio API."""

    def __init__(self) -> None:
        import rnet

        self.client = rnet.Client(default_headers=JSON_HEADERS, timeout=TIMEOUT_SECONDS)

    async def post(self, url: str, body: bytes) -> tuple[int, bytes]:
        response = await self.client.post(url, body=body)
        async with response:
            return response.status, await response.bytes()

    async def stream(self, url: str, body: bytes) -> AsyncIterator[bytes]:
        response = await self.client.post(url, body=body)
        async with response, response.stream() as chunks:
            async for chunk in chunks:
                yield chunk

    async def close(self) -> None:
        return None  # rnet's client has no close; its pool goes with it


#: httpr's AsyncClient runs its blocking client on a thread pool, one thread per request in
#: flight (each stream's read holds one): sized for the bench's 200 concurrent streams.
HTTPR_THREADS = 256


class HttprUpstream:
    """httpr: a blocking reqwest client run on a thread pool behind an asyncio API."""

    def __init__(self) -> None:
        import httpr

        self.client = httpr.AsyncClient(
            headers=JSON_HEADERS,
            timeout=TIMEOUT_SECONDS,
            follow_redirects=False,
            cookie_store=False,
            max_concurrency=HTTPR_THREADS,
        )

    async def post(self, url: str, body: bytes) -> tuple[int, bytes]:
        response = await self.client.post(url, content=body)
        return response.status_code, response.content

    async def stream(self, url: str, body: bytes) -> AsyncIterator[bytes]:
        async with self.client.stream("POST", url, content=body) as response:
            async for chunk in response.aiter_bytes():
                yield chunk

    async def close(self) -> None:
        await self.client.aclose()


CLIENT_CLASSES: dict[str, type[UpstreamClient]] = {
    "aiohttp": AiohttpUpstream,
    "aiohttp-lean": AiohttpLeanUpstream,
    "httpx": HttpxUpstream,
    "pyreqwest": PyreqwestUpstream,
    "rnet": RnetUpstream,
    "httpr": HttprUpstream,
}
CLIENTS = tuple(CLIENT_CLASSES)


def upstream_client(name: str) -> UpstreamClient:
    """The client called ``name`` (one of ``CLIENTS``); build it inside a running loop."""
    found = CLIENT_CLASSES.get(name)
    if found is None:
        raise ValueError(f"unknown upstream client {name!r}: use one of {', '.join(CLIENTS)}")
    return found()
