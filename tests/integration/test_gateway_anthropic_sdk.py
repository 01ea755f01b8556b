"""The official ``anthropic`` SDK against a real gateway, through every provider."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import pytest

PROVIDERS = ["mock", "openai", "azure", "anthropic", "ollama", "gemini"]
WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city", "days"],
    },
}


@pytest.fixture
def client(gateway_url: str) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=gateway_url, api_key="x", max_retries=0) as sdk:
        yield sdk


@pytest.mark.parametrize("provider", PROVIDERS)
def test_messages_create_echoes_through_each_provider(
    client: anthropic.Anthropic, provider: str
) -> None:
    message = client.messages.create(
        model=f"{provider}/echo",
        max_tokens=100,
        system="You are terse.",
        messages=[{"role": "user", "content": "Bonjour, passerelle !"}],
    )
    assert message.content[0].type == "text"
    assert message.content[0].text == "Bonjour, passerelle !"
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens > 0


@pytest.mark.parametrize("provider", PROVIDERS)
def test_messages_stream_text_through_each_provider(
    client: anthropic.Anthropic, provider: str
) -> None:
    with client.messages.stream(
        model=f"{provider}/echo",
        max_tokens=100,
        messages=[{"role": "user", "content": "stream these words please"}],
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(pieces) == "stream these words please"
    assert len(pieces) > 1
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0


@pytest.mark.parametrize("provider", PROVIDERS)
def test_tool_use_round_trip_with_messages_stream(
    client: anthropic.Anthropic, provider: str
) -> None:
    model = f"{provider}/assistant"
    messages: list[anthropic.types.MessageParam] = [
        {"role": "user", "content": "Weather in Paris?"}
    ]
    with client.messages.stream(
        model=model,
        max_tokens=200,
        tools=[WEATHER],
        messages=messages,  # type: ignore[list-item]
    ) as stream:
        first = stream.get_final_message()
    assert first.stop_reason == "tool_use"
    tool_use = next(block for block in first.content if block.type == "tool_use")
    assert tool_use.name == "get_weather"
    assert isinstance(tool_use.input["city"], str) and isinstance(tool_use.input["days"], int)  # type: ignore[index]

    messages += [
        {"role": "assistant", "content": first.content},  # type: ignore[typeddict-item]
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": tool_use.id, "content": "rainy, 12 degrees"}
            ],
        },
    ]
    final = client.messages.create(
        model=model,
        max_tokens=200,
        tools=[WEATHER],
        messages=messages,  # type: ignore[list-item]
    )
    assert final.stop_reason == "end_turn"
    assert "rainy, 12 degrees" in final.content[0].text  # type: ignore[union-attr]


def test_models_list_and_retrieve_in_anthropic_shape(client: anthropic.Anthropic) -> None:
    page = client.models.list()
    ids = [model.id for model in page.data]
    assert "mock/echo" in ids
    assert all(model.type == "model" and model.display_name for model in page.data)
    assert page.has_more is False and page.first_id == ids[0] and page.last_id == ids[-1]
    one = client.models.retrieve("mock/echo")
    assert (one.id, one.type) == ("mock/echo", "model")
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("nobody/knows")


def test_count_tokens_gives_a_positive_estimate(client: anthropic.Anthropic) -> None:
    short = client.messages.count_tokens(
        model="mock/echo", messages=[{"role": "user", "content": "hi"}]
    )
    long = client.messages.count_tokens(
        model="mock/echo", messages=[{"role": "user", "content": "hi " * 200}]
    )
    assert 0 < short.input_tokens < long.input_tokens


def test_errors_come_back_in_anthropic_shape(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        client.messages.create(
            model="mistral/mistral-large-latest",
            max_tokens=10,
            messages=[{"role": "user", "content": "x"}],
        )
    assert caught.value.body["type"] == "error"  # type: ignore[index]
    assert caught.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError, match="max_tokens"):
        client.messages.create(
            model="mock/echo", max_tokens=0, messages=[{"role": "user", "content": "x"}]
        )


def test_a_broken_upstream_stream_is_an_error_event(client: anthropic.Anthropic) -> None:
    with (
        pytest.raises(anthropic.APIError),
        client.messages.stream(
            model="truncated",
            max_tokens=100,
            messages=[{"role": "user", "content": "one two three four five six"}],
        ) as stream,
    ):
        stream.get_final_message()


def test_a_claude_model_name_mapped_by_an_alias_streams_tools_from_another_provider(
    client: anthropic.Anthropic,
) -> None:
    with client.messages.stream(
        model="claude-opus-4-8",
        max_tokens=200,
        tools=[WEATHER],  # type: ignore[list-item]
        messages=[{"role": "user", "content": "Weather in Lisbon?"}],
    ) as stream:
        final = stream.get_final_message()
        provider = stream.response.headers["x-modelway-provider"]
    assert provider == "openai"
    assert final.stop_reason == "tool_use"
    tool_use = next(block for block in final.content if block.type == "tool_use")
    assert tool_use.name == "get_weather" and isinstance(tool_use.input["city"], str)  # type: ignore[index]
