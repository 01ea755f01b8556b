"""Structured outputs: Chat Completions ``response_format`` reaches every provider.

OpenAI-format upstreams get ``response_format`` itself, Gemini ``responseMimeType`` and
``responseSchema``, Ollama ``format``; Anthropic has no such field, so the schema becomes a
forced tool whose input comes back as the answer's JSON text.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openai
import orjson
import pydantic
import pytest

from modelway.dialects import ollama as ollama_dialect
from modelway.dialects.anthropic import AnthropicDialect
from modelway.dialects.openai import OpenAIDialect as OpenAIDialectForMock
from modelway.dialects.openai import decode_chat_request
from modelway.errors import BadRequest
from modelway.mock.engine import mock_events
from modelway.providers import gemini_request, ollama
from modelway.providers import openai as openai_provider
from modelway.providers.anthropic import (
    STRUCTURED_OUTPUT_TOOL,
    AnthropicAdapter,
    messages_body,
)
from modelway.providers.registry import adapter_for
from modelway.providers.transport import MockReply, MockTransport, UpstreamRequest
from modelway.providers.upstream import HttpProvider
from modelway.secrets import Secret
from modelway.types import (
    ChatRequest,
    Message,
    MessageEnd,
    ResponseFormat,
    TextDelta,
    TextPart,
    Tool,
    ToolCallStart,
    fold_events,
)
from tests.unit.gateways import MASTER, Setup, in_process_gateway
from tests.unit.wire import decode_stream

PERSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
PERSON_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "person", "schema": PERSON_SCHEMA, "strict": True},
}


class Person(pydantic.BaseModel):
    name: str
    age: int
    tags: list[str]


def chat(response_format: dict[str, Any] | None, **fields: Any) -> ChatRequest:
    body = {"model": "m", "messages": [{"role": "user", "content": "who?"}], **fields}
    if response_format is not None:
        body["response_format"] = response_format
    return decode_chat_request(body)


# --- the OpenAI dialect ------------------------------------------------------------------


def test_openai_dialect_decodes_json_schema_into_the_canonical_field() -> None:
    request = chat(PERSON_FORMAT)
    assert request.response_format == ResponseFormat(
        type="json_schema", name="person", schema=PERSON_SCHEMA, strict=True
    )
    assert "response_format" not in request.extra


def test_openai_dialect_decodes_json_object_and_reads_text_as_none() -> None:
    assert chat({"type": "json_object"}).response_format == ResponseFormat(type="json_object")
    assert chat({"type": "text"}).response_format is None


@pytest.mark.parametrize(
    "response_format",
    [
        "json",
        {"type": "yaml"},
        {"type": "json_schema"},
        {"type": "json_schema", "json_schema": {"schema": PERSON_SCHEMA}},
        {"type": "json_schema", "json_schema": {"name": "p", "schema": [1]}},
    ],
)
def test_openai_dialect_refuses_a_malformed_response_format(response_format: Any) -> None:
    with pytest.raises(BadRequest, match="response_format"):
        chat(response_format)


# --- what each provider receives ---------------------------------------------------------


def test_openai_provider_sends_response_format_as_asked() -> None:
    body = openai_provider.build_chat_body(chat(PERSON_FORMAT), "gpt")
    assert body["response_format"] == PERSON_FORMAT
    body = openai_provider.build_chat_body(chat({"type": "json_object"}), "gpt")
    assert body["response_format"] == {"type": "json_object"}


def test_gemini_provider_asks_for_json_with_its_schema_subset() -> None:
    config = gemini_request.generate_content_body(chat(PERSON_FORMAT))["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    schema = config["responseSchema"]
    assert schema["type"] == "object"
    assert set(schema["properties"]) == {"name", "age"}
    assert "additionalProperties" not in schema  # outside Gemini's OpenAPI subset
    config = gemini_request.generate_content_body(chat({"type": "json_object"}))["generationConfig"]
    assert config == {"responseMimeType": "application/json"}


def test_ollama_provider_sends_the_schema_or_json_as_format() -> None:
    assert ollama.build_chat_body(chat(PERSON_FORMAT), "llama")["format"] == PERSON_SCHEMA
    assert ollama.build_chat_body(chat({"type": "json_object"}), "llama")["format"] == "json"


def test_anthropic_provider_forces_the_structured_output_tool() -> None:
    body = messages_body(chat(PERSON_FORMAT), "claude")
    (tool,) = body["tools"]
    assert tool["name"] == STRUCTURED_OUTPUT_TOOL
    assert tool["input_schema"] == PERSON_SCHEMA
    assert "person" in tool["description"]
    assert body["tool_choice"] == {"type": "tool", "name": STRUCTURED_OUTPUT_TOOL}
    body = messages_body(chat({"type": "json_object"}), "claude")
    assert body["tools"][0]["input_schema"] == {"type": "object"}


def test_anthropic_provider_with_caller_tools_makes_the_model_call_one_of_them() -> None:
    weather = {"type": "function", "function": {"name": "weather", "parameters": {}}}
    body = messages_body(chat(PERSON_FORMAT, tools=[weather]), "claude")
    assert [t["name"] for t in body["tools"]] == ["weather", STRUCTURED_OUTPUT_TOOL]
    assert body["tool_choice"] == {"type": "any"}
    body = messages_body(chat(PERSON_FORMAT, tools=[weather], tool_choice="none"), "claude")
    assert [t["name"] for t in body["tools"]] == [STRUCTURED_OUTPUT_TOOL]
    assert body["tool_choice"] == {"type": "tool", "name": STRUCTURED_OUTPUT_TOOL}


def test_anthropic_provider_refuses_a_schema_it_cannot_take() -> None:
    array = {"type": "json_schema", "json_schema": {"name": "l", "schema": {"type": "array"}}}
    with pytest.raises(BadRequest, match="object"):
        messages_body(chat(array), "claude")
    request = ChatRequest(
        model="m",
        messages=[Message("user", [TextPart("x")])],
        tools=[Tool(name=STRUCTURED_OUTPUT_TOOL)],
        response_format=ResponseFormat(type="json_object"),
    )
    with pytest.raises(BadRequest, match="reserved"):
        messages_body(request, "claude")


def test_gemini_provider_with_caller_tools_answers_through_the_output_function() -> None:
    # Gemini 2 refuses function declarations beside responseMimeType "application/json".
    weather = {"type": "function", "function": {"name": "weather", "parameters": {}}}
    body = gemini_request.generate_content_body(chat(PERSON_FORMAT, tools=[weather]))
    (tools,) = body["tools"]
    names = [d["name"] for d in tools["functionDeclarations"]]
    assert names == ["weather", STRUCTURED_OUTPUT_TOOL]
    output = tools["functionDeclarations"][1]
    assert set(output["parameters"]["properties"]) == {"name", "age"}
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    assert "responseMimeType" not in body.get("generationConfig", {})

    named = chat(PERSON_FORMAT, tools=[weather], tool_choice="required")
    assert gemini_request.generate_content_body(named)["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY"}
    }
    # JSON mode without a schema cannot go beside tools: the tools go, the prompt asks.
    body = gemini_request.generate_content_body(chat({"type": "json_object"}, tools=[weather]))
    assert [d["name"] for d in body["tools"][0]["functionDeclarations"]] == ["weather"]
    assert "generationConfig" not in body
    # tool_choice "none": no function may be called, so the schema goes as responseSchema.
    body = gemini_request.generate_content_body(
        chat(PERSON_FORMAT, tools=[weather], tool_choice="none")
    )
    assert "tools" not in body
    assert body["generationConfig"]["responseMimeType"] == "application/json"


def test_gemini_provider_refuses_a_schema_it_cannot_take_beside_tools() -> None:
    weather = {"type": "function", "function": {"name": "weather", "parameters": {}}}
    array = {"type": "json_schema", "json_schema": {"name": "l", "schema": {"type": "array"}}}
    with pytest.raises(BadRequest, match="object"):
        gemini_request.generate_content_body(chat(array, tools=[weather]))
    reserved = {"type": "function", "function": {"name": STRUCTURED_OUTPUT_TOOL}}
    with pytest.raises(BadRequest, match="reserved"):
        gemini_request.generate_content_body(chat(PERSON_FORMAT, tools=[reserved]))


@pytest.mark.parametrize("stream", [False, True])
def test_gemini_output_function_call_becomes_the_answer_text(stream: bool) -> None:
    part = {"functionCall": {"name": STRUCTURED_OUTPUT_TOOL, "args": ANSWER}}
    chunk = {
        "candidates": [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 4},
        "modelVersion": "gemini-2.5-flash",
    }
    adapter = adapter_for("gemini")
    if stream:
        decoder = adapter.stream_decoder()
        events = decoder.feed(b"data: " + orjson.dumps(chunk) + b"\r\n\r\n") + decoder.close()
        response = fold_events(events)
    else:
        response = adapter.parse_chat(orjson.dumps(chunk))
    assert json.loads(response.message.text()) == ANSWER
    assert response.message.tool_calls == []
    assert response.stop_reason == "stop"


# --- what comes back from Anthropic ------------------------------------------------------

ANSWER = {"name": "Ada", "age": 36}


def test_anthropic_structured_output_call_becomes_the_answer_text() -> None:
    message = {
        "id": "msg_1",
        "model": "claude",
        "role": "assistant",
        "content": [
            {"type": "tool_use", "id": "toolu_1", "name": STRUCTURED_OUTPUT_TOOL, "input": ANSWER}
        ],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 3, "output_tokens": 4},
    }
    response = AnthropicAdapter().parse_chat(orjson.dumps(message))
    assert json.loads(response.message.text()) == ANSWER
    assert response.message.tool_calls == []
    assert response.stop_reason == "stop"


def sse(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()


def test_anthropic_streamed_structured_output_becomes_text_deltas() -> None:
    start = {"type": "tool_use", "id": "toolu_1", "name": STRUCTURED_OUTPUT_TOOL, "input": {}}
    chunks = [
        sse("message_start", {"message": {"id": "msg_1", "model": "claude", "usage": {}}}),
        sse("content_block_start", {"index": 0, "content_block": start}),
        sse(
            "content_block_delta",
            {"index": 0, "delta": {"type": "input_json_delta", "partial_json": '{"name": "Ada",'}},
        ),
        sse(
            "content_block_delta",
            {"index": 0, "delta": {"type": "input_json_delta", "partial_json": ' "age": 36}'}},
        ),
        sse("content_block_stop", {"index": 0}),
        sse("message_delta", {"delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 4}}),
        sse("message_stop", {}),
    ]
    events = decode_stream(AnthropicAdapter(), chunks)
    assert not any(isinstance(event, ToolCallStart) for event in events)
    text = "".join(event.text for event in events if isinstance(event, TextDelta))
    assert json.loads(text) == ANSWER
    assert MessageEnd("stop") in events


# --- through the gateway -----------------------------------------------------------------


def anthropic_mock_upstream(request: UpstreamRequest) -> MockReply:
    """An Anthropic upstream answered by the mock engine, as ``modelway mock`` does."""
    dialect = AnthropicDialect()
    body = dialect.decode_chat(json.loads(request.body or b"{}"))
    events = mock_events(body, body.model)
    if not body.stream:
        return MockReply(200, dialect.encode_response(fold_events(events)))
    encoder = dialect.stream_encoder(body)
    sse_body = b"".join(encoder.encode(event) for event in events) + encoder.finish()
    return MockReply(200, sse_body, {"content-type": "text/event-stream"})


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    async with in_process_gateway(tmp_path) as setup:
        setup.state.engine.router.backends["anthropic"] = HttpProvider(
            "anthropic",
            adapter_for("anthropic"),
            "http://anthropic.test",
            Secret("sk-ant-upstream"),
            transport=MockTransport(anthropic_mock_upstream),
        )
        yield setup


def sdk(setup: Setup) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key=MASTER, base_url="http://gateway/v1", http_client=setup.http)


async def test_mock_echo_answers_json_valid_against_the_schema(setup: Setup) -> None:
    reply = await setup.http.post(
        "/v1/chat/completions",
        json={
            "model": "mock/echo",
            "messages": [{"role": "user", "content": "who?"}],
            "response_format": PERSON_FORMAT,
        },
    )
    assert reply.status_code == 200, reply.text
    choice = reply.json()["choices"][0]
    assert choice["finish_reason"] == "stop"
    answer = json.loads(choice["message"]["content"])
    assert set(answer) == {"name", "age"}
    assert isinstance(answer["name"], str)
    assert isinstance(answer["age"], int)


@pytest.mark.parametrize("model", ["mock/echo", "anthropic/claude-test"])
async def test_openai_sdk_parse_gets_a_pydantic_object(setup: Setup, model: str) -> None:
    completion = await sdk(setup).chat.completions.parse(
        model=model,
        messages=[{"role": "user", "content": "Describe a person."}],
        response_format=Person,
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert isinstance(choice.message.parsed, Person)


async def test_anthropic_upstream_streams_the_structured_answer_as_text(setup: Setup) -> None:
    stream = await sdk(setup).chat.completions.create(
        model="anthropic/claude-test",
        messages=[{"role": "user", "content": "Describe a person."}],
        response_format=PERSON_FORMAT,  # type: ignore[arg-type]
        stream=True,
    )
    text = ""
    finish = None
    async for chunk in stream:
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    assert set(json.loads(text)) == {"name", "age"}
    assert finish == "stop"


def test_ollama_dialect_decodes_format_into_the_canonical_field() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "who?"}]}
    decoded = ollama_dialect.decode_chat_request({**body, "format": PERSON_SCHEMA})
    assert decoded.response_format == ResponseFormat(type="json_schema", schema=PERSON_SCHEMA)
    decoded = ollama_dialect.decode_chat_request({**body, "format": "json"})
    assert decoded.response_format == ResponseFormat(type="json_object")
    assert ollama_dialect.decode_chat_request(body).response_format is None
    with pytest.raises(BadRequest, match="format"):
        ollama_dialect.decode_chat_request({**body, "format": 3})


# --- the Responses API and the Anthropic Messages API as callers -----------------------------


@pytest.mark.parametrize("model", ["mock/echo", "anthropic/claude-test"])
async def test_responses_parse_gets_a_pydantic_object(setup: Setup, model: str) -> None:
    response = await sdk(setup).responses.parse(
        model=model, input="Describe a person.", text_format=Person
    )
    assert isinstance(response.output_parsed, Person)
    assert response.text is not None and response.text.format is not None
    assert response.text.format.type == "json_schema"  # the format is echoed back


async def test_responses_stream_a_structured_answer(setup: Setup) -> None:
    async with sdk(setup).responses.stream(
        model="anthropic/claude-test", input="Describe a person.", text_format=Person
    ) as stream:
        response = await stream.get_final_response()
    assert isinstance(response.output_parsed, Person)


@pytest.mark.parametrize("key", ["output_config", "output_format"])
@pytest.mark.parametrize("model", ["mock/echo", "openai/gpt-test"])
async def test_anthropic_callers_structured_output_reaches_other_providers(
    setup: Setup, key: str, model: str
) -> None:
    spec = {"type": "json_schema", "schema": PERSON_SCHEMA}
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "Describe a person."}],
        key: {"format": spec} if key == "output_config" else spec,
    }
    seen: list[dict[str, Any]] = []
    if model.startswith("openai/"):
        setup.state.engine.router.backends["openai"] = HttpProvider(
            "openai",
            adapter_for("openai"),
            "http://upstream.test/v1",
            Secret("sk-upstream"),
            transport=MockTransport(_recording_openai_mock(seen)),
        )
    reply = await setup.http.post("/v1/messages", json=body)
    assert reply.status_code == 200, reply.text
    answer = json.loads(reply.json()["content"][0]["text"])
    assert set(answer) == {"name", "age"}
    if seen:
        assert seen[0]["response_format"]["json_schema"]["schema"] == PERSON_SCHEMA


def _recording_openai_mock(seen: list[dict[str, Any]]) -> Any:
    dialect = OpenAIDialectForMock()

    def answer(request: UpstreamRequest) -> MockReply:
        raw = json.loads(request.body or b"{}")
        seen.append(raw)
        chat = dialect.decode_chat(raw)
        return MockReply(200, dialect.encode_response(fold_events(mock_events(chat, chat.model))))

    return answer
