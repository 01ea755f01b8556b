"""The reference relay as a bare RSGI handler for granian: the same work, no ASGI layer.

Configured like ``bench.relay`` (``RELAY_UPSTREAM``, ``RELAY_CLIENT``); the pooled client
is built on the first request, inside the worker's running loop.
"""

from __future__ import annotations

import os
from typing import Any

from bench.relay import chat_url, reencode, rewrite_body
from bench.relay_clients import UpstreamClient, upstream_client

JSON = [("content-type", "application/json")]
EVENT_STREAM = [("content-type", "text/event-stream"), ("cache-control", "no-cache")]


class RsgiRelay:
    """``POST /v1/chat/completions`` relayed; ``GET /health`` answers; anything else is 404."""

    def __init__(self) -> None:
        self.client: UpstreamClient | None = None
        self.url = ""

    def _client(self) -> UpstreamClient:
        if self.client is None:
            self.client = upstream_client(os.environ.get("RELAY_CLIENT", "aiohttp"))
            self.url = chat_url()
        return self.client

    async def __call__(self, scope: Any, protocol: Any) -> None:
        if scope.path == "/v1/chat/completions" and scope.method == "POST":
            await self._chat(protocol)
        elif scope.path == "/health":
            protocol.response_bytes(200, JSON, b'{"status":"ok"}')
        else:
            protocol.response_bytes(404, JSON, b'{"error":"not found"}')

    async def _chat(self, protocol: Any) -> None:
        client = self._client()
        body, stream = rewrite_body(await protocol())
        if stream:
            transport = protocol.response_stream(200, EVENT_STREAM)
            async for chunk in client.stream(self.url, body):
                await transport.send_bytes(chunk)
            return
        status, answer = await client.post(self.url, body)
        protocol.response_bytes(status, JSON, reencode(answer))


app = RsgiRelay()
