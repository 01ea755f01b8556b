"""The OpenAI Responses dialect: ``POST /v1/responses`` bodies in, responses and events out.

Encoded output is checked against the official ``openai`` SDK's pydantic types and read
by the real SDK client talking to an in-process ``httpx.MockTransport``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types import ErrorObject
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from modelway.dialects.responses import ResponsesDialect
from modelway.errors import BadRequest, RateLimited, UnknownModel, UpstreamStatusError
from modelway.types import (
    ChatRequest,
    ChatResponse,
    ImagePart,
    Message,
    MessageEnd,
    MessageStart,
    StreamEvent,
    TextDelta,
    TextPart,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolCallStart,
    Usage,
    UsageReport,
    fold_events,
    response_events,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "responses"
dialect = ResponsesDialect()
stream_event = TypeAdapter[Any](ResponseStreamEvent)

MINIMAL: dict[str, Any] = {"model": "gpt-4.1", "input": "Hello"}

TEXT_ANSWER = ChatResponse(
    id="chatcmpl-123",
    model="gpt-4.1",
    message=Message(role="assistant", content=[TextPart("Hello there!")]),
    usage=Usage(prompt_tokens=30, completion_tokens=4, cached_tokens=10),
    created=1700000000,
)

TOOL_ANSWER = ChatResponse(
    id="chatcmpl-456",
    model="gpt-4.1",
    message=Message(
        role="assistant",
        content=[TextPart("Let me check.")],
        tool_calls=[
            ToolCall(id="call_1", name="get_weather", arguments='{"city":"Paris"}'),
            ToolCall(id="call_2", name="get_time", arguments='{"zone":"CET"}'),
        ],
    ),
    stop_reason="tool_calls",
    usage=Usage(prompt_tokens=120, completion_tokens=40),
    created=1700000000,
)

TOOL_STREAM: list[StreamEvent] = [
    MessageStart(id="chatcmpl-456", model="gpt-4.1"),
    TextDelta("Let me "),
    TextDelta("check."),
    ToolCallStart(index=0, id="call_1", name="get_weather"),
    ToolCallDelta(index=0, arguments='{"city":'),
    ToolCallStart(index=1, id="call_2", name="get_time"),
    ToolCallDelta(index=1, arguments='{"zone":"CET"}'),
    ToolCallDelta(index=0, arguments='"Paris"}'),  # a late delta for an earlier call
    MessageEnd("tool_calls"),
    UsageReport(Usage(prompt_tokens=120, completion_tokens=40)),
]


def decode(**changes: Any) -> ChatRequest:
    return dialect.decode_chat({**MINIMAL, **changes})


def encode_stream(events: list[StreamEvent], request: ChatRequest | None = None) -> bytes:
    encoder = dialect.stream_encoder(request or ChatRequest(model="gpt-4.1", messages=[]))
    return b"".join(encoder.encode(event) for event in events) + encoder.finish()


def parse_sse(stream: bytes) -> list[dict[str, Any]]:
    """Each SSE event's data, checking that ``event:`` names the data's ``type``."""
    events = []
    for block in stream.decode().split("\n\n"):
        if not block:
            continue
        name_line, data_line = block.split("\n")
        data = orjson.loads(data_line.removeprefix("data: "))
        assert name_line == f"event: {data['type']}"
        events.append(data)
    return events


def sdk_client(handler: Any) -> openai.OpenAI:
    """The official SDK, answered in-process by ``handler`` (no socket is opened)."""
    return openai.OpenAI(
        api_key="sk-test",
        base_url="http://gateway.test/v1",
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        max_retries=0,
    )


def gateway(answer: ChatResponse, seen: list[ChatRequest] | None = None) -> Any:
    """A handler that decodes the SDK's request with the dialect and answers ``answer``."""

    def handler(http_request: httpx.Request) -> httpx.Response:
        assert http_request.url.path == "/v1/responses"
        request = dialect.decode_chat(orjson.loads(http_request.content))
        if seen is not None:
            seen.append(request)
        if not request.stream:
            return httpx.Response(200, content=dialect.encode_response(answer))
        events = response_events(answer)
        body = encode_stream(events, request)
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    return handler


