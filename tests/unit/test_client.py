"""``modelway.Client`` / ``AsyncClient``: the engine in-process, with usage and cost.

Everything runs in-process: the built-in mock provider, and an OpenAI-wire provider
whose HTTP goes to a ``MockTransport`` instead of a socket.
"""

from __future__ import annotations

import asyncio
import gc
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from modelway.client import AsyncChatStream, AsyncClient, ChatStream, Client, UsageTracker
from modelway.client.chat_request import build_chat_request
from modelway.config import Config, Price
from modelway.errors import BadRequest, ModelwayError, UnknownModel, UpstreamStatusError
from modelway.providers.registry import adapter_for
from modelway.providers.transport import MockReply, MockTransport, UpstreamRequest
from modelway.providers.upstream import HttpProvider
from modelway.routing import attempts as attempts_module
from modelway.secrets import Secret
from modelway.types import (
    ChatResponse,
    ImagePart,
    Message,
    MessageEnd,
    MessageStart,
    StreamEvent,
    TextDelta,
    TextPart,
    Tool,
    ToolCallDelta,
    ToolCallStart,
    Usage,
    UsageReport,
    fold_events,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "openai"
SECRET = "sk-test-never-show-me-0123456789"
HELLO = [{"role": "user", "content": "hello there world"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
            "required": ["city", "days"],
        },
    },
}

Handler = Callable[[UpstreamRequest], MockReply]


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    # Retries are exercised, their waiting is not.
    monkeypatch.setattr(attempts_module, "backoff_seconds", lambda attempt, error=None: 0.0)


@pytest.fixture
async def aclient() -> AsyncIterator[AsyncClient]:
    async with AsyncClient(Config(), environ={}) as client:
        yield client


@pytest.fixture
def client() -> Iterator[Client]:
    with Client(Config(), environ={}) as client:
        yield client


def openai_upstream(handler: Handler) -> HttpProvider:
    """An OpenAI-wire provider whose requests go to ``handler``, not the network."""
    return HttpProvider(
        "openai",
        adapter_for("openai"),
        "http://upstream.test/v1",
        Secret(SECRET),
        transport=MockTransport(handler),
    )


def use_openai(client: AsyncClient, handler: Handler) -> None:
    client.engine.router.backends["openai"] = openai_upstream(handler)


def failing(status: int, calls: list[UpstreamRequest]) -> Handler:
    def handle(request: UpstreamRequest) -> MockReply:
        calls.append(request)
        return MockReply(status, json.dumps({"error": {"message": "upstream says no"}}).encode())

    return handle


def answering(calls: list[UpstreamRequest]) -> Handler:
    def handle(request: UpstreamRequest) -> MockReply:
        calls.append(request)
        return MockReply(200, (FIXTURES / "chat_text.json").read_bytes())

    return handle


def text_of(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


# --- chat, both clients ----------------------------------------------------------------


async def test_async_chat_with_mock_echo_answers_the_last_user_message(
    aclient: AsyncClient,
) -> None:
    reply = await aclient.chat("mock/echo", messages=HELLO)

    assert isinstance(reply, ChatResponse)
    assert reply.message.role == "assistant"
    assert reply.message.text() == "hello there world"
    assert reply.model == "mock/echo"
    assert reply.usage == Usage(prompt_tokens=3, completion_tokens=3)


async def test_async_stream_yields_canonical_events_that_fold_to_the_answer(
    aclient: AsyncClient,
) -> None:
    stream = await aclient.chat("mock/echo", messages=HELLO, stream=True)
    assert isinstance(stream, AsyncChatStream)
    events = [event async for event in stream]

    assert isinstance(events[0], MessageStart)
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["hello ", "there ", "world"]
    assert isinstance(events[-2], MessageEnd)
    assert isinstance(events[-1], UsageReport)
    assert fold_events(events).message.text() == "hello there world"
    assert stream.outcome.target.model == "echo"


def test_sync_chat_with_mock_echo_answers_the_last_user_message(client: Client) -> None:
    reply = client.chat("mock/echo", messages=HELLO, temperature=0.2, max_tokens=50)

    assert reply.message.text() == "hello there world"
    assert reply.stop_reason == "stop"


def test_sync_stream_is_a_plain_iterator_of_events(client: Client) -> None:
    with client.chat("mock/echo", messages=HELLO, stream=True) as stream:
        assert isinstance(stream, ChatStream)
        events = list(stream)

    assert text_of(events) == "hello there world"
    assert isinstance(events[-1], UsageReport)
    assert next(stream, None) is None


def test_non_echo_mock_model_answers_fixed_text(client: Client) -> None:
    reply = client.chat("mock/mock-1", messages=HELLO)

    assert "mock-1" in reply.message.text()


def test_messages_accept_multipart_content_images_and_canonical_structs(client: Client) -> None:
    messages = [
        Message(role="system", content=[TextPart("Be brief.")]),
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is "},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "text", "text": "this"},
            ],
        },
    ]

    reply = client.chat("mock/echo", messages=messages)

    assert reply.message.text() == "what is this"


