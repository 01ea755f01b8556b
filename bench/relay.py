"""The reference relay: the least a Python relay can do (see /work/shared/BENCHMARKS.md).

A Starlette app that parses the body with orjson, rewrites ``model`` (drops a
``provider/`` prefix), forwards with one pooled upstream session and re-encodes the answer
with orjson; ``stream: true`` answers are passed through chunk by chunk. No features.

Run a variant (the server/client comparison)::

    python -m bench.relay --server granian-asgi --client aiohttp --port 8100 \
        --upstream http://127.0.0.1:8090/v1 [--workers 2]

``RELAY_UPSTREAM`` (base URL ending in /v1) and ``RELAY_CLIENT`` configure the app, because
each server imports it by name in its own worker process.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from bench.relay_clients import CLIENTS, UpstreamClient, upstream_client

SERVERS = ("granian-asgi", "granian-rsgi", "uvicorn")


def upstream_model(model: Any) -> Any:
    """The model name the upstream knows: ``openai/gpt-4o-mini`` becomes ``gpt-4o-mini``."""
    if isinstance(model, str):
        return model.partition("/")[2] or model
    return model


def rewrite_body(raw: bytes) -> tuple[bytes, bool]:
    """The body to send upstream and whether the caller asked for a stream."""
    payload = orjson.loads(raw)
    payload["model"] = upstream_model(payload.get("model"))
    return orjson.dumps(payload), payload.get("stream") is True


def reencode(answer: bytes) -> bytes:
    """Decode and re-encode the upstream's answer, as a relay that reads usage would."""
    return orjson.dumps(orjson.loads(answer))


def chat_url() -> str:
    return os.environ["RELAY_UPSTREAM"].rstrip("/") + "/chat/completions"


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    client = upstream_client(os.environ.get("RELAY_CLIENT", "aiohttp"))
    app.state.client = client
    app.state.url = chat_url()
    try:
        yield
    finally:
        await client.close()


async def chat_completions(request: Request) -> Response:
    """Relay one chat completion."""
    client: UpstreamClient = request.app.state.client
    body, stream = rewrite_body(await request.body())
    if stream:
        return StreamingResponse(
            client.stream(request.app.state.url, body), media_type="text/event-stream"
        )
    status, answer = await client.post(request.app.state.url, body)
    return Response(reencode(answer), status_code=status, media_type="application/json")


async def health(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


app = Starlette(
    routes=[
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
    ],
    lifespan=lifespan,
)


def server_command(server: str, port: int, workers: int = 1) -> list[str]:
    """The command line that serves the relay with ``server`` and ``workers`` on ``port``."""
    bin_dir = Path(sys.executable).parent
    if server == "uvicorn":
        return [
            str(bin_dir / "uvicorn"),
            "bench.relay:app",
            *("--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)),
            *("--loop", "uvloop", "--http", "httptools", "--log-level", "warning"),
            "--no-access-log",
        ]
    if server not in ("granian-asgi", "granian-rsgi"):
        raise ValueError(f"unknown server {server!r}: use one of {', '.join(SERVERS)}")
    interface = server.removeprefix("granian-")
    target = "bench.relay:app" if interface == "asgi" else "bench.relay_rsgi:app"
    return [
        str(bin_dir / "granian"),
        *("--interface", interface, "--loop", "uvloop", "--workers", str(workers), "--http", "1"),
        *("--host", "127.0.0.1", "--port", str(port), "--no-ws", "--log-level", "warning"),
        target,
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the reference relay.")
    parser.add_argument("--server", choices=SERVERS, default="granian-asgi")
    parser.add_argument("--client", choices=CLIENTS, default="aiohttp")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--upstream", required=True, help="base URL ending in /v1")
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    args = parser.parse_args()
    os.environ["RELAY_UPSTREAM"] = args.upstream
    os.environ["RELAY_CLIENT"] = args.client
    root = str(Path(__file__).resolve().parent.parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    command = server_command(args.server, args.port, args.workers)
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