# --- decoding: each input form ---------------------------------------------------------


def test_a_string_input_is_one_user_message() -> None:
    assert decode() == ChatRequest(
        model="gpt-4.1",
        messages=[Message(role="user", content=[TextPart("Hello")])],
        include_usage=True,
    )


def test_message_items_with_and_without_type_and_each_role_decode() -> None:
    request = decode(
        input=[
            {"role": "developer", "content": "Be terse."},
            {"role": "system", "content": [{"type": "input_text", "text": "No jokes."}]},
            {"type": "message", "role": "user", "content": "Hi"},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Hello!", "annotations": []}],
            },
        ]
    )
    assert request.messages == [
        Message(role="system", content=[TextPart("Be terse.")]),
        Message(role="system", content=[TextPart("No jokes.")]),
        Message(role="user", content=[TextPart("Hi")]),
        Message(role="assistant", content=[TextPart("Hello!")]),
    ]


def test_input_images_by_url_and_data_url_become_image_parts() -> None:
    content = [
        {"type": "input_text", "text": "What is this?"},
        {"type": "input_image", "image_url": "https://example.com/cat.jpg", "detail": "auto"},
        {"type": "input_image", "image_url": "data:image/jpeg;base64,/9j/4AAQ"},
    ]
    request = decode(input=[{"role": "user", "content": content}])
    assert request.messages[0].content == [
        TextPart("What is this?"),
        ImagePart(url="https://example.com/cat.jpg"),
        ImagePart(data="/9j/4AAQ", media_type="image/jpeg"),
    ]


def test_instructions_become_a_leading_system_message() -> None:
    request = decode(instructions="Answer in French.")
    assert request.messages[0] == Message(role="system", content=[TextPart("Answer in French.")])
    assert request.messages[1].role == "user"
    assert request.instructions == "Answer in French."  # echoed in the response object


def test_the_response_echoes_the_instructions_it_was_given() -> None:
    with sdk_client(gateway(TEXT_ANSWER)).responses.stream(
        model="gpt-4.1", instructions="Be brief.", input="Hi"
    ) as stream:
        response = stream.get_final_response()
    assert response.instructions == "Be brief."


def test_a_tool_round_trip_across_items_becomes_tool_calls_and_tool_messages() -> None:
    body = orjson.loads((FIXTURES / "request_tool_round_trip.json").read_bytes())
    request = dialect.decode_chat(body)
    assert request.messages == [
        Message(role="system", content=[TextPart("You are a weather assistant.")]),
        Message(role="user", content=[TextPart("Weather in Paris and Rome?")]),
        Message(
            role="assistant",
            content=[TextPart("Checking both.")],
            tool_calls=[
                ToolCall(id="call_paris", name="get_weather", arguments='{"city":"Paris"}'),
                ToolCall(id="call_rome", name="get_weather", arguments='{"city":"Rome"}'),
            ],
        ),
        Message(role="tool", content=[TextPart("18C, sunny")], tool_call_id="call_paris"),
        Message(role="tool", content=[TextPart("21C, cloudy")], tool_call_id="call_rome"),
        Message(role="user", content=[TextPart("Summarise.")]),
    ]
    assert request.tools == [
        Tool(
            name="get_weather",
            description="Current weather for a city.",
            parameters=body["tools"][0]["parameters"],
        )
    ]
    assert (request.tool_choice, request.temperature, request.max_tokens, request.user) == (
        "auto",
        0.2,
        512,
        "user-42",
    )
    assert request.extra == {}


def test_function_calls_without_preceding_text_start_an_assistant_message() -> None:
    call = {"type": "function_call", "call_id": "c1", "name": "now", "arguments": ""}
    request = decode(input=[{"role": "user", "content": "Time?"}, call])
    assert request.messages[1] == Message(
        role="assistant", tool_calls=[ToolCall(id="c1", name="now", arguments="{}")]
    )


