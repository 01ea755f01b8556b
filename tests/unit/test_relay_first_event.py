"""A relayed stream is committed to its deployment at its first event, not its first bytes:
an upstream that sends only SSE comments (``: keepalive``) and ends, or splits its first
event across chunks, is judged by the events."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson

from modelway.calls import ANONYMOUS, Accounts, Calls
from modelway.config import parse_config
from modelway.engine import Engine
from modelway.limits import Limits
from modelway.providers.registry import adapter_for
from modelway.providers.transport import MockReply, MockTransport, UpstreamRequest
from modelway.providers.upstream import HttpProvider
from modelway.secrets import Secret
from tests.unit.test_relay_blame import NoHeaders, Records

CONFIG = """
providers:
  first: {wire: openai, base_url: "http://first.test/v1"}
  second: {wire: openai, base_url: "http://second.test/v1"}
models:
  - name: pair
    retries: 0
    deployments: [{provider: first, model: m}, {provider: second, model: m}]
"""
TEXT = {"index": 0, "delta": {"content": "from second"}, "finish_reason": None}
CHUNK = {"id": "c1", "object": "chat.completion.chunk", "model": "m", "choices": [TEXT]}
DONE = {**CHUNK, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}


async def _pieces(*pieces: bytes) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


def _second(request: UpstreamRequest) -> MockReply:
    events = b"".join(b"data: " + orjson.dumps(event) + b"\n\n" for event in (CHUNK, DONE))
    whole = events + b"data: [DONE]\n\n"
    # Its first event arrives in two pieces: nothing is relayed until it is whole.
    return MockReply(200, _pieces(whole[:9], whole[9:]), {"content-type": "text/event-stream"})


def _keepalive_only(request: UpstreamRequest) -> MockReply:
    return MockReply(200, _pieces(b": keepalive\n\n", b": still here\n\n"))


def make_calls() -> tuple[Calls, list[str]]:
    asked: list[str] = []

    def provider(name: str, handler: object) -> HttpProvider:
        def counted(request: UpstreamRequest) -> MockReply:
            asked.append(name)
            return handler(request)  # type: ignore[operator, no-any-return]

        transport = MockTransport(counted)
        return HttpProvider(
            name, adapter_for("openai"), f"http://{name}.test/v1", Secret("k"), transport=transport
        )

    backends = {"first": provider("first", _keepalive_only), "second": provider("second", _second)}
    limits = Limits.from_environment(None)
    engine = Engine(parse_config(CONFIG, {}), {}, backends, rates=limits.rates)
    return Calls(engine, Accounts(limits, Records(), {})), asked


async def test_a_stream_of_comments_that_ends_fails_over_to_the_next_deployment() -> None:
    calls, asked = make_calls()
    body = {"model": "pair", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    try:
        async with calls.open(ANONYMOUS, "pair", dialect="openai", request_id="r") as call:
            relayed = await call.relay(body, NoHeaders())
            assert relayed.chunks is not None
            streamed = b"".join([chunk async for chunk in relayed.chunks])
    finally:
        await calls.aclose()
    assert asked == ["first", "second"]
    assert b"from second" in streamed and streamed.endswith(b"data: [DONE]\n\n")
    assert b"keepalive" not in streamed