def test_chat_request_keeps_canonical_structs_in_place_and_reads_dicts_as_openai() -> None:
    canonical = Message(role="assistant", content=[TextPart("earlier answer")])
    tool = Tool(name="lookup", parameters={"type": "object", "properties": {}})

    request = build_chat_request(
        "mock/echo",
        [
            {"role": "developer", "content": "rules"},
            canonical,
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": "http://x/a.png"}}],
            },
        ],
        stream=True,
        tools=[WEATHER_TOOL, tool],
        tool_choice={"type": "function", "function": {"name": "lookup"}},
        temperature=None,
        max_tokens=10,
        top_p=None,
        stop="END",
        extra={"seed": 7},
    )

    assert [m.role for m in request.messages] == ["system", "assistant", "user"]
    assert request.messages[1] is canonical
    assert request.messages[2].content == [ImagePart(url="http://x/a.png")]
    assert [t.name for t in request.tools] == ["get_weather", "lookup"]
    assert request.tools[1] is tool
    assert request.tool_choice == "lookup"
    assert request.stop == ["END"]
    assert request.extra == {"seed": 7}
    assert request.stream and request.include_usage


def test_a_malformed_message_is_a_bad_request_naming_its_position(client: Client) -> None:
    messages = [Message(role="user", content=[TextPart("hi")]), {"role": "wizard", "content": "x"}]

    with pytest.raises(BadRequest, match=r"messages\.1\.role"):
        client.chat("mock/echo", messages=messages)


# --- tools ------------------------------------------------------------------------------


def test_mock_calls_the_first_tool_then_answers_the_tool_result_in_text(client: Client) -> None:
    first = client.chat(
        "mock/mock-1", messages=[{"role": "user", "content": "weather?"}], tools=[WEATHER_TOOL]
    )

    assert first.stop_reason == "tool_calls"
    [call] = first.message.tool_calls
    assert call.name == "get_weather"
    arguments = json.loads(call.arguments)
    assert isinstance(arguments["city"], str) and arguments["days"] >= 1

    second = client.chat(
        "mock/mock-1",
        messages=[
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 C"},
        ],
        tools=[WEATHER_TOOL],
    )

    assert second.stop_reason == "stop"
    assert second.message.tool_calls == []
    assert second.message.text()


