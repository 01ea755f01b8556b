"""modelway's own CPU per chat call: the RSGI handler in a loop, no server and no network.

``RsgiGateway.__rsgi__`` — the handler granian calls for every chat request — is called
by 32 tasks on one uvloop with a stand-in for granian's protocol object (the body comes
after one suspension, the answer is taken) and an upstream that answers a whole
OpenAI-format body after one suspension: the lean transport's own work (request head,
deadline, response) runs, only its socket is left out (``NoNetwork``). What is measured
is then the gateway's Python alone — key, limits, route, relay, usage record and its
insert (the store's thread counts: this is the process's CPU), metrics and request lines
— the part of a served call that is modelway's, not granian's, the kernel's or the
upstream's. The garbage collector is settled as in a worker, so rounds agree within a
few per cent; variants alternate round by round.

    python -m bench.profile_handler [--requests 4000] [--rounds 7] [--variants open,quiet]
        [--profile FILE]

Variants: ``open`` (open mode, metrics and request lines on: the defaults), ``quiet``
(the same with metrics and request lines off), ``pipeline`` (a virtual key with RPM and
TPM limits, as ``make bench``'s full pipeline), ``metrics`` (open mode, request lines
off), ``lines`` (open mode, metrics off), ``stream`` (open mode, a streamed answer:
44 OpenAI events, each read after a suspension, 43 passed on; what a stream's chunks
cost is the difference to ``open`` over 43) and ``hit`` (open mode with ``cache: {ttl: 300}``
and a deterministic body: after the warm-up every call is a cache hit, translated).
``--profile`` runs cProfile over the first variant's rounds (it inflates every Python call:
read it for where, not how much).
Figures and what they say: docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import os
import statistics
import time
from pathlib import Path
from typing import Any

import uvloop

from bench.pipeline import create_virtual_key, prepare_store
from bench.processes import run_directory
from modelway.config import LoggingSettings, parse_config
from modelway.gateway.app import create_app
from modelway.gateway.rsgi import RsgiGateway, settle_garbage_collector
from modelway.logs import configure_logging
from modelway.providers import lean_transport, registry

BODY = (
    b'{"model":"openai/gpt-4o-mini","messages":[{"role":"system","content":"You are terse."},'
    b'{"role":"user","content":"Say hello in one short sentence."}],"max_tokens":32}'
)
ANSWER = (
    b'{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini",'
    b'"choices":[{"index":0,"message":{"role":"assistant","content":"Hello there!"},'
    b'"finish_reason":"stop"}],"usage":{"prompt_tokens":20,"completion_tokens":4,'
    b'"total_tokens":24}}'
)
#: A streamed answer as OpenAI sends one: the role, a word a chunk, the end, the usage.
STREAM_WORDS = 40


def _event(choices: str, usage: str = "") -> bytes:
    return (
        b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,'
        b'"model":"gpt-4o-mini","choices":' + choices.encode() + usage.encode() + b"}\n\n"
    )


STREAM_CHUNKS = (
    _event('[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]'),
    *(
        _event(f'[{{"index":0,"delta":{{"content":" word{n}"}},"finish_reason":null}}]')
        for n in range(STREAM_WORDS)
    ),
    _event('[{"index":0,"delta":{},"finish_reason":"stop"}]'),
    _event("[]", ',"usage":{"prompt_tokens":20,"completion_tokens":40,"total_tokens":60}'),
    b"data: [DONE]\n\n",
)
STREAM_BODY = BODY[:-1] + b',"stream":true}'
#: Temperature 0: an answer the response cache keeps, so repeats are hits.
HIT_BODY = BODY[:-1] + b',"temperature":0}'
CONFIGS = {
    "open": "",
    "stream": "",
    "quiet": "metrics:\n  enabled: false\nlogging:\n  requests: false\n",
    "pipeline": "",
    "metrics": "logging:\n  requests: false\n",
    "lines": "metrics:\n  enabled: false\n",
    "hit": "cache: {ttl: 300}\n",
}
BODIES = {"stream": STREAM_BODY, "hit": HIT_BODY}
CONCURRENCY = 32


class _Payload:
    """An answer body that arrived with its head (``is_eof``), as a small JSON answer does."""

    def is_eof(self) -> bool:
        return True

    async def read(self) -> bytes:
        return ANSWER


class _StreamPayload:
    """A streamed answer: each event after a suspension, as each comes in its own read."""

    def __init__(self) -> None:
        self._chunks = iter(STREAM_CHUNKS)

    def is_eof(self) -> bool:
        return False

    async def readany(self) -> bytes:
        await asyncio.sleep(0)
        return next(self._chunks, b"")


class _Connection:
    def release(self) -> None:
        return None

    def close(self) -> None:
        return None


class _Head:
    code = 200
    headers = {"content-type": "application/json"}


class _StreamHead:
    code = 200
    headers = {"content-type": "text/event-stream"}


class _Stream:
    """granian's response stream: takes each chunk."""

    def __init__(self) -> None:
        self.chunks = 0

    async def send_bytes(self, data: bytes) -> None:
        self.chunks += 1


class NoNetwork(lean_transport.LeanAiohttpTransport):
    """The gateway's transport with the socket left out: the upstream answers at once."""

    async def _exchange(
        self,
        route: Any,
        limits: Any,
        method: str,
        data: bytes,
        deadline: float | None,
        total: float | None,
    ) -> lean_transport._LeanResponse:
        await asyncio.sleep(0)  # the answer comes after a suspension, as over a socket
        if b'"stream":true' in data:
            return lean_transport._LeanResponse(
                _Connection(),
                _StreamHead(),
                _StreamPayload(),  # type: ignore[arg-type]
                deadline,
                total,
            )
        return lean_transport._LeanResponse(_Connection(), _Head(), _Payload(), deadline, total)  # type: ignore[arg-type]