def test_reasoning_items_sent_back_by_stateless_clients_are_skipped() -> None:
    reasoning = {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "x"}
    request = decode(input=[{"role": "user", "content": "Hi"}, reasoning])
    assert len(request.messages) == 1


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        (None, None),
        ({"type": "function", "name": "get_weather"}, "get_weather"),
    ],
)
def test_tool_choice_decodes(choice: Any, expected: str | None) -> None:
    assert decode(tool_choice=choice).tool_choice == expected


RESPONSES_TOOLS = [
    {"type": "function", "name": name, "parameters": {"type": "object", "properties": {}}}
    for name in ("a", "b", "c")
]


@pytest.mark.parametrize("mode", ["auto", "required"])
def test_allowed_tools_offer_only_the_tools_named(mode: str) -> None:
    allowed = [{"type": "function", "name": "c"}, {"type": "function", "name": "a"}]
    choice = {"type": "allowed_tools", "mode": mode, "tools": allowed}
    request = decode(tools=RESPONSES_TOOLS, tool_choice=choice)
    assert [tool.name for tool in request.tools] == ["a", "c"]
    assert request.tool_choice == mode
    body = orjson.loads(dialect.encode_response(TEXT_ANSWER, request))
    assert (body["tool_choice"], [t["name"] for t in body["tools"]]) == (mode, ["a", "c"])


