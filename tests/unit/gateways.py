"""An in-process gateway for HTTP specs: the ASGI app through httpx, a throwaway store."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import NamedTuple

import httpx

from modelway.config import parse_config
from modelway.gateway.app import Gateway, create_app
from modelway.gateway.state import GatewayState
from modelway.providers.registry import adapter_for
from modelway.providers.transport import MockHandler, MockReply, MockTransport, UpstreamRequest
from modelway.providers.upstream import HttpProvider
from modelway.secrets import Secret

MASTER = "mw-master-key-for-the-in-process-gateway-0123"


class Setup(NamedTuple):
    app: Gateway
    http: httpx.AsyncClient
    state: GatewayState


def openai_upstream(request: UpstreamRequest) -> MockReply:
    """An OpenAI upstream that answers every chat with one short message (or its stream),
    and embeddings with one small vector an input."""
    body = json.loads(request.body or b"{}")
    if request.url.endswith("/embeddings"):
        inputs = body.get("input")
        count = len(inputs) if isinstance(inputs, list) else 1
        data = [{"index": n, "embedding": [0.5, -0.5]} for n in range(count)]
        return MockReply(200, json.dumps({"data": data, "model": body.get("model")}).encode())
    answer = {
        "id": "c1",
        "object": "chat.completion",
        "created": 0,
        "model": body.get("model"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "hi"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
    }
    if not body.get("stream"):
        return MockReply(200, json.dumps(answer).encode())
    chunk = {**answer, "object": "chat.completion.chunk"}
    chunk["choices"] = [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]
    sse = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode()
    return MockReply(200, sse, {"content-type": "text/event-stream"})


@asynccontextmanager
async def in_process_gateway(
    data_dir: Path,
    config: str = "",
    upstream: MockHandler = openai_upstream,
    *,
    clock: Callable[[], float] = time.time,
    base_url: str = "http://gateway",
) -> AsyncIterator[Setup]:
    """A gateway with a master key, ``config`` as its modelway.yaml and an OpenAI upstream
    (``upstream`` answers its requests in-process); ``clock`` for its admin sessions."""
    environ = {"MODELWAY_DATA_DIR": str(data_dir), "MODELWAY_MASTER_KEY": MASTER}
    app = create_app(parse_config(config, environ), environ, clock=clock)
    async with app.lifespan():
        state: GatewayState = app.state.gateway
        state.engine.router.backends["openai"] = HttpProvider(
            "openai",
            adapter_for("openai"),
            "http://upstream.test/v1",
            Secret("sk-upstream"),
            transport=MockTransport(upstream),
        )
        headers = {"authorization": f"Bearer {MASTER}"}
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=base_url, headers=headers
        ) as http:
            yield Setup(app, http, state)