class _Headers:
    """granian's request headers: ``get``, ``get_all``, ``items``, ``in``."""

    def __init__(self, values: dict[str, str]) -> None:
        self._values = values

    def get(self, key: str, default: None = None) -> str | None:
        return self._values.get(key, default)

    def get_all(self, key: str) -> list[str]:
        value = self._values.get(key)
        return [] if value is None else [value]

    def items(self) -> list[tuple[str, str]]:
        return list(self._values.items())

    def __contains__(self, key: str) -> bool:
        return key in self._values


class _Scope:
    proto = "http"
    http_version = "1.1"
    server = "127.0.0.1:8080"
    client = "127.0.0.1:50000"
    scheme = "http"
    method = "POST"
    path = "/v1/chat/completions"
    query_string = ""

    def __init__(self, headers: _Headers) -> None:
        self.headers = headers


class _Protocol:
    """granian's protocol object for one request: the body, its disconnect future (the
    caller never leaves), then one answer."""

    status = 0
    stream: _Stream | None = None

    def __init__(self, body: bytes) -> None:
        self._body_bytes = body

    def client_disconnect(self) -> asyncio.Future[None]:
        return asyncio.get_running_loop().create_future()

    async def _body(self) -> bytes:
        await asyncio.sleep(0)
        return self._body_bytes

    def __call__(self) -> Any:
        return self._body()

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status

    def response_stream(self, status: int, headers: list[tuple[str, str]]) -> _Stream:
        self.status = status
        self.stream = _Stream()
        return self.stream


def scope(key: str | None, body: bytes) -> _Scope:
    headers = {
        "host": "127.0.0.1:8080",
        "content-type": "application/json",
        "content-length": str(len(body)),
    }
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    return _Scope(_Headers(headers))


async def load(app: RsgiGateway, request: _Scope, body: bytes, requests: int) -> float:
    """``requests`` calls by ``CONCURRENCY`` tasks; CPU seconds of this process per call."""
    per_task = max(1, requests // CONCURRENCY)

    async def caller() -> None:
        for _ in range(per_task):
            protocol = _Protocol(body)
            await app.__rsgi__(request, protocol)
            if protocol.status != 200:
                raise RuntimeError(f"the gateway answered {protocol.status}")
            if body is STREAM_BODY and (protocol.stream is None or protocol.stream.chunks < 43):
                raise RuntimeError("the stream did not come through whole")

    started = time.process_time()
    await asyncio.gather(*(caller() for _ in range(CONCURRENCY)))
    return (time.process_time() - started) / (per_task * CONCURRENCY)


async def compare(
    variants: dict[str, tuple[Path, str | None]], requests: int, rounds: int, profile: Path | None
) -> None:
    """Alternate rounds on each variant's app (its data directory and key); print CPU per call."""
    registry.transport_for = lambda upstream_client, *, refuse_link_local: NoNetwork()
    apps: dict[str, tuple[RsgiGateway, _Scope, bytes]] = {}
    async with contextlib.AsyncExitStack() as stack:
        for name, (data_dir, key) in variants.items():
            environ = {
                "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
                "OPENAI_API_KEY": "x",
                "MODELWAY_DATA_DIR": str(data_dir),
            }
            if key is not None:  # a key exists: not open mode
                environ["MODELWAY_MASTER_KEY"] = "sk-mw-master-" + os.urandom(12).hex()
            config = parse_config(CONFIGS[name], environ)
            asgi = create_app(config, environ)
            await stack.enter_async_context(asgi.lifespan())
            body = BODIES.get(name, BODY)
            apps[name] = (RsgiGateway(asgi, config.server), scope(key, body), body)
            await load(*apps[name], requests)  # warm-up: keys verified, pools and caches made
        settle_garbage_collector()
        profiler = cProfile.Profile() if profile is not None else None
        names = list(variants)
        cpu: dict[str, list[float]] = {name: [] for name in names}
        for round_ in range(rounds):
            for name in names if round_ % 2 == 0 else names[::-1]:
                if profiler is not None and name == names[0]:
                    profiler.enable()
                cpu[name].append(await load(*apps[name], requests))
                if profiler is not None:
                    profiler.disable()
    for name, values in cpu.items():
        runs = ", ".join(f"{value * 1e6:.1f}" for value in values)
        print(f"{name:>9}: {statistics.median(values) * 1e6:6.1f} µs CPU per call ({runs})")
    if profiler is not None and profile is not None:
        profiler.dump_stats(profile)
        print(f"cProfile of {names[0]}'s rounds: {profile}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=4000, help="per round and variant")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--variants", default="open,quiet", help=", ".join(CONFIGS))
    parser.add_argument("--profile", type=Path, help="cProfile the first variant's rounds")
    args = parser.parse_args()
    names = [name for name in args.variants.split(",") if name]
    unknown = [name for name in names if name not in CONFIGS]
    if unknown or not names:
        raise SystemExit(f"variants are {', '.join(CONFIGS)} (not {', '.join(unknown)})")
    variants: dict[str, tuple[Path, str | None]] = {}
    with run_directory("modelway-profile-") as run:
        for name in names:
            data_dir = run.path / name
            data_dir.mkdir()
            prepare_store(data_dir)
            key = create_virtual_key(data_dir) if name == "pipeline" else None
            variants[name] = (data_dir, key)
        # As a worker logs: JSON request lines, to nowhere here (the formatting is what costs).
        with open(os.devnull, "w") as devnull:
            configure_logging(LoggingSettings(format="json"), {}, devnull)
            uvloop.run(compare(variants, args.requests, args.rounds, args.profile))


if __name__ == "__main__":
    main()