@pytest.mark.parametrize(
    ("choice", "field"),
    [
        (
            {"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "z"}]},
            "tool_choice.tools.0",
        ),
        (
            {
                "type": "allowed_tools",
                "mode": "always",
                "tools": [{"type": "function", "name": "a"}],
            },
            "tool_choice.mode",
        ),
        ({"type": "allowed_tools", "mode": "auto", "tools": []}, "tool_choice.tools"),
        (
            {"type": "allowed_tools", "mode": "auto", "tools": [{"type": "mcp"}]},
            "tool_choice.tools.0",
        ),
        ({"type": "allowed_tools", "mode": "auto", "tools": "a"}, "tool_choice.tools"),
        (
            {
                "type": "allowed_tools",
                "mode": "auto",
                "tools": [{"type": "function", "name": "a"}] * 4,
            },
            "tool_choice.tools",
        ),
    ],
)
def test_allowed_tools_that_cannot_be_followed_are_a_400_naming_the_field(
    choice: dict[str, Any], field: str
) -> None:
    with pytest.raises(BadRequest) as caught:
        decode(tools=RESPONSES_TOOLS, tool_choice=choice)
    assert caught.value.message.startswith(field + ":"), caught.value.message


def test_parallel_tool_calls_false_is_echoed() -> None:
    request = decode(tools=RESPONSES_TOOLS, parallel_tool_calls=False)
    assert (
        orjson.loads(dialect.encode_response(TEXT_ANSWER, request))["parallel_tool_calls"] is False
    )
    assert (
        orjson.loads(dialect.encode_response(TEXT_ANSWER, decode()))["parallel_tool_calls"] is True
    )


def test_store_is_accepted_and_ignored() -> None:
    assert decode(store=True) == decode()


def test_previous_response_id_is_left_to_the_face() -> None:
    # gateway.response_state loads the conversation it names (tests/unit/test_response_state.py).
    assert decode(previous_response_id="resp_123") == decode()


def test_conversation_is_refused_saying_the_gateway_keeps_none() -> None:
    with pytest.raises(BadRequest) as caught:
        decode(conversation="conv_123")
    assert caught.value.message.startswith("conversation:")
    assert caught.value.status == 400


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"model": ""}, "model"),
        ({"model": None}, "model"),
        ({"input": None}, "input"),
        ({"input": []}, "input"),
        ({"input": [7]}, "input.0"),
        ({"input": [{"role": "robot", "content": "x"}]}, "input.0.role"),
        ({"input": [{"role": "user", "content": 5}]}, "input.0.content"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_audio"}]}]},
            "input.0.content.0.type",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_text"}]}]},
            "input.0.content.0.text",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
            "input.0.content.0.file_id",
        ),
        ({"input": [{"type": "function_call", "name": "f"}]}, "input.0.call_id"),
        ({"input": [{"type": "function_call", "call_id": "c"}]}, "input.0.name"),
        ({"input": [{"type": "function_call_output", "output": "x"}]}, "input.0.call_id"),
        ({"input": [{"type": "function_call_output", "call_id": "c"}]}, "input.0.output"),
        ({"input": [{"type": "web_search_call", "id": "ws"}]}, "input.0.type"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input.0.type"),
        ({"instructions": 3}, "instructions"),
        ({"tools": {"type": "function"}}, "tools"),
        ({"tools": [{"type": "custom", "name": "apply_patch"}]}, "tools.0.type"),
        ({"tools": [{"type": "namespace", "name": "ns", "tools": "x"}]}, "tools.0.tools"),
        ({"tools": [{"type": "function"}]}, "tools.0.name"),
        ({"tool_choice": "any"}, "tool_choice"),
        ({"tool_choice": {"type": "web_search_preview"}}, "tool_choice.type"),
        ({"tool_choice": {"type": "function"}}, "tool_choice.name"),
        ({"temperature": "hot"}, "temperature"),
        ({"top_p": True}, "top_p"),
        ({"max_output_tokens": 0}, "max_output_tokens"),
        ({"max_output_tokens": 1.5}, "max_output_tokens"),
        ({"stream": "yes"}, "stream"),
        ({"user": 42}, "user"),
        ({"conversation": "conv_1"}, "conversation"),
        ({"background": True}, "background"),
        (
            {"text": {"format": {"type": "json_schema", "name": "x", "schema": 1}}},
            "text.format.schema",
        ),
    ],
)
def test_invalid_fields_are_named_in_the_error(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(BadRequest) as caught:
        decode(**changes)
    assert caught.value.message.startswith(field + ":") or caught.value.message.startswith(
        field + "."
    ), caught.value.message


def test_unsupported_tool_types_say_they_are_not_supported() -> None:
    with pytest.raises(BadRequest, match="'custom' tools are not supported"):
        decode(tools=[{"type": "custom", "name": "apply_patch"}])


@pytest.mark.parametrize("kind", ["web_search", "web_search_2025_08_26", "file_search", "mcp"])
def test_hosted_tools_are_left_out_of_a_translated_request(kind: str) -> None:
    assert decode(tools=[{"type": kind}]).tools == []


def test_a_body_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(BadRequest, match="body"):
        dialect.decode_chat(["hi"])


# --- encoding complete answers ---------------------------------------------------------


def test_a_text_answer_is_a_valid_response_object() -> None:
    response = Response.model_validate_json(dialect.encode_response(TEXT_ANSWER))
    assert response.id == "resp_chatcmpl-123"
    assert response.status == "completed"
    assert response.output_text == "Hello there!"
    message = response.output[0]
    assert message.type == "message"
    assert message.id.startswith("msg_")
    assert message.status == "completed"
    assert response.usage is not None
    assert response.usage.model_dump(exclude_none=True) == {
        "input_tokens": 30,
        "input_tokens_details": {"cached_tokens": 10, "cache_write_tokens": 0},
        "output_tokens": 4,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 34,
    }


def test_tool_calls_are_function_call_items_after_the_message() -> None:
    response = Response.model_validate_json(dialect.encode_response(TOOL_ANSWER))
    kinds = [item.type for item in response.output]
    assert kinds == ["message", "function_call", "function_call"]
    call = response.output[1]
    assert call.type == "function_call"
    assert (call.id, call.call_id, call.name, call.arguments, call.status) == (
        "fc_call_1",
        "call_1",
        "get_weather",
        '{"city":"Paris"}',
        "completed",
    )


def test_a_tool_only_answer_has_no_message_item() -> None:
    message = Message(role="assistant", tool_calls=[ToolCall(id="c", name="f", arguments="{}")])
    answer = ChatResponse(id="r", model="m", message=message, stop_reason="tool_calls")
    response = Response.model_validate_json(dialect.encode_response(answer))
    assert [item.type for item in response.output] == ["function_call"]
    assert response.usage is None


def test_an_answer_cut_at_max_tokens_is_incomplete() -> None:
    answer = ChatResponse(id="r", model="m", message=TEXT_ANSWER.message, stop_reason="length")
    response = Response.model_validate_json(dialect.encode_response(answer))
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"


def test_errors_use_openais_envelope() -> None:
    body = orjson.loads(dialect.encode_error(UnknownModel("no model gpt-9")))
    error = ErrorObject.model_validate(body["error"])
    assert (error.message, error.type, error.code) == (
        "no model gpt-9",
        "not_found_error",
        "model_not_found",
    )


# --- encoding streams ------------------------------------------------------------------


def test_a_text_stream_follows_the_documented_event_sequence() -> None:
    events = parse_sse(encode_stream(response_events(TEXT_ANSWER)))
    for event in events:
        stream_event.validate_python(event)
    assert [event["type"] for event in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [event["sequence_number"] for event in events] == list(range(len(events)))
    completed = Response.model_validate(events[-1]["response"])
    assert completed.output_text == "Hello there!"
    assert completed.usage is not None and completed.usage.total_tokens == 34
    assert {event["response"]["id"] for event in (events[0], events[1], events[-1])} == {
        "resp_chatcmpl-123"
    }


def test_a_tool_stream_has_function_call_items_with_argument_deltas() -> None:
    events = parse_sse(encode_stream(TOOL_STREAM))
    for event in events:
        stream_event.validate_python(event)
    kinds = [event["type"] for event in events]
    assert kinds[kinds.index("response.output_item.done")] == "response.output_item.done"
    assert kinds[-5:] == [
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    done = {e["item_id"]: e["arguments"] for e in events if e["type"].endswith("arguments.done")}
    assert done == {"fc_call_1": '{"city":"Paris"}', "fc_call_2": '{"zone":"CET"}'}
    final = Response.model_validate(events[-1]["response"])
    assert [item.type for item in final.output] == ["message", "function_call", "function_call"]


def test_function_call_arguments_done_names_the_function() -> None:
    events = parse_sse(encode_stream(TOOL_STREAM))
    names = [e.get("name") for e in events if e["type"] == "response.function_call_arguments.done"]
    assert names == ["get_weather", "get_time"]


def test_completed_waits_for_usage_that_follows_the_message_end() -> None:
    encoder = dialect.stream_encoder(ChatRequest(model="gpt-4.1", messages=[]))
    before = encoder.encode(MessageStart(id="r1", model="gpt-4.1")) + encoder.encode(
        TextDelta("Hi")
    )
    at_end = encoder.encode(MessageEnd("stop"))
    assert b"response.completed" not in before + at_end
    usage = encoder.encode(UsageReport(Usage(prompt_tokens=3, completion_tokens=1)))
    (completed,) = parse_sse(usage)
    assert completed["type"] == "response.completed"
    assert completed["response"]["usage"]["total_tokens"] == 4
    assert encoder.finish() == b""


def test_finish_sends_the_held_completed_without_usage_and_no_done_marker() -> None:
    encoder = dialect.stream_encoder(ChatRequest(model="gpt-4.1", messages=[]))
    encoder.encode(MessageStart(id="r1", model="gpt-4.1"))
    encoder.encode(TextDelta("Hi"))
    encoder.encode(MessageEnd("stop"))
    tail = encoder.finish()
    assert b"[DONE]" not in tail
    (completed,) = parse_sse(tail)
    assert Response.model_validate(completed["response"]).usage is None


def test_a_stream_cut_at_max_tokens_ends_with_response_incomplete() -> None:
    events: list[StreamEvent] = [
        MessageStart(id="r", model="m"),
        TextDelta("abc"),
        MessageEnd("length"),
    ]
    last = parse_sse(encode_stream(events))[-1]
    stream_event.validate_python(last)
    assert last["type"] == "response.incomplete"
    assert last["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert last["response"]["output"][0]["status"] == "incomplete"


def test_the_stream_echoes_the_request_settings() -> None:
    request = dialect.decode_chat(
        orjson.loads((FIXTURES / "request_tool_round_trip.json").read_bytes())
    )
    created = parse_sse(encode_stream([MessageStart(id="r", model="gpt-4.1")], request))[0]
    response = Response.model_validate(created["response"])
    assert response.status == "in_progress"
    assert [tool.name for tool in response.tools if tool.type == "function"] == ["get_weather"]
    assert (response.temperature, response.max_output_tokens, response.user) == (
        0.2,
        512,
        "user-42",
    )


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (RateLimited("slow down"), "rate_limit_exceeded"),
        (UpstreamStatusError("boom", upstream_status=500), "server_error"),
    ],
)
def test_a_failure_mid_stream_is_an_error_event_then_response_failed(error: Any, code: str) -> None:
    encoder = dialect.stream_encoder(ChatRequest(model="gpt-4.1", messages=[]))
    encoder.encode(MessageStart(id="r1", model="gpt-4.1"))
    encoder.encode(TextDelta("Hi"))
    error_event, failed = parse_sse(encoder.error(error))
    stream_event.validate_python(error_event)
    stream_event.validate_python(failed)
    assert (error_event["type"], error_event["message"]) == ("error", error.message)
    assert failed["type"] == "response.failed"
    assert failed["response"]["status"] == "failed"
    assert failed["response"]["error"] == {"code": code, "message": error.message}
    # What was streamed stays in the failed response, marked incomplete.
    (message,) = failed["response"]["output"]
    assert message["status"] == "incomplete"
    assert message["content"][0]["text"] == "Hi"
    assert encoder.encode(TextDelta("more")) == b"" and encoder.finish() == b""


def test_a_failure_before_any_event_still_opens_the_response_first() -> None:
    encoder = dialect.stream_encoder(ChatRequest(model="gpt-4.1", messages=[]))
    kinds = [event["type"] for event in parse_sse(encoder.error(RateLimited("slow")))]
    assert kinds == ["response.created", "response.in_progress", "error", "response.failed"]


@settings(max_examples=50, deadline=None)
@given(
    text=st.lists(st.text(min_size=1, max_size=8), max_size=5),
    arguments=st.lists(st.lists(st.text(max_size=6), max_size=4), max_size=3),
)
def test_the_completed_response_is_the_fold_of_the_streamed_events(
    text: list[str], arguments: list[list[str]]
) -> None:
    events: list[StreamEvent] = [MessageStart(id="r", model="m")]
    events += [TextDelta(piece) for piece in text]
    for index, pieces in enumerate(arguments):
        events.append(ToolCallStart(index=index, id=f"call_{index}", name=f"tool_{index}"))
        events += [ToolCallDelta(index=index, arguments=piece) for piece in pieces]
    events += [MessageEnd("tool_calls" if arguments else "stop"), UsageReport(Usage(1, 2))]
    streamed = parse_sse(encode_stream(events))
    for event in streamed:
        stream_event.validate_python(event)
    final = Response.model_validate(streamed[-1]["response"])
    whole = Response.model_validate_json(dialect.encode_response(fold_events(events)))
    assert final.output_text == whole.output_text == "".join(text)
    calls = [(i.call_id, i.arguments) for i in final.output if i.type == "function_call"]
    assert calls == [(i.call_id, i.arguments) for i in whole.output if i.type == "function_call"]
    deltas = "".join(e["delta"] for e in streamed if e["type"] == "response.output_text.delta")
    assert deltas == "".join(text)


# --- the official SDK reading our output ------------------------------------------------


def test_the_sdk_sends_a_request_the_dialect_decodes() -> None:
    seen: list[ChatRequest] = []
    sdk_client(gateway(TEXT_ANSWER, seen)).responses.create(
        model="gpt-4.1",
        instructions="Be brief.",
        input=[
            {"role": "user", "content": "Weather?"},
            {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
        ],
        tools=[{"type": "function", "name": "get_weather", "parameters": {}, "strict": False}],
        max_output_tokens=64,
    )
    (request,) = seen
    assert [m.role for m in request.messages] == ["system", "user", "assistant", "tool"]
    assert request.tools[0].name == "get_weather"
    assert request.max_tokens == 64


def test_the_sdk_reads_a_complete_response() -> None:
    response = sdk_client(gateway(TOOL_ANSWER)).responses.create(model="gpt-4.1", input="Hi")
    assert response.output_text == "Let me check."
    assert [item.type for item in response.output] == ["message", "function_call", "function_call"]
    assert response.usage is not None and response.usage.input_tokens == 120


def test_the_sdk_reads_a_streamed_text_answer() -> None:
    stream = sdk_client(gateway(TEXT_ANSWER)).responses.create(
        model="gpt-4.1", input="Hi", stream=True
    )
    events = list(stream)
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == "Hello there!"
    assert events[-1].type == "response.completed"
    assert events[-1].response.usage is not None
    assert events[-1].response.usage.output_tokens == 4


def test_the_sdk_stream_helper_gives_the_final_response_with_a_function_call() -> None:
    client = sdk_client(gateway(TOOL_ANSWER))
    with client.responses.stream(model="gpt-4.1", input="Weather in Paris?") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert "response.function_call_arguments.done" in kinds
    assert final.output_text == "Let me check."
    calls = [item for item in final.output if item.type == "function_call"]
    assert [(c.call_id, c.name, c.arguments) for c in calls] == [
        ("call_1", "get_weather", '{"city":"Paris"}'),
        ("call_2", "get_time", '{"zone":"CET"}'),
    ]
    assert final.usage is not None and final.usage.total_tokens == 160


def test_the_sdk_raises_the_encoded_error_with_its_message() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, content=dialect.encode_error(BadRequest("input: required")))

    with pytest.raises(openai.BadRequestError, match="input: required"):
        sdk_client(handler).responses.create(model="gpt-4.1", input="Hi")


def test_the_sdk_sees_a_failed_stream_as_error_then_response_failed() -> None:
    def handler(http_request: httpx.Request) -> httpx.Response:
        encoder = dialect.stream_encoder(dialect.decode_chat(orjson.loads(http_request.content)))
        body = encoder.encode(MessageStart(id="r1", model="gpt-4.1")) + encoder.encode(
            TextDelta("Hi")
        )
        body += encoder.error(RateLimited("slow down"))
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    with sdk_client(handler).responses.stream(model="gpt-4.1", input="Hi") as stream:
        events = list(stream)
        with pytest.raises(RuntimeError, match=r"response\.completed"):
            stream.get_final_response()
    assert [event.type for event in events][-2:] == ["error", "response.failed"]
    failed = events[-1]
    assert failed.type == "response.failed"
    assert failed.response.error is not None and failed.response.error.message == "slow down"


def test_an_empty_answer_still_streams_an_empty_message_item() -> None:
    events = parse_sse(encode_stream([MessageStart(id="r", model="m"), MessageEnd("stop")]))
    for event in events:
        stream_event.validate_python(event)
    final = Response.model_validate(events[-1]["response"])
    whole = Response.model_validate_json(
        dialect.encode_response(fold_events([MessageStart(id="r", model="m"), MessageEnd("stop")]))
    )
    assert (
        [item.type for item in final.output] == [item.type for item in whole.output] == ["message"]
    )
    assert final.output_text == ""


# --- prompt cache usage --------------------------------------------------------------


def test_answer_usage_counts_cache_reads_and_writes_inside_input_tokens() -> None:
    usage = Usage(
        prompt_tokens=1230, completion_tokens=5, cached_tokens=1000, cache_write_tokens=200
    )
    response = ChatResponse(
        id="r1", model="m", message=Message(role="assistant", content=[TextPart("hi")]), usage=usage
    )
    body = orjson.loads(dialect.encode_response(response))
    assert body["usage"]["input_tokens"] == 1230
    assert body["usage"]["input_tokens_details"] == {
        "cached_tokens": 1000,
        "cache_write_tokens": 200,
    }
    Response.model_validate(body)
