"""The ``openai`` SDK's Responses and legacy Completions APIs against a real gateway."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

PROVIDERS = ["mock", "openai", "azure", "anthropic", "ollama", "gemini"]
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


@pytest.fixture
def client(gateway_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway_url}/v1", api_key="x", max_retries=0) as sdk:
        yield sdk


@pytest.mark.parametrize("provider", PROVIDERS)
def test_responses_create_echoes_through_each_provider(
    client: openai.OpenAI, provider: str
) -> None:
    response = client.responses.create(
        model=f"{provider}/echo", instructions="Be brief.", input="Réponds-moi"
    )
    assert response.output_text == "Réponds-moi"
    assert response.status == "completed"
    assert response.usage is not None and response.usage.output_tokens > 0


@pytest.mark.parametrize("provider", PROVIDERS)
def test_responses_stream_through_each_provider(client: openai.OpenAI, provider: str) -> None:
    with client.responses.stream(model=f"{provider}/echo", input="a streamed reply") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == "a streamed reply" and len(deltas) > 1
    assert final.output_text == "a streamed reply"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_responses_function_call_round_trip(client: openai.OpenAI, provider: str) -> None:
    model = f"{provider}/assistant"
    first = client.responses.create(model=model, input="Weather in Rome?", tools=[WEATHER])  # type: ignore[list-item]
    call = next(item for item in first.output if item.type == "function_call")
    assert call.name == "get_weather" and isinstance(json.loads(call.arguments)["city"], str)
    final = client.responses.create(
        model=model,
        tools=[WEATHER],  # type: ignore[list-item]
        input=[
            {"role": "user", "content": "Weather in Rome?"},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": "hot, 31 degrees"},
        ],
    )
    assert "hot, 31 degrees" in final.output_text


#: What Codex CLI sends beside its input: a namespace of functions and a hosted tool.
CODEX_TOOLS: Any = [
    {**WEATHER, "name": "shell"},
    {"type": "namespace", "name": "mcp__files", "description": "Files", "tools": [WEATHER]},
    {"type": "web_search"},
]
CODEX_FIELDS = {
    "include": ["reasoning.encrypted_content"],
    "store": False,
    "parallel_tool_calls": False,
    "reasoning": {"summary": "auto"},
    "prompt_cache_key": "codex-session-1",
    "client_metadata": {"originator": "codex_exec"},
}
CODEX_INPUT: Any = [
    {
        "type": "message",
        "role": "developer",
        "content": [{"type": "input_text", "text": "Be terse."}],
    },
    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "List files"}]},
]


def test_a_codex_stream_is_relayed_to_an_openai_upstream(client: openai.OpenAI) -> None:
    # Relayed, namespace and web_search tools reach the upstream as sent.
    events = list(
        client.responses.create(
            model="openai/echo",
            input=CODEX_INPUT,
            tools=CODEX_TOOLS,
            tool_choice="auto",
            stream=True,
            extra_body=CODEX_FIELDS,
        )
    )
    assert events[0].type == "response.created"
    final = events[-1]
    assert final.type == "response.completed"
    [call] = [item for item in final.response.output if item.type == "function_call"]
    assert call.name == "shell"  # the mock upstream calls the first tool it is offered
    assert final.response.usage is not None and final.response.usage.output_tokens > 0


def test_a_truncated_relayed_stream_ends_with_an_error_event(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model="truncated", input="one two three", stream=True))
    assert events[-1].type == "error"
    assert "response.completed" not in {e.type for e in events}


def test_the_mock_serves_responses_as_an_openai_upstream(mock_url: str) -> None:
    with openai.OpenAI(base_url=f"{mock_url}/v1", api_key="x", max_retries=0) as mock:
        answer = mock.responses.create(
            model="echo",
            input=CODEX_INPUT,
            tools=CODEX_TOOLS,
            tool_choice={"type": "function", "name": "get_weather"},  # in the namespace
            extra_body=CODEX_FIELDS,
        )
        [call] = [item for item in answer.output if item.type == "function_call"]
        assert call.name == "get_weather" and answer.status == "completed"
        echoed = mock.responses.create(model="echo", input=CODEX_INPUT, extra_body=CODEX_FIELDS)
        assert echoed.output_text == "List files"
        with mock.responses.stream(model="echo", input="streamed from the mock") as stream:
            deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
            final = stream.get_final_response()
    assert "".join(deltas) == "streamed from the mock" and len(deltas) > 1
    assert final.usage is not None and final.usage.input_tokens > 0


def test_responses_refuses_server_side_state_clearly(client: openai.OpenAI) -> None:
    # Kept responses chain (tests/integration/test_gateway_response_state.py); others do not.
    with pytest.raises(openai.NotFoundError, match="previous_response_id"):
        client.responses.create(model="mock/echo", input="x", previous_response_id="resp_1")
    with pytest.raises(openai.BadRequestError, match="conversation"):
        client.responses.create(model="mock/echo", input="x", extra_body={"conversation": "c"})


@pytest.mark.parametrize("provider", PROVIDERS)
def test_legacy_completions_stream_and_not(client: openai.OpenAI, provider: str) -> None:
    answer = client.completions.create(model=f"{provider}/echo", prompt="complete me")
    assert answer.choices[0].text == "complete me"
    chunks = list(client.completions.create(model=f"{provider}/echo", prompt="and me", stream=True))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "and me"