async def test_streamed_tool_call_with_a_canonical_tool(aclient: AsyncClient) -> None:
    tool = Tool(
        name="add",
        parameters={"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
    )

    stream = await aclient.chat("mock/mock-1", messages=HELLO, tools=[tool], stream=True)
    events = [event async for event in stream]

    starts = [e for e in events if isinstance(e, ToolCallStart)]
    assert [s.name for s in starts] == ["add"]
    arguments = "".join(e.arguments for e in events if isinstance(e, ToolCallDelta))
    assert isinstance(json.loads(arguments)["a"], int)


# --- routing: unknown models, retries, fallbacks --------------------------------------------


async def test_an_unknown_model_raises_unknown_model_even_with_fallbacks(
    aclient: AsyncClient,
) -> None:
    with pytest.raises(UnknownModel):
        await aclient.chat("nowhere-model", messages=HELLO, fallbacks=["mock/echo"])


async def test_a_retryable_upstream_failure_is_retried_then_fails_over_to_a_fallback(
    aclient: AsyncClient,
) -> None:
    calls: list[UpstreamRequest] = []
    use_openai(aclient, failing(503, calls))

    reply = await aclient.chat(
        "openai/gpt-4o", messages=HELLO, fallbacks=["mock/echo"], max_retries=1
    )

    assert reply.message.text() == "hello there world"
    assert len(calls) == 2
    assert calls[0].headers["authorization"] == f"Bearer {SECRET}"
    assert set(aclient.usage.summary().by_model) == {"mock/echo"}


async def test_a_streamed_call_fails_over_before_its_first_event(aclient: AsyncClient) -> None:
    calls: list[UpstreamRequest] = []
    use_openai(aclient, failing(429, calls))

    stream = await aclient.chat(
        "openai/gpt-4o", messages=HELLO, stream=True, fallbacks=["mock/echo"], max_retries=0
    )
    events = [event async for event in stream]

    assert text_of(events) == "hello there world"
    assert len(calls) == 1
    assert stream.outcome.attempts == 2


async def test_a_refusal_of_the_request_itself_is_raised_without_trying_fallbacks(
    aclient: AsyncClient,
) -> None:
    calls: list[UpstreamRequest] = []
    use_openai(aclient, failing(400, calls))

    with pytest.raises(UpstreamStatusError) as caught:
        await aclient.chat("openai/gpt-4o", messages=HELLO, fallbacks=["mock/echo"])

    assert caught.value.status == 400
    assert len(calls) == 1
    assert aclient.usage.summary().requests == 0


async def test_a_provider_refusing_its_key_is_not_retried_and_fallbacks_answer(
    aclient: AsyncClient,
) -> None:
    calls: list[UpstreamRequest] = []
    use_openai(aclient, failing(401, calls))

    reply = await aclient.chat("openai/gpt-4o", messages=HELLO, fallbacks=["mock/echo"])

    assert reply.message.text() == "hello there world"
    assert len(calls) == 1


async def test_client_max_retries_is_the_default_and_a_call_can_override_it() -> None:
    calls: list[UpstreamRequest] = []
    async with AsyncClient(Config(), environ={}, max_retries=2) as aclient:
        use_openai(aclient, failing(500, calls))

        with pytest.raises(UpstreamStatusError):
            await aclient.chat("openai/gpt-4o", messages=HELLO)
        assert len(calls) == 3

        calls.clear()
        with pytest.raises(UpstreamStatusError):
            await aclient.chat("openai/gpt-4o", messages=HELLO, max_retries=0)
        assert len(calls) == 1


async def test_extra_keyword_arguments_reach_an_openai_wire_provider(
    aclient: AsyncClient,
) -> None:
    calls: list[UpstreamRequest] = []
    use_openai(aclient, answering(calls))

    reply = await aclient.chat("openai/gpt-4.1", messages=HELLO, seed=7, max_tokens=20)

    body = json.loads(calls[0].body or b"")
    assert body["seed"] == 7
    assert body["model"] == "gpt-4.1"
    assert reply.message.text() == "Hello! How can I assist you today?"


@pytest.mark.parametrize(
    "option",
    ["timeout", "api_key", "base_url", "extra_headers", "extra_body", "num_retries"],
)
async def test_an_sdk_client_option_is_refused_not_sent_to_the_provider(
    aclient: AsyncClient, option: str
) -> None:
    calls: list[UpstreamRequest] = []
    use_openai(aclient, answering(calls))

    with pytest.raises(BadRequest) as refused:
        await aclient.chat("openai/gpt-4.1", messages=HELLO, **{option: "sk-per-call-secret"})

    assert refused.value.message.startswith(f"{option}: a client option")
    assert "sk-per-call-secret" not in refused.value.message
    assert calls == []


# --- usage and cost -------------------------------------------------------------------------


async def test_usage_counts_requests_tokens_and_table_cost_by_model(aclient: AsyncClient) -> None:
    use_openai(aclient, answering([]))

    await aclient.chat("openai/gpt-4.1", messages=HELLO)  # 19 prompt, 10 completion tokens
    await aclient.chat("mock/echo", messages=HELLO)  # 3 + 3, free
    stream = await aclient.chat("mock/echo", messages=HELLO, stream=True)
    assert aclient.usage.summary().requests == 2  # a stream counts when it finishes
    async for _ in stream:
        pass

    summary = aclient.usage.summary()
    assert summary.requests == 3
    assert (summary.prompt_tokens, summary.completion_tokens) == (25, 16)
    assert summary.total_tokens == 41
    assert summary.cost_usd == pytest.approx((19 * 2.0 + 10 * 8.0) / 1_000_000)
    assert summary.unpriced_requests == 0
    assert summary.by_model["mock/echo"].requests == 2
    assert summary.by_model["openai/gpt-4.1"].total_tokens == 29


async def test_config_prices_override_the_table_for_the_usage_cost() -> None:
    prices = {"mock/echo": Price(input_per_million=1_000_000.0, output_per_million=2_000_000.0)}
    async with AsyncClient(Config(prices=prices), environ={}) as aclient:
        await aclient.chat("mock/echo", messages=HELLO)

        assert aclient.usage.summary().cost_usd == pytest.approx(3 * 1.0 + 3 * 2.0)


def test_usage_tracker_counts_unpriced_calls_apart() -> None:
    tracker = UsageTracker()

    assert tracker.record("openai", "gpt-4o", Usage(1000, 500)) == pytest.approx(0.0075)
    assert tracker.record("acme", "mystery-model", Usage(10, 10)) is None
    tracker.record("mock", "echo", None)

    summary = tracker.summary()
    assert summary.requests == 3
    assert summary.cost_usd == pytest.approx(0.0075)
    assert summary.unpriced_requests == 1
    assert summary.by_model["acme/mystery-model"].unpriced_requests == 1
    tracker.reset()
    assert tracker.summary().requests == 0
    assert type(tracker.summary().cost_usd) is float  # 0.0, as with any calls


def test_usage_tracker_counts_the_cost_the_call_priced_when_the_model_has_a_price() -> None:
    # The call knows what its usage cannot say (one-hour cache writes cost more).
    tracker = UsageTracker()
    hour_writes = Usage(1000, 0, cache_write_tokens=1000)

    assert tracker.record("anthropic", "claude-sonnet-4-5", hour_writes, cost=0.006) == 0.006
    assert tracker.record("acme", "mystery-model", Usage(10, 10), cost=0.0) is None
    assert tracker.summary().cost_usd == pytest.approx(0.006)
    assert tracker.summary().unpriced_requests == 1


def test_usage_summary_says_tokens_requests_and_cost() -> None:
    tracker = UsageTracker()
    tracker.record("openai", "gpt-4o", Usage(1000, 500))
    tracker.record("openai", "gpt-4o", Usage(10, 20))

    summary = tracker.summary()

    assert (summary.tokens, summary.requests) == (1530, 2)
    assert summary.tokens == summary.total_tokens
    assert summary.cost_usd == pytest.approx(0.0075 + 0.000225)
    assert summary.by_model["openai/gpt-4o"].tokens == 1530


def test_sync_usage_is_consistent_under_concurrent_calls(client: Client) -> None:
    def call() -> None:
        for _ in range(5):
            client.chat("mock/echo", messages=HELLO)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    summary = client.usage.summary()
    assert summary.requests == 20
    assert summary.total_tokens == 20 * 6


# --- closing streams early ----------------------------------------------------------------


class EndlessStream:
    """An upstream SSE body that sends one chunk and then hangs, noting when it is closed."""

    def __init__(self) -> None:
        self.closed = threading.Event()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunk = {
            "id": "c1",
            "model": "gpt-4o",
            "choices": [{"index": 0, "delta": {"content": "Hi"}}],
        }
        yield f"data: {json.dumps(chunk)}\n\n".encode()
        await asyncio.Event().wait()

    async def aclose(self) -> None:
        self.closed.set()


def endless(body: EndlessStream) -> Handler:
    def handle(request: UpstreamRequest) -> MockReply:
        return MockReply(200, body, {"content-type": "text/event-stream"})

    return handle


def test_closing_a_sync_stream_early_closes_the_upstream_response(client: Client) -> None:
    body = EndlessStream()
    use_openai(client.async_client, endless(body))

    stream = client.chat("openai/gpt-4o", messages=HELLO, stream=True)
    assert isinstance(next(stream), MessageStart)
    assert next(stream) == TextDelta("Hi")
    stream.close()

    assert body.closed.wait(timeout=5)
    assert next(stream, None) is None
    # No usage came: the prompt is counted locally, as the provider bills it, and said so.
    summary = client.usage.summary()
    assert (summary.requests, summary.estimated_requests) == (1, 1)
    assert summary.prompt_tokens > 0 and summary.cost_usd > 0


async def test_leaving_an_async_stream_block_early_closes_the_upstream_response(
    aclient: AsyncClient,
) -> None:
    body = EndlessStream()
    use_openai(aclient, endless(body))

    async with await aclient.chat("openai/gpt-4o", messages=HELLO, stream=True) as stream:
        async for event in stream:
            if isinstance(event, TextDelta):
                break

    await asyncio.wait_for(asyncio.to_thread(body.closed.wait, 5), timeout=6)
    assert body.closed.is_set()


async def test_an_async_stream_left_without_closing_closes_the_upstream_response(
    aclient: AsyncClient,
) -> None:
    # A plain ``break`` with no ``async with`` and no ``aclose()``: the upstream went on
    # generating until the cyclic garbage collector ran (found in a trial).
    body = EndlessStream()
    use_openai(aclient, endless(body))
    gc.disable()  # so only the stream's own release can close it
    try:
        async for event in await aclient.chat("openai/gpt-4o", messages=HELLO, stream=True):
            if isinstance(event, TextDelta):
                break
        await asyncio.wait_for(asyncio.to_thread(body.closed.wait, 5), timeout=6)
    finally:
        gc.enable()
    assert body.closed.is_set()


# --- embeddings, models, lifecycle, secrets ---------------------------------------------------


def test_embeddings_via_mock_give_one_vector_per_text_and_count_usage(client: Client) -> None:
    result = client.embeddings("mock/embed", ["one two", "three"], dimensions=4)
    single = client.embeddings("mock/embed", "one two", dimensions=4)

    assert len(result.vectors) == 2 and all(len(v) == 4 for v in result.vectors)
    assert single.vectors[0] == result.vectors[0]
    assert client.usage.summary().by_model["mock/embed"].prompt_tokens == 3 + 2


async def test_models_lists_the_mock_models(aclient: AsyncClient) -> None:
    ids = [model.id for model in await aclient.models()]

    assert "mock/echo" in ids


def test_a_closed_client_refuses_calls(client: Client) -> None:
    client.close()
    client.close()

    with pytest.raises(RuntimeError, match="closed"):
        client.chat("mock/echo", messages=HELLO)


async def test_a_closed_async_client_refuses_calls() -> None:
    aclient = AsyncClient(Config(), environ={})
    await aclient.aclose()

    with pytest.raises(RuntimeError, match="closed"):
        await aclient.chat("mock/echo", messages=HELLO)


async def test_sync_client_works_from_a_thread_running_another_event_loop() -> None:
    with Client(Config(), environ={}) as client:
        assert client.chat("mock/echo", messages=HELLO).message.text() == "hello there world"


def test_reprs_never_show_a_key() -> None:
    environ = {"OPENAI_API_KEY": SECRET, "ANTHROPIC_API_KEY": SECRET + "-anthropic"}
    with Client(Config(), environ=environ) as client:
        stream = client.chat("mock/echo", messages=HELLO, stream=True)
        shown = [repr(client), str(client), repr(client.async_client), repr(client.usage)]
        shown += [repr(stream), repr(client.usage.summary())]
        stream.close()
        with pytest.raises(UnknownModel) as caught:
            client.chat("gemini-2.5-pro", messages=HELLO)
        shown.append(str(caught.value))

    assert "openai" in shown[0] and "anthropic" in shown[0]
    for text in shown:
        assert SECRET not in text


def test_client_reads_a_config_file_with_aliases_and_prices(tmp_path: Path) -> None:
    config = tmp_path / "modelway.yaml"
    config.write_text(
        "models:\n"
        "  - name: smart\n"
        "    deployments: [{provider: mock, model: echo}]\n"
        "prices:\n"
        "  mock/echo: {input_per_million: 1000000, output_per_million: 1000000}\n",
        encoding="utf-8",
    )

    with Client(config, environ={}) as client:
        reply = client.chat("smart", messages=HELLO)
        ids = [model.id for model in client.models()]

        assert reply.message.text() == "hello there world"
        assert ids[0] == "smart"
        assert "aliases=['smart']" in repr(client)
        assert client.usage.summary().cost_usd == pytest.approx(6.0)


async def test_an_upstream_error_that_quotes_the_key_does_not_pass_it_on(
    aclient: AsyncClient,
) -> None:
    def quoting(request: UpstreamRequest) -> MockReply:
        body = {"error": {"message": f"Incorrect API key provided: {SECRET}."}}
        return MockReply(401, json.dumps(body).encode())

    use_openai(aclient, quoting)
    with pytest.raises(ModelwayError) as caught:
        await aclient.chat("openai/gpt-4o", messages=HELLO, max_retries=0)
    assert SECRET not in str(caught.value) and "****" in str(caught.value)


async def test_client_timeouts_replace_the_configured_ones_for_every_call() -> None:
    from tests.unit.fakes import ScriptedBackend

    backend = ScriptedBackend("openai")
    async with AsyncClient(
        Config(), environ={}, timeouts={"first_token": 1.5, "total": 9}
    ) as client:
        client.engine.router.backends["openai"] = backend  # type: ignore[assignment]
        await client.chat("openai/gpt-4o-mini", HELLO)
    ((_, call),) = backend.calls
    assert (call.timeouts.first_token, call.timeouts.total) == (1.5, 9)
    assert call.timeouts.connect == 10.0  # the rest keep their defaults


def test_client_timeouts_must_be_valid() -> None:
    with pytest.raises(ValueError, match="timeouts"):
        AsyncClient(Config(), environ={}, timeouts={"first_token": -1})


@pytest.mark.parametrize(
    ("texts", "dimensions", "said"),
    [
        ([1, "a"], None, "input: expected a string, a non-empty list of strings or token"),
        ([], None, "input: expected a string, a non-empty list of strings or token arrays"),
        (["x"] * 2049, None, "input: at most 2048 texts"),
        ("hi", "8", "dimensions: expected a whole number"),
    ],
)
def test_embeddings_are_checked_as_the_gateway_checks_them(
    client: Client, texts: Any, dimensions: Any, said: str
) -> None:
    with pytest.raises(BadRequest, match=said):
        client.embeddings("mock/embed", texts, dimensions=dimensions)


def test_call_options_that_make_no_sense_are_refused_by_name(client: Client) -> None:
    with pytest.raises(BadRequest, match="max_retries: a whole number, 0 or more"):
        client.chat("mock/echo", messages=HELLO, max_retries=-1)
    with pytest.raises(BadRequest, match="fallbacks: a list of model names, not one string"):
        client.chat("mock/echo", messages=HELLO, fallbacks="mock/echo")  # type: ignore[arg-type]
