"""The official ``ollama`` Python client against a real gateway, through every provider."""

from __future__ import annotations

from collections.abc import Iterator

import ollama
import pytest

PROVIDERS = ["mock", "openai", "azure", "anthropic", "ollama", "gemini"]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


@pytest.fixture
def client(gateway_url: str) -> Iterator[ollama.Client]:
    sdk = ollama.Client(host=gateway_url)
    yield sdk
    sdk._client.close()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_chat_echoes_through_each_provider(client: ollama.Client, provider: str) -> None:
    reply = client.chat(
        model=f"{provider}/echo", messages=[{"role": "user", "content": "hallo Ollama"}]
    )
    assert reply.message.content == "hallo Ollama"
    assert reply.done and reply.eval_count


@pytest.mark.parametrize("provider", PROVIDERS)
def test_chat_streams_through_each_provider(client: ollama.Client, provider: str) -> None:
    parts = list(
        client.chat(
            model=f"{provider}/echo",
            messages=[{"role": "user", "content": "many little words"}],
            stream=True,
        )
    )
    assert "".join(p.message.content or "" for p in parts) == "many little words"
    assert parts[-1].done and parts[-1].done_reason == "stop"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_tool_call_round_trip_through_each_provider(client: ollama.Client, provider: str) -> None:
    model = f"{provider}/assistant"
    messages: list[dict[str, object]] = [{"role": "user", "content": "Weather in Oslo?"}]
    first = client.chat(model=model, messages=messages, tools=[WEATHER])  # type: ignore[arg-type, list-item]
    calls = first.message.tool_calls or []
    assert calls and calls[0].function.name == "get_weather"
    assert isinstance(calls[0].function.arguments["city"], str)
    messages += [
        first.message.model_dump(exclude_none=True),
        {"role": "tool", "content": "snow, -3 degrees", "tool_name": "get_weather"},
    ]
    final = client.chat(model=model, messages=messages, tools=[WEATHER])  # type: ignore[arg-type, list-item]
    assert "snow, -3 degrees" in (final.message.content or "")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_generate_answers_and_streams(client: ollama.Client, provider: str) -> None:
    model = f"{provider}/echo"
    assert client.generate(model=model, prompt="say this").response == "say this"
    parts = list(client.generate(model=model, prompt="and stream this", stream=True))
    assert "".join(p.response for p in parts) == "and stream this"
    assert parts[-1].done


def test_tags_show_embed_and_version(client: ollama.Client) -> None:
    names = {m.model for m in client.list().models}
    assert {"mock/echo", "openai/echo", "ollama/echo"} <= names
    assert client.show("mock/echo").capabilities
    vectors = client.embed(model="ollama/embed", input=["a", "b"]).embeddings
    assert len(vectors) == 2 and vectors[0] != vectors[1]
    assert client.ps().models == []  # nothing runs in the gateway itself


def test_unknown_model_is_an_ollama_error(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        client.chat(
            model="mistral/mistral-large-latest", messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.status_code == 404


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_model_load_and_unload_calls_are_answered_as_ollama_does(
    client: ollama.Client, provider: str
) -> None:
    """Clients warm a model up with no messages (or no prompt), and free it with
    ``keep_alive`` 0: a done line saying ``load`` / ``unload``, not a 400."""
    model = f"{provider}/echo"
    loaded = client.chat(model=model, messages=[])
    assert (loaded.done, loaded.done_reason, loaded.message.content) == (True, "load", "")
    assert client.chat(model=model, messages=[], keep_alive=0).done_reason == "unload"
    [streamed] = list(client.chat(model=model, messages=[], stream=True))
    assert (streamed.done, streamed.done_reason) == (True, "load")
    generated = client.generate(model=model, prompt="")
    assert (generated.done, generated.done_reason, generated.response) == (True, "load", "")
    assert client.generate(model=model, keep_alive="0s").done_reason == "unload"


def test_loading_a_model_nobody_serves_is_still_a_404(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        client.chat(model="mistral/mistral-large-latest", messages=[])
    assert caught.value.status_code == 404
