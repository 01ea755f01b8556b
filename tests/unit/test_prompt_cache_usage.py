"""Prompt-cache tokens from an Anthropic upstream reach the caller and the usage record.

Anthropic's ``input_tokens`` leaves out cache reads and writes; OpenAI's
``prompt_tokens`` holds them. A relayed Anthropic caller sees Anthropic's counts as sent,
a translated OpenAI caller sees OpenAI's, and the record keeps the canonical counts
(``prompt_tokens`` holding both) priced once each.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from modelway.gateway.state import GatewayState
from modelway.pricing import cost_usd
from modelway.providers.registry import adapter_for
from modelway.providers.transport import MockReply, MockTransport, UpstreamRequest
from modelway.providers.upstream import HttpProvider
from modelway.secrets import Secret
from modelway.store.records import UsageRecord
from modelway.types import Usage
from tests.polling import eventually
from tests.unit.gateways import Setup, in_process_gateway

MODEL = "anthropic/claude-sonnet-4-5"
#: What Anthropic reports: 10 uncached input tokens, 1000 read from the cache, 200 written.
CACHE_COUNTS = {
    "input_tokens": 10,
    "cache_creation_input_tokens": 200,
    "cache_read_input_tokens": 1000,
}
ANTHROPIC_USAGE = {**CACHE_COUNTS, "output_tokens": 5}
CANONICAL = Usage(
    prompt_tokens=1210, completion_tokens=5, cached_tokens=1000, cache_write_tokens=200
)


def _sse(event: dict[str, Any]) -> str:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"


def anthropic_upstream(request: UpstreamRequest) -> MockReply:
    """An Anthropic upstream whose every answer read 1000 prompt tokens from its cache."""
    return anthropic_answer(request, CACHE_COUNTS)


def anthropic_answer(request: UpstreamRequest, cache_counts: dict[str, Any]) -> MockReply:
    """An Anthropic answer to ``request`` (a stream when asked) with ``cache_counts``."""
    body = json.loads(request.body or b"{}")
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": body.get("model"),
        "content": [{"type": "text", "text": "hi"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {**cache_counts, "output_tokens": 5},
    }
    if not body.get("stream"):
        return MockReply(200, json.dumps(message).encode())
    start = {
        **message,
        "content": [],
        "stop_reason": None,
        "usage": {**cache_counts, "output_tokens": 1},
    }
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": start},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 5},
        },
        {"type": "message_stop"},
    ]
    sse = "".join(_sse(event) for event in events).encode()
    return MockReply(200, sse, {"content-type": "text/event-stream"})


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    async with gateway_upstream(tmp_path, anthropic_upstream) as setup:
        yield setup


@contextlib.asynccontextmanager
async def gateway_upstream(
    tmp_path: Path, upstream: Callable[[UpstreamRequest], MockReply]
) -> AsyncIterator[Setup]:
    async with in_process_gateway(tmp_path) as setup:
        setup.state.engine.router.backends["anthropic"] = HttpProvider(
            "anthropic",
            adapter_for("anthropic"),
            "http://anthropic.test",
            Secret("sk-ant-upstream"),
            transport=MockTransport(upstream),
        )
        yield setup


async def the_record(state: GatewayState) -> UsageRecord:
    async def stored() -> list[UsageRecord] | None:
        found = await state.store.usage.recent(limit=10)
        return found or None

    found: list[UsageRecord] | None = await eventually(stored)
    assert found is not None
    (record,) = found
    return record


def assert_cache_counted(record: UsageRecord) -> None:
    assert (record.prompt_tokens, record.completion_tokens) == (1210, 5)
    assert (record.cached_tokens, record.cache_write_tokens) == (1000, 200)
    assert not record.usage_estimated
    # 10 at input 3.0, 1000 at the cache-read 0.3, 200 at the cache-write 3.75, 5 at 15.0.
    assert record.cost_usd == pytest.approx((10 * 3.0 + 1000 * 0.3 + 200 * 3.75 + 5 * 15.0) / 1e6)
    assert record.cost_usd == pytest.approx(cost_usd("anthropic", "claude-sonnet-4-5", CANONICAL))


def anthropic_body(stream: bool) -> dict[str, Any]:
    messages = [{"role": "user", "content": "hello"}]
    return {"model": MODEL, "max_tokens": 64, "messages": messages, "stream": stream}


def openai_body(stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": "hello"}]}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return body


def sse_data(text: str) -> list[Any]:
    return [
        json.loads(line[6:])
        for line in text.splitlines()
        if line.startswith("data: ") and line != "data: [DONE]"
    ]


async def test_a_relayed_anthropic_answer_keeps_anthropics_counts_and_records_the_cache(
    setup: Setup,
) -> None:
    response = await setup.http.post("/v1/messages", json=anthropic_body(stream=False))
    assert response.status_code == 200, response.text
    assert response.json()["usage"] == ANTHROPIC_USAGE
    assert_cache_counted(await the_record(setup.state))


async def test_a_relayed_anthropic_stream_records_the_cache_counts_of_message_start(
    setup: Setup,
) -> None:
    response = await setup.http.post("/v1/messages", json=anthropic_body(stream=True))
    assert response.status_code == 200, response.text
    (start,) = [e for e in sse_data(response.text) if e["type"] == "message_start"]
    assert start["message"]["usage"]["cache_read_input_tokens"] == 1000
    assert_cache_counted(await the_record(setup.state))


async def test_a_translated_answer_gives_an_openai_caller_openais_meaning(setup: Setup) -> None:
    response = await setup.http.post("/v1/chat/completions", json=openai_body(stream=False))
    assert response.status_code == 200, response.text
    usage = response.json()["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (1210, 5)
    assert usage["prompt_tokens_details"] == {"cached_tokens": 1000}
    assert_cache_counted(await the_record(setup.state))


async def test_a_translated_stream_gives_an_openai_caller_openais_meaning(setup: Setup) -> None:
    response = await setup.http.post("/v1/chat/completions", json=openai_body(stream=True))
    assert response.status_code == 200, response.text
    (usage,) = [chunk["usage"] for chunk in sse_data(response.text) if chunk.get("usage")]
    assert usage["prompt_tokens"] == 1210
    assert usage["prompt_tokens_details"] == {"cached_tokens": 1000}
    assert_cache_counted(await the_record(setup.state))


#: 200 written as before, 150 of them for an hour (Anthropic's ``ttl: "1h"``).
HOUR_COUNTS = {
    **CACHE_COUNTS,
    "cache_creation": {"ephemeral_5m_input_tokens": 50, "ephemeral_1h_input_tokens": 150},
}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/messages", anthropic_body(stream=False)),
        ("/v1/messages", anthropic_body(stream=True)),
        ("/v1/chat/completions", openai_body(stream=False)),
        ("/v1/chat/completions", openai_body(stream=True)),
    ],
    ids=["relayed", "relayed-stream", "translated", "translated-stream"],
)
async def test_one_hour_cache_writes_are_charged_twice_the_input_price(
    tmp_path: Path, path: str, body: dict[str, Any]
) -> None:
    async with gateway_upstream(tmp_path, lambda r: anthropic_answer(r, HOUR_COUNTS)) as setup:
        response = await setup.http.post(path, json=body)
        assert response.status_code == 200, response.text
        record = await the_record(setup.state)

    assert (record.prompt_tokens, record.cache_write_tokens) == (1210, 200)
    # claude-sonnet-4-5: 50 five-minute writes at 3.75, 150 one-hour writes at 6.0 (2x 3.0).
    expected = (10 * 3.0 + 1000 * 0.3 + 50 * 3.75 + 150 * 6.0 + 5 * 15.0) / 1e6
    assert record.cost_usd == pytest.approx(expected)


#: A 250k-token prompt (150k fresh, 50k read from the cache, 50k written): past the 200k
#: that Claude Sonnet 4.5's 1M-context calls are billed higher above.
LONG_COUNTS = {
    "input_tokens": 150_000,
    "cache_creation_input_tokens": 50_000,
    "cache_read_input_tokens": 50_000,
}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/messages", anthropic_body(stream=False)),
        ("/v1/messages", anthropic_body(stream=True)),
        ("/v1/chat/completions", openai_body(stream=False)),
        ("/v1/chat/completions", openai_body(stream=True)),
    ],
    ids=["relayed", "relayed-stream", "translated", "translated-stream"],
)
async def test_a_long_prompt_is_recorded_at_the_long_prompt_rates(
    tmp_path: Path, path: str, body: dict[str, Any]
) -> None:
    async with gateway_upstream(tmp_path, lambda r: anthropic_answer(r, LONG_COUNTS)) as setup:
        response = await setup.http.post(path, json=body)
        assert response.status_code == 200, response.text
        record = await the_record(setup.state)

    assert (record.prompt_tokens, record.completion_tokens) == (250_000, 5)
    # Above 200k every token costs the 1M-context rates: input 6, cache read 0.6, cache
    # write 7.5, output 22.5 (the base rates would make it about half).
    expected = (150_000 * 6.0 + 50_000 * 0.6 + 50_000 * 7.5 + 5 * 22.5) / 1e6
    assert record.cost_usd == pytest.approx(expected)
