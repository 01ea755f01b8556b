"""The reference relay's upstream clients: one pooled session each, aiohttp or httpx."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

import aiohttp
import httpx

JSON_HEADERS = {"content-type": "application/json", "authorization": "Bearer bench"}


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


class HttpxUpstream:
    """httpx: one ``AsyncClient`` with no pool limit."""

    def __init__(self) -> None:
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
        self.client = httpx.AsyncClient(limits=limits, headers=JSON_HEADERS, timeout=60)

    async def post(self, url: str, body: bytes) -> tuple[int, bytes]:
        response = await self.client.post(url, content=body)
        return response.status_code, response.content

    async def stream(self, url: str, body: bytes) -> AsyncIterator[bytes]:
        async with self.client.stream("POST", url, content=body) as response:
            async for chunk in response.aiter_raw():
                yield chunk

    async def close(self) -> None:
        await self.client.aclose()


def upstream_client(name: str) -> UpstreamClient:
    """The client called ``name`` (``aiohttp`` or ``httpx``); build it inside a running loop."""
    if name == "aiohttp":
        return AiohttpUpstream()
    if name == "httpx":
        return HttpxUpstream()
    raise ValueError(f"unknown upstream client {name!r}: use aiohttp or httpx")
