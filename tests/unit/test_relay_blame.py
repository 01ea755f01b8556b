"""A relayed body the caller's own format refuses is the caller's fault, even when the
upstream answers it with a 5xx: a 400, no retry, and no cooldown for everyone else."""

from __future__ import annotations

import json
from typing import Any

import pytest

from modelway.calls import ANONYMOUS, Accounts, Calls
from modelway.config import parse_config
from modelway.engine import Engine
from modelway.errors import BadRequest, Unavailable, UpstreamStatusError
from modelway.limits import Limits
from modelway.providers.registry import adapter_for
from modelway.providers.transport import MockReply, MockTransport, UpstreamRequest
from modelway.providers.upstream import HttpProvider
from modelway.secrets import Secret
from modelway.store.records import UsageRecord

CONFIG = """
models:
  - name: smart
    deployments: [{provider: openai, model: gpt-x}]
    retries: 2
    cooldown: {failures: 1, window: 60, seconds: 600}
"""
GOOD = [{"role": "user", "content": "hi"}]


class Records:
    def __init__(self) -> None:
        self.records: list[UsageRecord] = []

    def record(self, record: UsageRecord) -> None:
        self.records.append(record)

    async def aclose(self) -> None:
        pass


class PickyUpstream:
    """An OpenAI-format upstream that answers 500 to any role but user, system or
    assistant (as some OpenAI-compatible servers do with what they cannot parse)."""

    def __init__(self) -> None:
        self.hits = 0

    def __call__(self, request: UpstreamRequest) -> MockReply:
        self.hits += 1
        body = json.loads(request.body or b"{}")
        if any(m.get("role") not in ("user", "system", "assistant") for m in body["messages"]):
            return MockReply(500, b'{"error": {"message": "internal error"}}')
        message = {"role": "assistant", "content": "ok"}
        choice = {"index": 0, "message": message, "finish_reason": "stop"}
        answer = {"id": "c1", "object": "chat.completion", "model": "gpt-x", "choices": [choice]}
        return MockReply(200, json.dumps(answer).encode())


def make_calls(upstream: PickyUpstream) -> Calls:
    provider = HttpProvider(
        "openai",
        adapter_for("openai"),
        "http://up.test/v1",
        Secret("sk-x"),
        transport=MockTransport(upstream),
    )
    limits = Limits.from_environment(None)
    engine = Engine(parse_config(CONFIG, {}), {}, {"openai": provider}, rates=limits.rates)
    return Calls(engine, Accounts(limits, Records(), {}))


class NoHeaders:
    def get(self, key: str, /) -> str | None:
        return None


async def relay(calls: Calls, messages: list[dict[str, Any]], stream: bool = False) -> None:
    body = {"model": "smart", "stream": stream, "messages": messages}
    async with calls.open(ANONYMOUS, "smart", dialect="openai", request_id="r") as call:
        assert call.relayable()
        relayed = await call.relay(body, NoHeaders())
        if relayed.chunks is not None:
            async for _ in relayed.chunks:
                pass


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_a_malformed_relayed_body_is_a_400_and_does_not_bench_the_deployment(
    stream: bool,
) -> None:
    upstream = PickyUpstream()
    calls = make_calls(upstream)
    try:
        with pytest.raises(BadRequest, match=r"messages\.0\.role.*upstream answered 500"):
            await relay(calls, [{"role": "wizard", "content": "x"}], stream)
        assert upstream.hits == 1  # not retried
        await relay(calls, GOOD)  # the deployment is not cooling: a good body is answered
        assert upstream.hits == 2
    finally:
        await calls.aclose()


async def test_a_5xx_to_a_valid_body_is_still_the_upstreams_failure() -> None:
    upstream = PickyUpstream()
    calls = make_calls(upstream)
    try:
        # Valid in OpenAI's format (a developer message), yet this upstream fails on it.
        with pytest.raises(UpstreamStatusError):
            await relay(calls, [{"role": "developer", "content": "x"}])
        assert upstream.hits == 1  # cooled after one failure (failures: 1), so not retried
        with pytest.raises(Unavailable):
            await relay(calls, GOOD)  # the deployment is benched: its fault
    finally:
        await calls.aclose()
