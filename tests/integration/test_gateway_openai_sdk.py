"""The official ``openai`` SDK against a real gateway, through every provider."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import openai
import pytest

PROVIDERS = ["mock", "openai", "azure", "anthropic", "ollama", "gemini"]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city", "days"],
        },
    },
}


@pytest.fixture
def client(gateway_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway_url}/v1", api_key="x", max_retries=0) as sdk:
        yield sdk


@pytest.mark.parametrize("provider", PROVIDERS)
def test_echo_answers_verbatim_through_each_provider(client: openai.OpenAI, provider: str) -> None:
    text = "Hello, gateway!  Two spaces and ünïcode."
    answer = client.chat.completions.create(
        model=f"{provider}/echo", messages=[{"role": "user", "content": text}]
    )
    assert answer.choices[0].message.content == text
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None and answer.usage.completion_tokens > 0


@pytest.mark.parametrize("provider", PROVIDERS)
def test_stream_concatenates_to_the_echo_through_each_provider(
    client: openai.OpenAI, provider: str
) -> None:
    text = "stream me word by word please"
    chunks = list(
        client.chat.completions.create(
            model=f"{provider}/echo",
            messages=[{"role": "user", "content": text}],
            stream=True,
        )
    )
    deltas = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert "".join(deltas) == text
    assert len([d for d in deltas if d]) > 1
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_stream_reports_usage_only_when_asked(client: openai.OpenAI, provider: str) -> None:
    chunks = list(
        client.chat.completions.create(
            model=f"{provider}/echo",
            messages=[{"role": "user", "content": "count these tokens"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    usage = chunks[-1].usage
    assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert chunks[-1].choices == []


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("stream", [False, True])
def test_tool_call_round_trip_through_each_provider(
    client: openai.OpenAI, provider: str, stream: bool
) -> None:
    messages: list[dict[str, object]] = [{"role": "user", "content": "Weather in Paris?"}]
    model = f"{provider}/assistant"
    if stream:
        calls: dict[int, dict[str, str]] = {}
        finish = None
        for chunk in client.chat.completions.create(
            model=model,
            messages=messages,
            tools=[WEATHER_TOOL],
            stream=True,  # type: ignore[list-item]
        ):
            for delta in chunk.choices[0].delta.tool_calls or [] if chunk.choices else []:
                call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                call["id"] = delta.id or call["id"]
                if delta.function:
                    call["name"] += delta.function.name or ""
                    call["arguments"] += delta.function.arguments or ""
            if chunk.choices and chunk.choices[0].finish_reason:
                finish = chunk.choices[0].finish_reason
        assert finish == "tool_calls"
        call = calls[0]
        call_id, name, arguments = call["id"], call["name"], call["arguments"]
    else:
        answer = client.chat.completions.create(
            model=model,
            messages=messages,
            tools=[WEATHER_TOOL],  # type: ignore[list-item]
        )
        assert answer.choices[0].finish_reason == "tool_calls"
        tool_call = answer.choices[0].message.tool_calls[0]  # type: ignore[index]
        call_id, name = tool_call.id, tool_call.function.name  # type: ignore[union-attr]
        arguments = tool_call.function.arguments  # type: ignore[union-attr]
    assert name == "get_weather"
    parsed = json.loads(arguments)
    assert isinstance(parsed["city"], str) and isinstance(parsed["days"], int)

    messages += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": "sunny, 21 degrees"},
    ]
    final = client.chat.completions.create(
        model=model,
        messages=messages,
        tools=[WEATHER_TOOL],  # type: ignore[arg-type, list-item]
    )
    assert final.choices[0].finish_reason == "stop"
    assert "sunny, 21 degrees" in (final.choices[0].message.content or "")


def test_model_of_an_unconfigured_provider_is_404_in_openai_shape(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(
            model="mistral/mistral-large-latest", messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.code == "model_not_found"


def test_unconfigured_provider_is_404_naming_the_variable(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError, match="GROQ_API_KEY"):
        client.chat.completions.create(
            model="groq/llama-3.3-70b", messages=[{"role": "user", "content": "hi"}]
        )


def test_malformed_json_is_400_in_openai_shape(gateway_url: str) -> None:
    response = httpx.post(f"{gateway_url}/v1/chat/completions", content=b'{"model": "mock/echo",')
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and "JSON" in error["message"]


def test_a_body_that_is_json_but_not_an_object_is_400_saying_so(gateway_url: str) -> None:
    response = httpx.post(f"{gateway_url}/v1/chat/completions", content=b"[1, 2]")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "the request body must be a JSON object"


def test_missing_messages_is_400_naming_the_field(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="messages"):
        client.chat.completions.create(model="mock/echo", messages=[])


def test_oversized_body_is_413(gateway_url: str) -> None:
    body = (
        b'{"model": "mock/echo", "messages": [{"role": "user", "content": "'
        + b"x" * (11 * 1024 * 1024)
        + b'"}]}'
    )
    response = httpx.post(f"{gateway_url}/v1/chat/completions", content=body)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_a_chunked_body_without_content_length_is_served(gateway_url: str) -> None:
    body = json.dumps(
        {"model": "mock/echo", "messages": [{"role": "user", "content": "bit by bit"}]}
    )

    def chunks() -> Iterator[bytes]:
        yield body[:10].encode()
        yield body[10:].encode()

    response = httpx.post(f"{gateway_url}/v1/chat/completions", content=chunks())
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "bit by bit"


def test_upstream_500_is_502_with_the_upstream_message(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="broken", messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == 502
    assert "500" in caught.value.message


def test_failover_answers_from_the_next_deployment(gateway_url: str) -> None:
    response = httpx.post(
        f"{gateway_url}/v1/chat/completions",
        json={"model": "failover", "messages": [{"role": "user", "content": "still here"}]},
    )
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "still here"
    assert response.headers["x-modelway-provider"] == "anthropic"
    assert response.headers["x-modelway-attempts"] == "2"


@pytest.mark.parametrize("alias", ["truncated", "truncated-anthropic", "corrupt"])
def test_broken_upstream_stream_is_an_error_never_a_silent_success(
    client: openai.OpenAI, alias: str
) -> None:
    with pytest.raises(openai.APIError):
        for _ in client.chat.completions.create(
            model=alias,
            messages=[{"role": "user", "content": "one two three four five six"}],
            stream=True,
        ):
            pass


def test_request_id_is_echoed_and_sent_upstream(gateway_url: str, mock_url: str) -> None:
    response = httpx.post(
        f"{gateway_url}/v1/chat/completions",
        headers={"x-request-id": "trace-abc-123"},
        json={"model": "openai/echo", "messages": [{"role": "user", "content": "id?"}]},
    )
    assert response.headers["x-request-id"] == "trace-abc-123"
    assert httpx.get(f"{mock_url}/mock/stats").json()["last_request_id"] == "trace-abc-123"


def test_request_id_is_generated_when_absent(gateway_url: str) -> None:
    response = httpx.get(f"{gateway_url}/health/live")
    assert len(response.headers["x-request-id"]) >= 16


def test_models_lists_mock_and_each_configured_provider(client: openai.OpenAI) -> None:
    ids = {model.id for model in client.models.list()}
    assert {"mock/echo", "openai/echo", "ollama/echo", "broken", "failover"} <= ids
    assert client.models.retrieve("mock/echo").id == "mock/echo"


@pytest.mark.parametrize("provider", ["mock", "openai", "ollama", "gemini"])
def test_embeddings_through_each_provider(client: openai.OpenAI, provider: str) -> None:
    answer = client.embeddings.create(model=f"{provider}/embed", input=["one", "two"])
    assert len(answer.data) == 2
    assert answer.data[0].embedding != answer.data[1].embedding
    assert len(answer.data[0].embedding) > 0
    assert answer.model  # Gemini names no model: the one asked for, not ""
    assert answer.usage.prompt_tokens > 0  # counted from the texts where none is reported


@pytest.mark.parametrize("provider", ["mock", "openai", "gemini"])
def test_token_array_embeddings_are_the_texts_embeddings(
    client: openai.OpenAI, provider: str
) -> None:
    """As LangChain's OpenAIEmbeddings sends them (cl100k_base ids): before, a 400."""
    model = f"{provider}/embed"
    by_text = client.embeddings.create(model=model, input=["hello world", "hello"])
    by_tokens = client.embeddings.create(model=model, input=[[15339, 1917], [15339]])
    assert [d.embedding for d in by_tokens.data] == [d.embedding for d in by_text.data]


