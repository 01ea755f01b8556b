"""The gateway's own CPU per request, in-process: the reference relay, open mode, the pipeline.

No HTTP server and no load generator share the CPU here: the ASGI app is called directly
(as uvicorn would call it) by ``concurrency`` tasks on one uvloop, against a real nginx
upstream through the gateway's pooled aiohttp client. The reference relay
(``bench/relay.py``) is called the same way, so its figure is what the least a relay can
do costs without any server. Rounds alternate between the apps and the medians are
compared, so drift on a shared machine hits all alike.
``--profile`` runs cProfile over the pipeline rounds and prints the top functions.

    python -m bench.profile_pipeline --requests 4000 --rounds 5 [--profile pipeline.prof]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import secrets
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TextIO

import uvloop
from starlette.applications import Starlette
from starlette.types import Message, Receive, Send

from bench.pipeline import create_virtual_key
from bench.processes import run_directory
from bench.upstream_nginx import nginx_server
from modelway.config import LoggingSettings, parse_config
from modelway.gateway.app import Gateway, create_app
from modelway.logs import configure_logging

BODY = (
    b'{"model":"openai/gpt-4o-mini","messages":[{"role":"system","content":"You are terse."},'
    b'{"role":"user","content":"Say hello in one short sentence."}],"max_tokens":32}'
)


def http_scope(app: Gateway, key: str | None) -> dict[str, Any]:
    """The scope uvicorn builds for wrk's POST (the app fills in ``app`` and ``state``)."""
    headers = [
        (b"host", b"127.0.0.1"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(BODY)).encode()),
    ]
    if key is not None:
        headers.append((b"authorization", b"Bearer " + key.encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8080),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "method": "POST",
        "root_path": "",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "query_string": b"",
        "headers": headers,
    }


App = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]


async def call(app: App, scope: dict[str, Any]) -> int:
    """One request through the ASGI app; its status."""
    sent = False
    status = 0

    async def receive() -> Message:
        nonlocal sent
        if sent:
            await asyncio.Event().wait()  # a client that stays: never disconnects
        sent = True
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app({**scope, "state": {}}, receive, send)
    return status


async def load(app: App, key: str | None, requests: int, concurrency: int) -> float:
    """``requests`` calls by ``concurrency`` tasks; CPU seconds of this process per call."""
    scope = http_scope(app, key)
    per_task = requests // concurrency

    async def worker() -> None:
        for _ in range(per_task):
            status = await call(app, scope)
            if status != 200:
                raise RuntimeError(f"the gateway answered {status}")

    started = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (time.process_time() - started) / (per_task * concurrency)


def reference_relay(upstream: str) -> Starlette:
    """``bench/relay.py``'s app, configured for ``upstream`` (it reads the environment)."""
    os.environ["RELAY_UPSTREAM"] = upstream
    os.environ["RELAY_CLIENT"] = "aiohttp"
    from bench import relay

    return relay.app


#: The full pipeline with metrics and the per-request log line off: what they cost.
QUIET = "metrics:\n  enabled: false\nlogging:\n  requests: false\n"


def gateway(upstream: str, data_dir: Path, master_key: str | None, config: str = "") -> Gateway:
    environ = {
        "OPENAI_BASE_URL": upstream,
        "OPENAI_API_KEY": "x",
        "MODELWAY_DATA_DIR": str(data_dir),
    }
    if master_key is not None:
        environ["MODELWAY_MASTER_KEY"] = master_key
    return create_app(parse_config(config, environ), environ)


async def compare(
    upstream: str,
    run_dir: Path,
    keys: tuple[str, str],
    settings: argparse.Namespace,
) -> None:
    """Alternate rounds on both apps; print CPU per request (and the profile if asked)."""
    requests, concurrency, profile = settings.requests, settings.concurrency, settings.profile
    reference = reference_relay(upstream)
    open_app = gateway(upstream, run_dir / "open", None)
    master = "sk-master-" + secrets.token_hex(8)
    pipeline_app = gateway(upstream, run_dir / "pipeline", master, settings.pipeline_config)
    quiet_app = gateway(upstream, run_dir / "quiet", master, QUIET)
    key, quiet_key = keys
    # As a worker logs: JSON lines (to nowhere here, the formatting is what costs).
    devnull = stack_devnull()
    configure_logging(LoggingSettings(format="json"), {}, devnull)
    profiler = cProfile.Profile() if profile else None
    cpu: dict[str, list[float]] = {
        "reference relay": [],
        "open mode": [],
        "full pipeline": [],
        "quiet pipeline": [],
    }
    async with (
        reference.router.lifespan_context(reference),
        open_app.lifespan(),
        pipeline_app.lifespan(),
        quiet_app.lifespan(),
    ):
        await load(reference, None, requests // 4, concurrency)  # warm-up
        await load(open_app, None, requests // 4, concurrency)
        await load(pipeline_app, key, requests // 4, concurrency)
        await load(quiet_app, quiet_key, requests // 4, concurrency)
        for _ in range(settings.rounds):
            cpu["reference relay"].append(await load(reference, None, requests, concurrency))
            cpu["open mode"].append(await load(open_app, None, requests, concurrency))
            if profiler is not None:
                profiler.enable()
            cpu["full pipeline"].append(await load(pipeline_app, key, requests, concurrency))
            if profiler is not None:
                profiler.disable()
            cpu["quiet pipeline"].append(await load(quiet_app, quiet_key, requests, concurrency))
    for name, values in cpu.items():
        runs = ", ".join(f"{value * 1e6:.0f}" for value in values)
        print(f"{name:>15}: {statistics.median(values) * 1e6:6.1f} µs CPU per request ({runs})")
    reference_cpu = statistics.median(cpu["reference relay"])
    for name in ("open mode", "full pipeline", "quiet pipeline"):
        added = statistics.median(cpu[name]) - reference_cpu
        print(f"{name:>15}: {added * 1e6:+6.1f} µs per request over the reference relay")
    observed = statistics.median(cpu["full pipeline"]) - statistics.median(cpu["quiet pipeline"])
    print(f"metrics and JSON request logs: {observed * 1e6:+.1f} µs per request")
    if profiler is not None and profile is not None:
        profiler.dump_stats(profile)
        pstats.Stats(str(profile)).sort_stats("tottime").print_stats(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=4000, help="per round and app")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", type=Path, help="cProfile the pipeline rounds into this file")
    parser.add_argument(
        "--pipeline-config", default="", help="modelway.yaml text for the full pipeline app"
    )
    args = parser.parse_args()
    with run_directory("modelway-profile-") as run:
        run_dir = run.path
        keys = (create_virtual_key(run_dir / "pipeline"), create_virtual_key(run_dir / "quiet"))
        with nginx_server(run_dir) as nginx:
            uvloop.run(compare(f"{nginx.url}/v1", run_dir, keys, args))


def stack_devnull() -> TextIO:
    """``/dev/null`` as a text stream, open for the rest of the run."""
    return open(os.devnull, "w")


if __name__ == "__main__":
    main()
