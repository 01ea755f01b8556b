"""The mock provider's engine: deterministic answers, tool calls and usage."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelway.mock.engine import (
    mock_answer_text,
    mock_embedding,
    mock_events,
    mock_response,
    schema_example,
    split_words,
)
from modelway.types import (
    ChatRequest,
    ImagePart,
    Message,
    MessageEnd,
    MessageStart,
    ResponseFormat,
    TextDelta,
    TextPart,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolCallStart,
    UsageReport,
)


def user(text: str) -> Message:
    return Message(role="user", content=[TextPart(text)])


def chat(*messages: Message, tools: list[Tool] | None = None, **fields: Any) -> ChatRequest:
    return ChatRequest(model="echo", messages=list(messages), tools=tools or [], **fields)


WEATHER = Tool(
    name="get_weather",
    description="Weather for a city",
    parameters={
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer", "minimum": 3},
        },
        "required": ["city", "unit"],
    },
)
CLOCK = Tool(name="get_time", parameters={"type": "object", "properties": {}})


def conforms(value: Any, schema: dict[str, Any], root: dict[str, Any] | None = None) -> bool:
    """A small JSON Schema checker for the keywords tool schemas use."""
    root = root or schema
    if "$ref" in schema:
        node: Any = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        return conforms(value, node, root)
    if "const" in schema:
        return bool(value == schema["const"])
    if "enum" in schema:
        return value in schema["enum"]
    if "anyOf" in schema:
        return any(conforms(value, option, root) for option in schema["anyOf"])
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    checks = {
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
        None: lambda v: True,
    }
    if not any(checks[k](value) for k in kinds):
        return False
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        if any(name not in value for name in schema.get("required", [])):
            return False
        return all(conforms(v, properties.get(k, {}), root) for k, v in value.items())
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            return False
        return all(conforms(item, schema.get("items", {}), root) for item in value)
    if isinstance(value, str):
        return len(value) >= schema.get("minLength", 0)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return bool(schema.get("minimum", -math.inf) <= value <= schema.get("maximum", math.inf))
    return True


def text_of(events: list[Any]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


# --- text answers ----------------------------------------------------------------------


def test_echo_answers_with_the_last_user_message_verbatim() -> None:
    text = "  Grüße, 世界!\n\tTabs\tand  double  spaces 🎉 \n"
    request = chat(user("first question"), Message(role="assistant"), user(text))
    response = mock_response(request, "echo")
    assert response.message.text() == text
    assert response.stop_reason == "stop"
    assert response.model == "echo"


def test_echo_streams_one_word_with_its_whitespace_per_delta() -> None:
    events = mock_events(chat(user("Hello there,  world!\n")), "echo")
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert deltas == ["Hello ", "there,  ", "world!\n"]


def test_echo_accepts_a_provider_prefixed_name() -> None:
    assert mock_response(chat(user("hi you")), "mock/echo").message.text() == "hi you"


@given(st.text())
def test_word_pieces_concatenate_to_the_exact_text(text: str) -> None:
    pieces = split_words(text)
    assert "".join(pieces) == text
    assert all(piece for piece in pieces)


@given(st.text(min_size=1))
def test_echo_deltas_concatenate_to_the_user_text(text: str) -> None:
    assert text_of(mock_events(chat(user(text)), "echo")) == text


def test_other_models_answer_with_fixed_text_naming_the_model() -> None:
    first = mock_response(chat(user("anything")), "mock-1")
    second = mock_response(chat(user("something else entirely")), "mock-1")
    assert first.message.text() == second.message.text() == mock_answer_text("mock-1")
    assert "mock-1" in first.message.text()
    assert "gpt-mock" in mock_response(chat(user("x")), "gpt-mock").message.text()


def test_events_follow_the_canonical_stream_shape() -> None:
    events = mock_events(chat(user("one two")), "echo")
    assert isinstance(events[0], MessageStart)
    assert isinstance(events[-2], MessageEnd)
    assert isinstance(events[-1], UsageReport)
    assert events[0].id.startswith("mock-")


def test_each_answer_has_its_own_id() -> None:
    request = chat(user("hi"))
    assert mock_response(request, "echo").id != mock_response(request, "echo").id


# --- usage -----------------------------------------------------------------------------


def test_usage_counts_words_of_prompt_and_reply_and_is_reported() -> None:
    request = chat(
        Message(role="system", content=[TextPart("be brief")]),
        user("three little words"),
    )
    usage = mock_response(request, "echo").usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (5, 3)
    assert usage.estimated is False
    assert mock_response(request, "echo").usage == usage


# --- tools -----------------------------------------------------------------------------


def test_offered_tools_are_called_with_arguments_fitting_the_schema() -> None:
    response = mock_response(chat(user("weather?"), tools=[WEATHER, CLOCK]), "mock-1")
    assert response.stop_reason == "tool_calls"
    assert response.message.text() == ""
    [call] = response.message.tool_calls
    assert call.name == "get_weather"
    assert call.id
    arguments = orjson.loads(call.arguments)
    assert conforms(arguments, WEATHER.parameters)
    assert arguments == {"city": "mock", "unit": "celsius"}


def test_tool_call_streams_as_start_then_arguments() -> None:
    events = mock_events(chat(user("time?"), tools=[CLOCK]), "echo")
    start, delta = events[1], events[2]
    assert isinstance(start, ToolCallStart) and start.name == "get_time" and start.index == 0
    assert isinstance(delta, ToolCallDelta) and orjson.loads(delta.arguments) == {}


def test_tool_choice_naming_a_tool_calls_that_tool() -> None:
    request = chat(user("time?"), tools=[WEATHER, CLOCK], tool_choice="get_time")
    assert mock_response(request, "mock-1").message.tool_calls[0].name == "get_time"


def test_a_user_message_saying_call_a_tool_calls_that_tool_with_its_arguments() -> None:
    # How an agent's test makes the mock use one of the agent's many tools.
    request = chat(user('please call get_weather {"city": "Oslo"} now'), tools=[CLOCK, WEATHER])
    [call] = mock_response(request, "echo").message.tool_calls
    assert (call.name, orjson.loads(call.arguments)) == ("get_weather", {"city": "Oslo"})


@pytest.mark.parametrize("text", ["call get_weather", "call get_weather [1]", "call get_weather {"])
def test_call_without_a_json_object_uses_the_schemas_example(text: str) -> None:
    [call] = mock_response(chat(user(text), tools=[CLOCK, WEATHER]), "echo").message.tool_calls
    assert call.name == "get_weather"
    assert orjson.loads(call.arguments) == {"city": "mock", "unit": "celsius"}


def test_call_naming_no_offered_tool_calls_the_first() -> None:
    [call] = mock_response(
        chat(user("call nothing"), tools=[CLOCK, WEATHER]), "echo"
    ).message.tool_calls
    assert call.name == "get_time"


def test_tool_choice_none_answers_in_text() -> None:
    request = chat(user("just talk"), tools=[WEATHER], tool_choice="none")
    response = mock_response(request, "echo")
    assert response.message.tool_calls == []
    assert response.message.text() == "just talk"
    assert response.stop_reason == "stop"


def test_a_tool_result_is_answered_in_text_that_mentions_it() -> None:
    request = chat(
        user("weather in Paris?"),
        Message(
            role="assistant",
            tool_calls=[ToolCall(id="call_1", name="get_weather", arguments='{"city": "Paris"}')],
        ),
        Message(role="tool", tool_call_id="call_1", content=[TextPart("22 degrees and sunny")]),
        tools=[WEATHER],
    )
    response = mock_response(request, "mock-1")
    assert response.stop_reason == "stop"
    assert response.message.tool_calls == []
    assert "22 degrees and sunny" in response.message.text()
    assert "get_weather" in response.message.text()


def tool_turn(result: list[Any]) -> list[Message]:
    return [
        user("weather in Paris?"),
        Message(
            role="assistant",
            tool_calls=[ToolCall(id="call_1", name="get_weather", arguments='{"city": "Paris"}')],
        ),
        Message(role="tool", tool_call_id="call_1", content=result),
    ]


def test_a_system_turn_after_the_users_does_not_hide_their_call() -> None:
    # Claude Code appends one after the user's turn when the model is not Claude-named.
    request = chat(
        user('call get_weather {"city": "Oslo"}'),
        Message(role="system", content=[TextPart("<system-reminder>")]),
        tools=[CLOCK, WEATHER],
    )
    [call] = mock_response(request, "echo").message.tool_calls
    assert (call.name, orjson.loads(call.arguments)) == ("get_weather", {"city": "Oslo"})


def test_an_image_a_tool_returned_is_part_of_its_result_not_a_new_question() -> None:
    # Some formats carry a tool's image as a user turn of its own after the result.
    image = Message(role="user", content=[ImagePart(data="aGk=", media_type="image/png")])
    request = chat(*tool_turn([TextPart("a picture")]), image, tools=[WEATHER])
    response = mock_response(request, "mock-1")
    assert response.message.tool_calls == []
    assert "The get_weather tool returned: a picture" in response.message.text()


def test_after_tool_results_a_schema_is_answered_as_the_final_structured_answer() -> None:
    # An agent with an output type and tools: the answer after the tools fits the schema.
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    request = chat(
        *tool_turn([TextPart("22 degrees")]),
        tools=[WEATHER],
        response_format=ResponseFormat(type="json_schema", schema=schema),
    )
    assert conforms(orjson.loads(mock_response(request, "mock-1").message.text()), schema)
    json_mode = chat(*tool_turn([TextPart("22 degrees")]), tools=[WEATHER],
                     response_format=ResponseFormat(type="json_object"))  # fmt: skip
    assert (
        "The get_weather tool returned: 22 degrees" in mock_response(json_mode, "x").message.text()
    )


def test_a_tool_required_after_results_is_one_not_called_yet() -> None:
    # Anthropic's "any" with the caller's tools and the one a structured answer comes in.
    answer = Tool(name="final_answer", parameters={"type": "object", "properties": {}})
    request = chat(*tool_turn([TextPart("22")]), tools=[WEATHER, answer], tool_choice="required")
    [call] = mock_response(request, "mock-1").message.tool_calls
    assert call.name == "final_answer"


SCHEMAS: list[dict[str, Any]] = [
    {"type": "string"},
    {"type": "string", "minLength": 10},
    {"type": "string", "format": "date"},
    {"type": "integer", "minimum": 5, "maximum": 9},
    {"type": "number", "maximum": 0},
    {"type": "boolean"},
    {"type": "array", "items": {"type": "integer"}},
    {"type": "array", "items": {"type": "string"}, "minItems": 2},
    {"const": "fixed"},
    {"type": "string", "default": "preset"},
    {"type": ["string", "null"]},
    {"anyOf": [{"type": "null"}, {"type": "integer"}]},
    {
        "type": "object",
        "properties": {
            "address": {
                "type": "object",
                "properties": {"street": {"type": "string"}, "zip": {"type": "integer"}},
                "required": ["zip"],
            },
            "tags": {"type": "array", "items": {"$ref": "#/$defs/Tag"}},
        },
        "$defs": {"Tag": {"type": "object", "properties": {"name": {"type": "string"}}}},
    },
]


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: orjson.dumps(s).decode()[:40])
def test_schema_examples_satisfy_their_schema(schema: dict[str, Any]) -> None:
    assert conforms(schema_example(schema), schema)


def test_schema_example_uses_const_and_default_when_given() -> None:
    assert schema_example({"type": "integer", "default": 7}) == 7
    assert schema_example({"const": 3}) == 3


def test_object_without_required_list_fills_every_property() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "boolean"}}}
    assert schema_example(schema) == {"a": "mock", "b": True}


# --- embeddings ------------------------------------------------------------------------


@given(st.text(), st.integers(min_value=1, max_value=64))
def test_embeddings_are_deterministic_unit_vectors(text: str, dimensions: int) -> None:
    vector = mock_embedding(text, dimensions)
    assert len(vector) == dimensions
    assert math.isclose(math.sqrt(sum(v * v for v in vector)), 1.0, rel_tol=1e-9)
    assert vector == mock_embedding(text, dimensions)


def test_different_texts_embed_differently() -> None:
    assert mock_embedding("cat") != mock_embedding("dog")
    assert len(mock_embedding("cat")) == 8