def test_embeddings_from_anthropic_is_a_clear_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="anthropic/echo", input="one")


def test_health_endpoints(gateway_url: str) -> None:
    assert httpx.get(f"{gateway_url}/health/live").json() == {"status": "ok"}
    assert httpx.get(f"{gateway_url}/health/ready").status_code == 200
    health = httpx.get(f"{gateway_url}/health").json()
    assert {"mock", "openai", "anthropic", "ollama"} <= set(health["providers"])
    assert health["uptime_seconds"] >= 0


# A 1x1 transparent PNG.
PNG_DATA_URL = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNk"
    "YAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_inline_image_reaches_each_provider_in_its_own_format(
    client: openai.OpenAI, mock_url: str, provider: str
) -> None:
    # The mock upstream decodes the image part with that format's own rules, so a
    # mistranslated image is a 400 from upstream, not a silent drop.
    answer = client.chat.completions.create(
        model=f"{provider}/echo",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is in this picture?"},
                    {"type": "image_url", "image_url": {"url": PNG_DATA_URL}},
                ],
            }
        ],
    )
    assert answer.choices[0].message.content == "what is in this picture?"
    if provider != "mock":  # the in-process mock has no upstream to ask
        assert httpx.get(f"{mock_url}/mock/stats").json()["last_request_images"] == 1


def test_a_get_on_a_post_route_is_405_with_allow(gateway_url: str) -> None:
    response = httpx.get(f"{gateway_url}/v1/chat/completions")
    assert response.status_code == 405
    assert "POST" in response.headers["allow"]
    assert response.json()["error"]["type"] == "invalid_request_error"


# silent-head: it took the request and never answered. Before, a stream waited for its
# head with no limit at all (the call, and its fallbacks, held forever).
@pytest.mark.parametrize("model", ["slow-start", "silent-head"])
def test_no_first_token_in_time_is_a_504_before_anything_is_sent(
    client: openai.OpenAI, model: str
) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hi"}], stream=True
        )
    assert caught.value.status_code == 504
    assert "first token" in caught.value.message


def test_an_upstream_silent_before_its_headers_fails_over_to_the_next_deployment(
    client: openai.OpenAI,
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="silent-head-then-another",
        messages=[{"role": "user", "content": "answered by the next deployment"}],
        stream=True,
    )
    assert raw.headers["x-modelway-provider"] == "anthropic"  # not the silent one, late
    stream = raw.parse()
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "answered by the next deployment"


def test_a_stream_that_stalls_ends_with_an_error_event(client: openai.OpenAI) -> None:
    received = []
    with pytest.raises(openai.APIError, match="stall"):
        for chunk in client.chat.completions.create(
            model="stalling",
            messages=[{"role": "user", "content": "one two three four"}],
            stream=True,
        ):
            received.append(chunk)
    assert received  # the stream had begun: the failure came as its last event
