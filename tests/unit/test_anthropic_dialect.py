"""The Anthropic dialect: Messages API requests in, messages, SSE and errors out."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import msgspec
import orjson
import pytest
from anthropic.types.shared import ErrorResponse
from hypothesis import given
from hypothesis import strategies as st

from modelway.dialects.anthropic import AnthropicDialect
from modelway.errors import (
    AuthenticationError,
    BadRequest,
    ConnectError,
    ModelwayError,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    StreamTruncated,
    Timeout,
    UnknownModel,
    UpstreamStatusError,
)
from modelway.providers.anthropic import AnthropicAdapter
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
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "anthropic"
dialect = AnthropicDialect()
adapter = AnthropicAdapter()

WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}}


def request_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "Hello"}],
    }
    body.update(overrides)
    return body


def encode_stream(events: list[StreamEvent], model: str = "claude-sonnet-4-5") -> bytes:
    encoder = dialect.stream_encoder(ChatRequest(model=model, messages=[]))
    return b"".join(encoder.encode(event) for event in events) + encoder.finish()


def decode_stream(data: bytes) -> list[StreamEvent]:
    decoder = adapter.stream_decoder()
    return decoder.feed(data) + decoder.close()


def sdk_client(handler: Callable[[httpx2.Request], httpx2.Response]) -> anthropic.Anthropic:
    # This anthropic SDK is built on httpx2, so its in-process fake comes from there.
    transport = httpx2.MockTransport(handler)
    return anthropic.Anthropic(
        api_key="mw-test",
        base_url="http://gateway.test",
        http_client=httpx2.Client(transport=transport),
        max_retries=0,
    )


TEXT_ANSWER = ChatResponse(
    id="msg_01XFDUDYJgAACzvnptvVoYEL",
    model="claude-sonnet-4-5",
    message=Message(role="assistant", content=[TextPart("Hello there!")]),
    stop_reason="stop",
    usage=Usage(prompt_tokens=30, completion_tokens=4, cached_tokens=10),
    created=1700000000,
)

TOOL_ANSWER = ChatResponse(
    id="msg_014p7gG3wDgGV9EUtLvnow3U",
    model="claude-sonnet-4-5",
    message=Message(
        role="assistant",
        content=[TextPart("Let me check.")],
        tool_calls=[
            ToolCall(id="toolu_1", name="get_weather", arguments='{"city":"Paris"}'),
            ToolCall(id="toolu_2", name="get_time", arguments='{"zone":"CET","utc":false}'),
        ],
    ),
    stop_reason="tool_calls",
    usage=Usage(prompt_tokens=120, completion_tokens=40),
    created=1700000000,
)

TOOL_STREAM: list[StreamEvent] = [
    MessageStart(id="msg_014p7gG3wDgGV9EUtLvnow3U", model="claude-sonnet-4-5"),
    TextDelta("Let me "),
    TextDelta("check."),
    ToolCallStart(index=0, id="toolu_1", name="get_weather"),
    ToolCallDelta(index=0, arguments='{"city": '),
    ToolCallDelta(index=0, arguments='"Paris"}'),
    ToolCallStart(index=1, id="toolu_2", name="get_time"),
    ToolCallDelta(index=1, arguments='{"zone": "CET"}'),
    MessageEnd("tool_calls"),
    UsageReport(Usage(prompt_tokens=120, completion_tokens=40, cached_tokens=100)),
]


# --- decoding requests ---------------------------------------------------------------


def test_a_minimal_request_decodes_to_canonical_form() -> None:
    request = dialect.decode_chat(request_body())
    assert request == ChatRequest(
        model="claude-sonnet-4-5",
        messages=[Message(role="user", content=[TextPart("Hello")])],
        max_tokens=256,
        include_usage=True,
    )


def test_system_as_string_or_text_blocks_becomes_a_system_message() -> None:
    as_string = dialect.decode_chat(request_body(system="Be terse."))
    blocks = [{"type": "text", "text": "Be terse."}, {"type": "text", "text": " Be kind."}]
    as_blocks = dialect.decode_chat(request_body(system=blocks))
    assert as_string.messages[0] == Message(role="system", content=[TextPart("Be terse.")])
    assert as_blocks.system_text() == "Be terse. Be kind."


def test_text_and_image_blocks_become_parts() -> None:
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]
    request = dialect.decode_chat(request_body(messages=[{"role": "user", "content": content}]))
    assert request.messages[0].content == [
        TextPart("What is this?"),
        ImagePart(data="iVBO", media_type="image/png"),
        ImagePart(url="https://example.com/cat.jpg"),
    ]


def test_tool_use_and_tool_results_become_tool_calls_and_tool_messages() -> None:
    messages = [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "two calls", "signature": "sig"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "t2", "name": "get_weather", "input": {"city": "Rome"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "18C"},
                {
                    "type": "tool_result",
                    "tool_use_id": "t2",
                    "content": [{"type": "text", "text": "no data"}],
                    "is_error": True,
                },
                {"type": "text", "text": "Summarise."},
            ],
        },
    ]
    request = dialect.decode_chat(request_body(messages=messages))
    assert request.messages[1:] == [
        Message(
            role="assistant",
            content=[TextPart("Checking.")],
            tool_calls=[
                ToolCall(id="t1", name="get_weather", arguments='{"city":"Paris"}'),
                ToolCall(id="t2", name="get_weather", arguments='{"city":"Rome"}'),
            ],
            reasoning="two calls",
            reasoning_signature="anthropic:sig",
        ),
        Message(role="tool", content=[TextPart("18C")], tool_call_id="t1"),
        Message(role="tool", content=[TextPart("Error: no data")], tool_call_id="t2"),
        Message(role="user", content=[TextPart("Summarise.")]),
    ]


def test_a_decoded_tool_conversation_builds_the_same_anthropic_turns() -> None:
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "Weather?"}]},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t1", "name": "w", "input": {"c": "Paris"}}],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "t1",
                    "content": [{"type": "text", "text": "18C"}],
                }
            ],
        },
    ]
    body = request_body(messages=messages, tools=[{"name": "w", "input_schema": WEATHER_SCHEMA}])
    http = adapter.chat_request(dialect.decode_chat(body), "claude-sonnet-4-5")
    assert http.body is not None
    assert orjson.loads(http.body)["messages"] == messages


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "get_weather"}, "get_weather"),
    ],
)
def test_tools_and_tool_choice_decode(choice: dict[str, str], expected: str) -> None:
    tools = [{"name": "get_weather", "description": "Now.", "input_schema": WEATHER_SCHEMA}]
    request = dialect.decode_chat(request_body(tools=tools, tool_choice=choice))
    assert request.tools == [
        Tool(name="get_weather", description="Now.", parameters=WEATHER_SCHEMA)
    ]
    assert request.tool_choice == expected


def test_sampling_stop_stream_and_metadata_user_decode() -> None:
    request = dialect.decode_chat(
        request_body(
            temperature=0,
            top_p=0.5,
            stop_sequences=["END"],
            stream=True,
            metadata={"user_id": "u-42"},
            top_k=3,
        )
    )
    assert (request.temperature, request.top_p, request.stop) == (0.0, 0.5, ["END"])
    assert (request.stream, request.include_usage, request.user) == (True, True, "u-42")
    assert request.extra == {}


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(body: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = body
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value

    return mutate


BLOCK_MESSAGES = [
    {"role": "user", "content": "a"},
    {"role": "assistant", "content": "b"},
    {"role": "user", "content": [{"type": "text", "text": "c"}]},
]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (_set("model", ""), "model: required"),
        (_set("max_tokens", 0), "max_tokens: required, a positive integer"),
        (_set("max_tokens", True), "max_tokens: required, a positive integer"),
        (_set("max_tokens", "100"), "max_tokens: required, a positive integer"),
        (_set("messages", []), "messages: required, a non-empty list"),
        (
            _set("messages.0.role", "developer"),
            "messages.0.role: must be 'user', 'assistant' or 'system'",
        ),
        (_set("messages.0.content", 5), "messages.0.content: must be a string or a list"),
        (
            _set("messages.2.content.0", {"type": "foo"}),
            "messages.2.content.0.type: unknown block type 'foo'",
        ),
        (
            _set("messages.2.content.0", {"type": "document"}),
            "messages.2.content.0.type: 'document' blocks are not supported",
        ),
        (
            _set("messages.2.content.0", {"type": "tool_use", "id": "t", "name": "f"}),
            "messages.2.content.0.type: 'tool_use' blocks are not allowed in user messages",
        ),
        (
            _set("messages.1.content", [{"type": "tool_result", "tool_use_id": "t"}]),
            "messages.1.content.0.type: 'tool_result' blocks are not allowed in assistant",
        ),
        (_set("messages.2.content.0.text", 7), "messages.2.content.0.text: required"),
        (
            _set("messages.2.content.0", {"type": "image", "source": {"type": "file"}}),
            "messages.2.content.0.source.type: must be 'base64' or 'url'",
        ),
        (
            _set("messages.2.content.0", {"type": "image", "source": {"type": "base64"}}),
            "messages.2.content.0.source.data: required",
        ),
        (
            _set("messages.1.content", [{"type": "tool_use", "id": "t", "name": "f", "input": 1}]),
            "messages.1.content.0.input: must be an object",
        ),
        (
            _set("messages.2.content.0", {"type": "tool_result", "content": "x"}),
            "messages.2.content.0.tool_use_id: required",
        ),
        (
            _set(
                "messages.2.content.0", {"type": "tool_result", "tool_use_id": "t", "is_error": 1}
            ),
            "messages.2.content.0.is_error: must be a boolean",
        ),
        (
            _set("messages.2.content.0", {"type": "tool_result", "tool_use_id": "t", "content": 3}),
            "messages.2.content.0.content: must be a string or a list",
        ),
        (_set("system", [{"type": "image"}]), "system.0.type: system blocks must be 'text'"),
        (_set("system", 3), "system: must be a string or a list of text blocks"),
        (_set("tools", [{"name": "f"}]), "tools.0.input_schema: required"),
        (_set("tools", [{"type": "web_search_20250305", "name": "s"}]), "tools.0.type: server"),
        (_set("tool_choice", {"type": "sometimes"}), "tool_choice.type: must be auto, any"),
        (_set("tool_choice", {"type": "tool"}), "tool_choice.name: required"),
        (_set("temperature", "hot"), "temperature: must be a number"),
        (_set("stop_sequences", "END"), "stop_sequences: must be a list of strings"),
        (_set("stream", "yes"), "stream: must be a boolean"),
        (_set("metadata", {"user_id": 5}), "metadata.user_id: required, a string"),
    ],
)
def test_invalid_requests_are_bad_requests_naming_the_field(
    mutate: Callable[[dict[str, Any]], None], message: str
) -> None:
    body = request_body(messages=copy.deepcopy(BLOCK_MESSAGES))
    mutate(body)
    with pytest.raises(BadRequest) as caught:
        dialect.decode_chat(body)
    assert caught.value.message.startswith(message), caught.value.message


def test_a_body_that_is_not_an_object_is_a_bad_request() -> None:
    with pytest.raises(BadRequest, match="body: expected a JSON object"):
        dialect.decode_chat(["not", "an", "object"])


# --- encoding answers ----------------------------------------------------------------


@pytest.mark.parametrize("answer", [TEXT_ANSWER, TOOL_ANSWER], ids=["text", "tool_use"])
def test_encoded_response_parses_back_to_the_same_answer(answer: ChatResponse) -> None:
    parsed = adapter.parse_chat(dialect.encode_response(answer))
    assert msgspec.structs.replace(parsed, created=answer.created) == answer


def test_encoded_response_is_a_valid_sdk_message() -> None:
    message = anthropic.types.Message.model_validate_json(dialect.encode_response(TOOL_ANSWER))
    assert message.id == "msg_014p7gG3wDgGV9EUtLvnow3U"
    assert message.stop_reason == "tool_use"
    assert message.stop_sequence is None
    assert [block.type for block in message.content] == ["text", "tool_use", "tool_use"]
    tool_use = message.content[1]
    assert isinstance(tool_use, anthropic.types.ToolUseBlock)
    assert tool_use.input == {"city": "Paris"}
    assert (message.usage.input_tokens, message.usage.output_tokens) == (120, 40)


def test_encoded_fixture_answers_survive_a_parse_and_encode_round_trip() -> None:
    for name in ("message_text.json", "message_tool_use.json"):
        parsed = adapter.parse_chat((FIXTURES / name).read_bytes())
        again = adapter.parse_chat(dialect.encode_response(parsed))
        assert msgspec.structs.replace(again, created=parsed.created) == parsed


def test_response_ids_without_msg_prefix_get_one() -> None:
    answer = msgspec.structs.replace(TEXT_ANSWER, id="chatcmpl-123")
    assert orjson.loads(dialect.encode_response(answer))["id"] == "msg_chatcmpl-123"


def test_tool_calls_ending_with_plain_stop_are_reported_as_tool_use() -> None:
    answer = msgspec.structs.replace(TOOL_ANSWER, stop_reason="stop")
    assert orjson.loads(dialect.encode_response(answer))["stop_reason"] == "tool_use"


@pytest.mark.parametrize(
    ("reason", "expected"),
    [("stop", "end_turn"), ("length", "max_tokens"), ("content_filter", "refusal")],
)
def test_stop_reasons_encode_in_anthropic_words(reason: str, expected: str) -> None:
    answer = msgspec.structs.replace(TEXT_ANSWER, stop_reason=reason)
    assert orjson.loads(dialect.encode_response(answer))["stop_reason"] == expected


def test_the_sdk_client_reads_an_encoded_answer() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        assert request.url.path == "/v1/messages"
        return httpx2.Response(200, content=dialect.encode_response(TEXT_ANSWER))

    message = sdk_client(handler).messages.create(
        model="claude-test-model", max_tokens=64, messages=[{"role": "user", "content": "Hi"}]
    )
    assert message.content[0].type == "text"
    assert message.content[0].text == "Hello there!"


# --- encoding streams ----------------------------------------------------------------


def sse_names(data: bytes) -> list[str]:
    return [line[7:] for line in data.decode().splitlines() if line.startswith("event: ")]


def test_stream_encoder_emits_the_documented_event_sequence() -> None:
    assert sse_names(encode_stream(TOOL_STREAM)) == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


def test_encoded_stream_decodes_back_to_the_same_events() -> None:
    assert decode_stream(encode_stream(TOOL_STREAM)) == TOOL_STREAM


def test_message_delta_waits_for_usage_that_follows_message_end() -> None:
    encoder = dialect.stream_encoder(ChatRequest(model="m", messages=[]))
    encoder.encode(MessageStart(id="msg_1", model="m"))
    encoder.encode(TextDelta("hi"))
    assert sse_names(encoder.encode(MessageEnd("stop"))) == ["content_block_stop"]
    usage = encoder.encode(UsageReport(Usage(prompt_tokens=5, completion_tokens=2)))
    assert sse_names(usage) == ["message_delta", "message_stop"]
    assert b'"output_tokens":2' in usage
    assert encoder.finish() == b""


def test_finish_sends_the_held_message_delta_when_usage_never_came() -> None:
    encoder = dialect.stream_encoder(ChatRequest(model="m", messages=[]))
    encoder.encode(MessageStart(id="msg_1", model="m"))
    encoder.encode(TextDelta("hi"))
    encoder.encode(MessageEnd("length"))
    data = encoder.finish()
    assert sse_names(data) == ["message_delta", "message_stop"]
    assert b'"stop_reason":"max_tokens"' in data


def test_the_sdk_client_accumulates_an_encoded_stream() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        headers = {"content-type": "text/event-stream"}
        return httpx2.Response(200, headers=headers, content=encode_stream(TOOL_STREAM))

    client = sdk_client(handler)
    with client.messages.stream(
        model="claude-test-model", max_tokens=64, messages=[{"role": "user", "content": "Hi"}]
    ) as stream:
        message = stream.get_final_message()
    assert message.id == "msg_014p7gG3wDgGV9EUtLvnow3U"
    assert message.stop_reason == "tool_use"
    assert [block.type for block in message.content] == ["text", "tool_use", "tool_use"]
    assert message.content[0].type == "text"
    assert message.content[0].text == "Let me check."
    assert message.content[1].type == "tool_use"
    assert message.content[1].input == {"city": "Paris"}
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens) == (20, 100)
    assert message.usage.output_tokens == 40


def test_interleaved_parallel_tool_calls_become_blocks_that_never_overlap() -> None:
    # An OpenAI-format upstream may send call 1's start between two pieces of call 0.
    events: list[StreamEvent] = [
        MessageStart(id="msg_1", model="m"),
        ToolCallStart(index=0, id="call_A", name="get_weather"),
        ToolCallDelta(index=0, arguments='{"city": '),
        ToolCallStart(index=1, id="call_B", name="get_time"),
        ToolCallDelta(index=1, arguments='{"zone": '),
        ToolCallDelta(index=0, arguments='"Paris"}'),
        ToolCallDelta(index=1, arguments='"CET"}'),
        MessageEnd("tool_calls"),
        UsageReport(Usage(prompt_tokens=5, completion_tokens=7)),
    ]

    def handler(request: httpx2.Request) -> httpx2.Response:
        headers = {"content-type": "text/event-stream"}
        return httpx2.Response(200, headers=headers, content=encode_stream(events))

    client = sdk_client(handler)
    open_block: int | None = None
    finished: dict[int, Any] = {}
    with client.messages.stream(
        model="m", max_tokens=64, messages=[{"role": "user", "content": "Hi"}]
    ) as stream:
        for event in stream:
            if event.type == "content_block_start":
                assert open_block is None, "a block began before the last one stopped"
                open_block = event.index
            elif event.type == "content_block_delta":
                assert event.index == open_block, "a piece for a block that is not open"
            elif event.type == "content_block_stop":
                assert event.index == open_block
                finished[event.index] = event.content_block  # the SDK's block as it stopped
                open_block = None
        message = stream.get_final_message()
    assert [(block.id, block.input) for block in finished.values()] == [
        ("call_A", {"city": "Paris"}),
        ("call_B", {"zone": "CET"}),
    ]
    assert [block.input for block in message.content] == [{"city": "Paris"}, {"zone": "CET"}]
    assert message.stop_reason == "tool_use"


def test_stream_error_is_an_anthropic_error_event() -> None:
    encoder = dialect.stream_encoder(ChatRequest(model="m", messages=[]))
    encoder.encode(MessageStart(id="msg_1", model="m"))
    data = encoder.error(UpstreamStatusError("Overloaded", upstream_status=529))
    assert data.startswith(b"event: error\ndata: ")
    body = orjson.loads(data.split(b"data: ", 1)[1])
    assert body == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    assert encoder.finish() == b""
    with pytest.raises(UpstreamStatusError) as caught:
        adapter.stream_decoder().feed(data)
    assert caught.value.retryable


segments = st.lists(
    st.one_of(
        st.text(min_size=1, max_size=20),
        st.tuples(
            st.from_regex(r"toolu_[A-Za-z0-9]{1,8}", fullmatch=True),
            st.sampled_from(["get_weather", "search"]),
            st.lists(st.text(min_size=1, max_size=10), max_size=3),
        ),
    ),
    max_size=6,
)


@given(
    segments=segments,
    stop=st.sampled_from(["stop", "length", "tool_calls", "content_filter"]),
    cached=st.integers(min_value=0, max_value=1000),
    fresh=st.integers(min_value=0, max_value=1000),
    completion=st.integers(min_value=0, max_value=1000),
)
def test_any_canonical_stream_survives_the_anthropic_wire(
    segments: list[Any], stop: Any, cached: int, fresh: int, completion: int
) -> None:
    events: list[StreamEvent] = [MessageStart(id="msg_x", model="claude-x")]
    calls = 0
    for segment in segments:
        if isinstance(segment, str):
            events.append(TextDelta(segment))
            continue
        call_id, name, pieces = segment
        events.append(ToolCallStart(index=calls, id=call_id, name=name))
        events.extend(ToolCallDelta(index=calls, arguments=piece) for piece in pieces)
        calls += 1
    usage = Usage(prompt_tokens=cached + fresh, completion_tokens=completion, cached_tokens=cached)
    events += [MessageEnd(stop), UsageReport(usage)]
    decoded = decode_stream(encode_stream(events))
    if calls and stop == "stop":
        events[-2] = MessageEnd("tool_calls")  # Claude clients run tools only on tool_use.
    # A call that begins while another's block is open is sent whole once that block
    # stops (blocks never overlap): its pieces arrive joined, in the same order.
    assert _joined_pieces(decoded) == _joined_pieces(events)


def _joined_pieces(events: list[StreamEvent]) -> list[StreamEvent]:
    joined: list[StreamEvent] = []
    for event in events:
        last = joined[-1] if joined else None
        if (
            isinstance(event, ToolCallDelta)
            and isinstance(last, ToolCallDelta)
            and last.index == event.index
        ):
            joined[-1] = ToolCallDelta(
                index=event.index, arguments=last.arguments + event.arguments
            )
        else:
            joined.append(event)
    return joined


# --- errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "error_type"),
    [
        (BadRequest("bad"), "invalid_request_error"),
        (AuthenticationError("who"), "authentication_error"),
        (PermissionDenied("no"), "permission_error"),
        (NotFound("gone"), "not_found_error"),
        (UnknownModel("which"), "not_found_error"),
        (PayloadTooLarge("big"), "request_too_large"),
        (RateLimited("slow", retry_after=3), "rate_limit_error"),
        (UpstreamStatusError("busy", upstream_status=529), "overloaded_error"),
        (UpstreamStatusError("busy", upstream_status=503), "overloaded_error"),
        (UpstreamStatusError("boom", upstream_status=500), "api_error"),
        (UpstreamStatusError("limit", upstream_status=429), "rate_limit_error"),
        (UpstreamStatusError("nope", upstream_status=422), "invalid_request_error"),
        (Timeout("slow"), "timeout_error"),
        (ConnectError("down"), "api_error"),
        (StreamTruncated("cut"), "api_error"),
        (ModelwayError("oops"), "api_error"),
    ],
)
def test_errors_encode_in_anthropic_vocabulary(error: ModelwayError, error_type: str) -> None:
    body = orjson.loads(dialect.encode_error(error))
    assert body == {"type": "error", "error": {"type": error_type, "message": error.message}}
    if error_type != "request_too_large":  # documented, but absent from the SDK's union
        assert ErrorResponse.model_validate(body).error.type == error_type


# --- prompt cache usage --------------------------------------------------------------

#: 30 uncached prompt tokens, 1000 read from the cache and 200 written to it, 150 of
#: them for an hour.
CACHE_USAGE = Usage(
    prompt_tokens=1230,
    completion_tokens=5,
    cached_tokens=1000,
    cache_write_tokens=200,
    cache_write_1h_tokens=150,
)
ANTHROPIC_CACHE_USAGE = {
    "input_tokens": 30,
    "cache_creation_input_tokens": 200,
    "cache_read_input_tokens": 1000,
    "cache_creation": {"ephemeral_5m_input_tokens": 50, "ephemeral_1h_input_tokens": 150},
    "output_tokens": 5,
}


def test_answer_usage_says_input_tokens_without_the_cache_reads_and_writes() -> None:
    response = ChatResponse(
        id="msg_1",
        model="m",
        message=Message(role="assistant", content=[TextPart("hi")]),
        usage=CACHE_USAGE,
    )
    assert orjson.loads(dialect.encode_response(response))["usage"] == ANTHROPIC_CACHE_USAGE


def test_stream_message_delta_usage_carries_the_cache_reads_and_writes() -> None:
    encoder = dialect.stream_encoder(ChatRequest(model="m", messages=[]))
    out = b"".join(
        encoder.encode(event)
        for event in (MessageStart(id="msg_1", model="m"), TextDelta("hi"), MessageEnd("stop"))
    )
    out += encoder.encode(UsageReport(CACHE_USAGE)) + encoder.finish()
    deltas = [
        orjson.loads(line[6:])
        for line in out.split(b"\n")
        if line.startswith(b"data: ") and b'"message_delta"' in line
    ]
    assert [delta["usage"] for delta in deltas] == [ANTHROPIC_CACHE_USAGE]


def test_cache_usage_round_trips_through_the_anthropic_adapter() -> None:
    response = ChatResponse(
        id="msg_1",
        model="m",
        message=Message(role="assistant", content=[TextPart("hi")]),
        usage=CACHE_USAGE,
    )
    assert adapter.parse_chat(dialect.encode_response(response)).usage == CACHE_USAGE
