"""``modelway mock`` as a real process, driven by the official SDKs and raw HTTP."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import ollama
import openai
import pytest
from anthropic.types import ToolUseBlock
from openai.types.chat import ChatCompletionMessageFunctionToolCall

from tests.integration.mockserver import running_mock
from tests.polling import eventually, wait_until

pytestmark = pytest.mark.integration

WEATHER_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["city", "unit"],
}
OPENAI_TOOLS: Any = [
    {
        "type": "function",
        "function": {"name": "get_weather", "description": "Weather", "parameters": WEATHER_SCHEMA},
    }
]
ANTHROPIC_TOOLS: Any = [
    {"name": "get_weather", "description": "Weather", "input_schema": WEATHER_SCHEMA}
]
HELLO: Any = [{"role": "user", "content": "Hello,  mock world!"}]


@pytest.fixture(scope="module")
def root() -> Iterator[str]:
    with running_mock() as url:
        yield url


@pytest.fixture
def oai(root: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{root}/v1", api_key="test", max_retries=0) as client:
        yield client


@pytest.fixture
def claude(root: str) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=root, api_key="test", max_retries=0) as client:
        yield client


@pytest.fixture
def http(root: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=root, timeout=10) as client:
        yield client


def chat_body(route: str, *, stream: bool = True, model: str = "mock-1") -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": HELLO, "stream": stream}
    if route == "/v1/messages":
        body["max_tokens"] = 100
    return body


CHAT_ROUTES = ["/v1/chat/completions", "/v1/messages", "/api/chat"]


# --- OpenAI ----------------------------------------------------------------------------


def test_openai_create_echoes_the_user_message(oai: openai.OpenAI) -> None:
    completion = oai.chat.completions.create(model="echo", messages=HELLO)
    assert completion.choices[0].message.content == "Hello,  mock world!"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens == 3


def test_openai_stream_without_usage_has_no_usage_chunk(oai: openai.OpenAI) -> None:
    stream = oai.chat.completions.create(model="echo", messages=HELLO, stream=True)
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello,  mock world!"
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_openai_stream_with_include_usage_ends_with_usage(oai: openai.OpenAI) -> None:
    stream = oai.chat.completions.create(
        model="mock-1",
        messages=HELLO,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 3
    assert "mock-1" in "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_openai_tool_call_then_tool_result(oai: openai.OpenAI) -> None:
    first = oai.chat.completions.create(model="mock-1", messages=HELLO, tools=OPENAI_TOOLS)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls or []
    assert isinstance(call, ChatCompletionMessageFunctionToolCall)
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "mock", "unit": "celsius"}
    messages: Any = [
        *HELLO,
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"},
    ]
    second = oai.chat.completions.create(model="mock-1", messages=messages, tools=OPENAI_TOOLS)
    assert "sunny, 21C" in (second.choices[0].message.content or "")


def test_openai_streamed_tool_call(oai: openai.OpenAI) -> None:
    stream = oai.chat.completions.create(
        model="echo",
        messages=HELLO,
        tools=OPENAI_TOOLS,
        stream=True,
    )
    arguments = ""
    for chunk in stream:
        for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            arguments += (call.function and call.function.arguments) or ""
    assert json.loads(arguments)["unit"] == "celsius"


def test_openai_embeddings_are_unit_vectors(oai: openai.OpenAI) -> None:
    result = oai.embeddings.create(model="mock-1", input=["cat", "dog"])
    vectors = [item.embedding for item in result.data]
    assert len(vectors) == 2 and all(len(v) == 8 for v in vectors)
    assert vectors[0] != vectors[1]
    assert math.isclose(sum(x * x for x in vectors[0]), 1.0, rel_tol=1e-5)
    floats = oai.embeddings.create(
        model="mock-1", input="cat", dimensions=4, encoding_format="float"
    )
    assert len(floats.data[0].embedding) == 4


def test_openai_models_lists_echo_and_mock_1(oai: openai.OpenAI) -> None:
    assert {model.id for model in oai.models.list()} == {"echo", "mock-1"}


# --- Anthropic -------------------------------------------------------------------------


def test_anthropic_create_answers_with_text(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(model="echo", max_tokens=100, messages=HELLO)
    assert message.content[0].type == "text"
    assert message.content[0].text == "Hello,  mock world!"
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == 3


def test_anthropic_stream_text(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(model="mock-1", max_tokens=100, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert "mock-1" in text
    assert final.stop_reason == "end_turn"


def test_anthropic_tool_use_create_and_stream(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(
        model="mock-1",
        max_tokens=100,
        messages=HELLO,
        tools=ANTHROPIC_TOOLS,
    )
    assert message.stop_reason == "tool_use"
    [block] = message.content
    assert isinstance(block, ToolUseBlock)
    assert block.name == "get_weather" and block.input == {"city": "mock", "unit": "celsius"}
    with claude.messages.stream(
        model="mock-1",
        max_tokens=100,
        messages=HELLO,
        tools=ANTHROPIC_TOOLS,
    ) as stream:
        final = stream.get_final_message()
    [block] = final.content
    assert isinstance(block, ToolUseBlock)
    assert block.input == {"city": "mock", "unit": "celsius"}


# --- Ollama ----------------------------------------------------------------------------


def test_ollama_chat_stream_and_not(root: str) -> None:
    with ollama.Client(host=root) as client:
        answer = client.chat(model="echo", messages=HELLO, stream=False)
        parts = list(client.chat(model="echo", messages=HELLO, stream=True))
    assert answer.message.content == "Hello,  mock world!"
    assert answer.done and answer.eval_count == 3
    assert "".join(p.message.content or "" for p in parts) == "Hello,  mock world!"
    assert parts[-1].done and not parts[0].done


def test_ollama_tags_and_embed(root: str) -> None:
    with ollama.Client(host=root) as client:
        models = client.list().models
        result = client.embed(model="mock-1", input=["a", "b", "c"])
    assert {m.model for m in models} == {"echo", "mock-1"}
    assert len(result.embeddings) == 3 and len(result.embeddings[0]) == 8


# --- faults ----------------------------------------------------------------------------


@pytest.mark.parametrize("route", CHAT_ROUTES)
def test_error_fault_answers_in_the_route_dialect_with_retry_after(
    http: httpx.Client, route: str
) -> None:
    response = http.post(route, json=chat_body(route), headers={"x-mock-fault": "error:503"})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    body = response.json()
    if route == "/api/chat":
        assert isinstance(body["error"], str)
    elif route == "/v1/messages":
        assert body["type"] == "error" and body["error"]["message"]
    else:
        assert body["error"]["message"]


def test_rate_limit_fault_uses_the_requested_retry_after(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        oai.chat.completions.create(
            model="echo",
            messages=HELLO,
            extra_headers={"x-mock-fault": "error:429", "x-mock-retry-after": "7"},
        )
    assert caught.value.response.headers["retry-after"] == "7"


def test_other_error_statuses_have_no_retry_after(http: httpx.Client) -> None:
    response = http.post(
        "/v1/messages", json=chat_body("/v1/messages"), headers={"x-mock-fault": "error:400"}
    )
    assert response.status_code == 400 and "retry-after" not in response.headers


FINISH_MARKERS = {
    "/v1/chat/completions": b"[DONE]",
    "/v1/messages": b"message_stop",
    "/api/chat": b'"done":true',
}


@pytest.mark.parametrize("route", CHAT_ROUTES)
def test_truncate_ends_cleanly_without_the_finish_marker(http: httpx.Client, route: str) -> None:
    normal = http.post(route, json=chat_body(route))
    assert FINISH_MARKERS[route] in normal.content
    truncated = http.post(route, json=chat_body(route), headers={"x-mock-fault": "truncate"})
    assert truncated.status_code == 200
    assert truncated.content
    assert FINISH_MARKERS[route] not in truncated.content


def _payloads(route: str, body: bytes) -> list[str]:
    lines = body.decode().splitlines()
    if route == "/api/chat":
        return [line for line in lines if line]
    return [line[6:] for line in lines if line.startswith("data: ") and line != "data: [DONE]"]


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("route", CHAT_ROUTES)
def test_corrupt_sends_one_invalid_json_chunk_mid_stream(http: httpx.Client, route: str) -> None:
    response = http.post(route, json=chat_body(route), headers={"x-mock-fault": "corrupt"})
    payloads = _payloads(route, response.content)
    broken = [i for i, payload in enumerate(payloads) if not _is_json(payload)]
    assert len(broken) == 1 and 0 < broken[0] < len(payloads) - 1  # one, and mid-stream
    assert FINISH_MARKERS[route] in response.content


def test_corrupt_non_stream_body_is_invalid_json_with_200(http: httpx.Client) -> None:
    route = "/v1/chat/completions"
    response = http.post(
        route, json=chat_body(route, stream=False), headers={"x-mock-fault": "corrupt"}
    )
    assert response.status_code == 200
    assert not _is_json(response.text)


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize("route", CHAT_ROUTES)
def test_drop_breaks_the_connection_mid_body(http: httpx.Client, route: str, stream: bool) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        http.post(route, json=chat_body(route, stream=stream), headers={"x-mock-fault": "drop"})
    assert http.get("/mock/stats").status_code == 200  # the server lives on


@pytest.mark.parametrize(
    "fault", ["slow-first-token:50", "stall:50", "slow-first-token:20,stall:20"]
)
def test_slow_faults_still_complete(http: httpx.Client, fault: str) -> None:
    route = "/v1/chat/completions"
    response = http.post(route, json=chat_body(route), headers={"x-mock-fault": fault})
    assert response.status_code == 200 and b"[DONE]" in response.content
    response = http.post(
        route, json=chat_body(route, stream=False), headers={"x-mock-fault": fault}
    )
    assert "mock-1" in response.json()["choices"][0]["message"]["content"]


def test_unknown_fault_is_a_bad_request(http: httpx.Client) -> None:
    response = http.post(
        "/api/chat", json=chat_body("/api/chat"), headers={"x-mock-fault": "explode"}
    )
    assert response.status_code == 400
    assert "explode" in response.json()["error"]


@pytest.mark.parametrize("route", CHAT_ROUTES)
def test_invalid_json_is_a_400_in_the_route_dialect(http: httpx.Client, route: str) -> None:
    response = http.post(route, content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert "error" in response.json()


def test_fail_rate_one_always_fails_with_500() -> None:
    with running_mock("--fail-rate", "1", "--seed", "7") as url, httpx.Client(base_url=url) as http:
        for route in CHAT_ROUTES:
            response = http.post(route, json=chat_body(route))
            assert response.status_code == 500
        assert http.get("/v1/models").status_code == 500


def test_configured_faults_and_pacing_apply_to_every_request() -> None:
    options = ["--fault", "truncate", "--fault", "slow-first-token:5"]
    pacing = ["--latency-ms", "5", "--tokens-per-second", "2000"]
    with running_mock(*options, *pacing) as url, httpx.Client(base_url=url) as http:
        for route in CHAT_ROUTES:
            response = http.post(route, json=chat_body(route))
            assert response.status_code == 200 and response.content
            assert FINISH_MARKERS[route] not in response.content
        # A per-request fault adds to the configured ones.
        response = http.post(
            "/api/chat",
            json=chat_body("/api/chat"),
            headers={"x-mock-fault": "error:429", "x-mock-retry-after": "2"},
        )
        assert response.status_code == 429 and response.headers["retry-after"] == "2"


# --- stats -----------------------------------------------------------------------------


def test_stats_count_requests_and_remember_the_request_id(http: httpx.Client) -> None:
    before = http.get("/mock/stats").json()
    response = http.get("/v1/models", headers={"x-request-id": "req-123"})
    count = int(response.headers["x-mock-request-count"])
    after = http.get("/mock/stats").json()
    assert after["requests"]["/v1/models"] == before["requests"].get("/v1/models", 0) + 1
    assert after["last_request_id"] == "req-123"
    assert count == after["request_count"]


def test_a_client_leaving_early_counts_as_a_cancelled_stream(http: httpx.Client, root: str) -> None:
    cancelled = http.get("/mock/stats").json()["cancelled_streams"]
    route = "/v1/chat/completions"
    with (
        httpx.Client(base_url=root) as leaving,
        leaving.stream(
            "POST", route, json=chat_body(route), headers={"x-mock-fault": "stall:10000"}
        ) as response,
    ):
        next(response.iter_bytes())
    wait_until(lambda: http.get("/mock/stats").json()["cancelled_streams"] == cancelled + 1)
    wait_until(lambda: http.get("/mock/stats").json()["open_streams"] == 0)


async def _open_stalled_stream(host: str, port: int) -> asyncio.StreamWriter:
    """A raw HTTP/1.1 stream request, read up to its first body chunk, then left open."""
    reader, writer = await asyncio.open_connection(host, port)
    body = json.dumps(chat_body("/api/chat", model="echo")).encode()
    writer.write(
        b"POST /api/chat HTTP/1.1\r\nhost: mock\r\ncontent-type: application/json\r\n"
        b"x-mock-fault: stall:60000\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
    )
    await reader.readuntil(b"\r\n\r\n")  # headers
    await reader.readuntil(b"\n\r\n")  # the first NDJSON line, chunk-encoded
    return writer


async def test_holds_a_thousand_concurrent_slow_streams(root: str) -> None:
    # Raw sockets keep the client cheap; the stall is far longer than the test, so every
    # stream is open at once and each ends by the client leaving.
    streams = 1000
    url = httpx.URL(root)
    async with httpx.AsyncClient(base_url=root) as http:
        cancelled = (await http.get("/mock/stats")).json()["cancelled_streams"]
        writers = await asyncio.gather(
            *(_open_stalled_stream(url.host, url.port or 80) for _ in range(streams))
        )
        assert (await http.get("/mock/stats")).json()["open_streams"] == streams
        for writer in writers:
            writer.close()
        await asyncio.gather(*(writer.wait_closed() for writer in writers))
        stats: dict[str, int] = {}

        async def all_closed() -> bool:
            stats.update((await http.get("/mock/stats")).json())
            return stats["open_streams"] == 0

        await eventually(all_closed)
    assert stats["cancelled_streams"] == cancelled + streams


def test_an_idle_keep_alive_connection_outlives_uvicorns_five_seconds(root: str) -> None:
    """Pooling clients (the gateway, the benchmark's relay) must not race the mock closing
    an idle connection as their next request is written: it stays open past 5 s."""
    limits = httpx.Limits(keepalive_expiry=60)  # httpx's own pool lets go after 5 s
    with httpx.Client(base_url=root, timeout=10, limits=limits) as client:
        first = client.get("/v1/models")
        assert first.status_code == 200
        port = first.extensions["network_stream"].get_extra_info("client_addr")[1]
        time.sleep(6.5)
        second = client.get("/v1/models")
        assert second.status_code == 200
        # The same local port: the pooled connection was reused, not reopened.
        assert second.extensions["network_stream"].get_extra_info("client_addr")[1] == port
