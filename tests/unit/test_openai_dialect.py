"""The OpenAI Chat Completions dialect: callers' requests in, answers and chunks out.

Encoded output is checked three ways: against the official ``openai`` SDK's types, by
the real SDK client talking to an in-process ``httpx.MockTransport``, and by decoding it
back with the OpenAI provider adapter (which must give the canonical value back).
"""

from __future__ import annotations

from typing import Any

import httpx
import msgspec
import openai
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types import ErrorObject
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from modelway.dialects.openai import ChunkEncoder, OpenAIDialect, encode_error_body
from modelway.errors import (
    BadRequest,
    ContextWindowExceeded,
    ModelwayError,
    RateLimited,
    UnknownModel,
    UpstreamStatusError,
)
from modelway.providers.openai import OpenAIAdapter
from modelway.types import (
    ChatRequest,
    ChatResponse,
    ImagePart,
    Message,
    MessageEnd,
    MessageStart,
    ResponseFormat,
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

dialect = OpenAIDialect()
adapter = OpenAIAdapter()

MINIMAL = {"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]}


def decode(**changes: Any) -> ChatRequest:
    return dialect.decode_chat({**MINIMAL, **changes})


def encode_stream(events: list[StreamEvent], include_usage: bool) -> bytes:
    encoder = ChunkEncoder(include_usage=include_usage)
    return b"".join(encoder.encode(event) for event in events) + encoder.finish()


def decode_stream(stream: bytes) -> list[StreamEvent]:
    decoder = adapter.stream_decoder()
    return decoder.feed(stream) + decoder.close()


def sdk_client(handler: Any) -> openai.OpenAI:
    """The official SDK, answered in-process by ``handler`` (no socket is opened).

    Newer SDKs type ``http_client`` as ``httpx2.Client`` but accept an ``httpx`` one;
    ``httpx`` is the project's dependency, so the fake uses it.
    """
    transport = httpx.MockTransport(handler)
    return openai.OpenAI(
        api_key="sk-test",
        base_url="http://gateway.test/v1",
        http_client=httpx.Client(transport=transport),
        max_retries=0,
    )


# --- decoding: validation errors name the field -----------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"messages": MINIMAL["messages"]}, "model"),
        ({**MINIMAL, "model": ""}, "model"),
        ({**MINIMAL, "model": 4}, "model"),
        ({"model": "m"}, "messages"),
        ({**MINIMAL, "messages": []}, "messages"),
        ({**MINIMAL, "messages": "hi"}, "messages"),
        ({**MINIMAL, "messages": ["hi"]}, "messages.0"),
        ({**MINIMAL, "messages": [{"role": "robot", "content": "x"}]}, "messages.0.role"),
        ({**MINIMAL, "messages": [{"content": "x"}]}, "messages.0.role"),
        ({**MINIMAL, "messages": [{"role": "user", "content": 5}]}, "messages.0.content"),
        (
            {**MINIMAL, "messages": [{"role": "user", "content": ["x"]}]},
            "messages.0.content.0",
        ),
        (
            {
                **MINIMAL,
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "text", "text": "a"}, {"type": "input_audio"}],
                    }
                ],
            },
            "messages.0.content.1.type",
        ),
        (
            {**MINIMAL, "messages": [{"role": "user", "content": [{"type": "text", "text": 3}]}]},
            "messages.0.content.0.text",
        ),
        (
            {
                **MINIMAL,
                "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}],
            },
            "messages.0.content.0.image_url.url",
        ),
        (
            {**MINIMAL, "messages": [MINIMAL["messages"][0], {"role": "tool", "content": "r"}]},
            "messages.1.tool_call_id",
        ),
        (
            {**MINIMAL, "messages": [{"role": "assistant", "tool_calls": {"id": "x"}}]},
            "messages.0.tool_calls",
        ),
        (
            {**MINIMAL, "messages": [{"role": "assistant", "tool_calls": [{"id": "x"}]}]},
            "messages.0.tool_calls.0.function",
        ),
        (
            {
                **MINIMAL,
                "messages": [
                    {"role": "assistant", "tool_calls": [{"id": "x", "function": {"name": 1}}]}
                ],
            },
            "messages.0.tool_calls.0.function.name",
        ),
        ({**MINIMAL, "tools": {"type": "function"}}, "tools"),
        ({**MINIMAL, "tools": [{"type": "function"}]}, "tools.0.function"),
        ({**MINIMAL, "tools": [{"type": "function", "function": {}}]}, "tools.0.function.name"),
        ({**MINIMAL, "tool_choice": "sometimes"}, "tool_choice"),
        ({**MINIMAL, "tool_choice": {"type": "function"}}, "tool_choice.function.name"),
        ({**MINIMAL, "tool_choice": 3}, "tool_choice.function.name"),
        ({**MINIMAL, "max_tokens": 0}, "max_tokens"),
        ({**MINIMAL, "max_tokens": -5}, "max_tokens"),
        ({**MINIMAL, "max_tokens": 1.5}, "max_tokens"),
        ({**MINIMAL, "max_tokens": "100"}, "max_tokens"),
        ({**MINIMAL, "max_tokens": True}, "max_tokens"),
        ({**MINIMAL, "max_completion_tokens": 0}, "max_completion_tokens"),
        ({**MINIMAL, "stream": "true"}, "stream"),
        ({**MINIMAL, "stream": 1}, "stream"),
        ({**MINIMAL, "stream": True, "stream_options": "usage"}, "stream_options"),
        ({**MINIMAL, "temperature": "hot"}, "temperature"),
        ({**MINIMAL, "top_p": True}, "top_p"),
        ({**MINIMAL, "stop": 5}, "stop"),
        ({**MINIMAL, "stop": ["END", 5]}, "stop"),
    ],
)
def test_invalid_request_is_a_bad_request_naming_the_field(body: Any, field: str) -> None:
    with pytest.raises(BadRequest) as raised:
        dialect.decode_chat(body)

    assert raised.value.status == 400
    assert raised.value.message.startswith(f"{field}:"), raised.value.message


@pytest.mark.parametrize("body", [None, [], "hello", 3])
def test_body_that_is_not_an_object_is_a_bad_request(body: Any) -> None:
    with pytest.raises(BadRequest, match="JSON object"):
        dialect.decode_chat(body)


# --- decoding: a realistic request ------------------------------------------------------

REALISTIC = {
    "model": "gpt-4.1",
    "messages": [
        {"role": "developer", "content": "You are terse."},
        {"role": "system", "content": [{"type": "text", "text": "Use metric units."}]},
        {
            "role": "user",
            "name": "ann",
            "content": [
                {"type": "text", "text": "What is the weather here?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/sky.jpg"}},
                {
                    "type": "image_url",
                    "image_url": {"url": "data:image/webp;base64,UklGRg==", "detail": "low"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_abc",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                },
                {
                    "id": "call_def",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": {"tz": "Europe/Paris"}},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_abc", "content": "18C, sunny"},
        {
            "role": "tool",
            "tool_call_id": "call_def",
            "content": [{"type": "text", "text": "14:05"}],
        },
    ],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        },
        {"type": "function", "function": {"name": "get_time"}},
    ],
    "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    "temperature": 0.2,
    "top_p": 1,
    "max_tokens": 999,
    "max_completion_tokens": 300,
    "stop": "END",
    "stream": True,
    "stream_options": {"include_usage": True},
    "user": "user-42",
    "seed": 7,
    "response_format": {"type": "json_object"},
    "parallel_tool_calls": False,
    "metadata": {"team": "search"},
}


def test_realistic_request_decodes_into_the_canonical_request() -> None:
    assert dialect.decode_chat(REALISTIC) == ChatRequest(
        model="gpt-4.1",
        messages=[
            Message(role="system", content=[TextPart("You are terse.")]),
            Message(role="system", content=[TextPart("Use metric units.")]),
            Message(
                role="user",
                name="ann",
                content=[
                    TextPart("What is the weather here?"),
                    ImagePart(url="https://example.com/sky.jpg"),
                    ImagePart(data="UklGRg==", media_type="image/webp"),
                ],
            ),
            Message(
                role="assistant",
                tool_calls=[
                    ToolCall("call_abc", "get_weather", '{"city":"Paris"}'),
                    ToolCall("call_def", "get_time", '{"tz":"Europe/Paris"}'),
                ],
            ),
            Message(role="tool", content=[TextPart("18C, sunny")], tool_call_id="call_abc"),
            Message(role="tool", content=[TextPart("14:05")], tool_call_id="call_def"),
        ],
        tools=[
            Tool(
                "get_weather",
                "Current weather",
                {"type": "object", "properties": {"city": {"type": "string"}}},
            ),
            Tool("get_time", "", {"type": "object", "properties": {}}),
        ],
        tool_choice="get_weather",
        parallel_tool_calls=False,
        temperature=0.2,
        top_p=1,
        max_tokens=300,
        stop=["END"],
        stream=True,
        include_usage=True,
        user="user-42",
        response_format=ResponseFormat(type="json_object"),
        extra={"seed": 7, "metadata": {"team": "search"}},
    )


def test_developer_role_becomes_system() -> None:
    request = decode(messages=[{"role": "developer", "content": "Rules."}])

    assert request.messages == [Message(role="system", content=[TextPart("Rules.")])]
    assert request.system_text() == "Rules."


def test_include_usage_is_false_unless_asked_for() -> None:
    assert decode(stream=True).include_usage is False
    assert decode(stream=True, stream_options={"include_usage": False}).include_usage is False
    assert decode(stream=True, stream_options=None).include_usage is False
    assert decode(stream=True, stream_options={"include_usage": True}).include_usage is True


@pytest.mark.parametrize("choice", ["auto", "none", "required", None])
def test_tool_choice_keywords_decode_as_themselves(choice: str | None) -> None:
    assert decode(tool_choice=choice).tool_choice == choice


def test_allowed_tools_offer_only_the_tools_named() -> None:
    tools = [{"type": "function", "function": {"name": n}} for n in ("a", "b", "c")]
    allowed = {"mode": "required", "tools": [{"type": "function", "function": {"name": "b"}}]}
    request = decode(tools=tools, tool_choice={"type": "allowed_tools", "allowed_tools": allowed})
    assert ([t.name for t in request.tools], request.tool_choice) == (["b"], "required")
    unknown = {"mode": "auto", "tools": [{"type": "function", "function": {"name": "z"}}]}
    with pytest.raises(BadRequest, match=r"^tool_choice\.allowed_tools\.tools\.0:"):
        decode(tools=tools, tool_choice={"type": "allowed_tools", "allowed_tools": unknown})
    with pytest.raises(BadRequest, match=r"^tool_choice\.allowed_tools:"):
        decode(tools=tools, tool_choice={"type": "allowed_tools"})


def test_max_tokens_is_used_when_max_completion_tokens_is_absent_or_null() -> None:
    assert decode(max_tokens=64).max_tokens == 64
    assert decode(max_tokens=64, max_completion_tokens=None).max_tokens == 64


def test_empty_string_content_and_null_content_are_no_parts() -> None:
    request = decode(
        messages=[{"role": "user", "content": ""}, {"role": "assistant", "content": None}]
    )

    assert [m.content for m in request.messages] == [[], []]


def test_canonical_fields_do_not_leak_into_extra() -> None:
    assert dialect.decode_chat(REALISTIC).extra.keys() == {"seed", "metadata"}


def test_request_sent_by_the_openai_sdk_decodes() -> None:
    sent: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(orjson.loads(request.content))
        return httpx.Response(500)

    with pytest.raises(openai.InternalServerError):
        sdk_client(handler).chat.completions.create(
            model="gpt-4.1",
            messages=[
                {"role": "developer", "content": "Be brief."},
                {"role": "user", "content": "Weather?"},
            ],
            tools=[
                {
                    "type": "function",
                    "function": {"name": "get_weather", "parameters": {"type": "object"}},
                }
            ],
            tool_choice="required",
            max_completion_tokens=50,
            stream=True,
            stream_options={"include_usage": True},
        )

    request = dialect.decode_chat(sent[0])

    assert request.messages[0] == Message(role="system", content=[TextPart("Be brief.")])
    assert request.tools == [Tool("get_weather", "", {"type": "object"})]
    assert (request.tool_choice, request.max_tokens) == ("required", 50)
    assert (request.stream, request.include_usage) == (True, True)


# --- encoding answers -------------------------------------------------------------------

TEXT_ANSWER = ChatResponse(
    id="chatcmpl-1",
    model="gpt-4.1",
    message=Message(role="assistant", content=[TextPart("Hello \u2014 there!")]),
    stop_reason="stop",
    usage=Usage(prompt_tokens=12, completion_tokens=4, cached_tokens=8),
    created=1741569952,
)
TOOL_ANSWER = ChatResponse(
    id="chatcmpl-2",
    model="gpt-4.1",
    message=Message(
        role="assistant",
        tool_calls=[
            ToolCall("call_a", "get_weather", '{"city":"Paris"}'),
            ToolCall("call_b", "get_time", '{"tz":"Europe/Paris"}'),
        ],
    ),
    stop_reason="tool_calls",
    usage=Usage(prompt_tokens=50, completion_tokens=30),
    created=1741569953,
)


def test_encoded_text_answer_is_a_valid_chat_completion() -> None:
    completion = ChatCompletion.model_validate_json(dialect.encode_response(TEXT_ANSWER))

    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content == "Hello \u2014 there!"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.total_tokens == 16
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 8


def test_encoded_tool_answer_has_null_content_and_every_call() -> None:
    completion = ChatCompletion.model_validate_json(dialect.encode_response(TOOL_ANSWER))
    message = completion.choices[0].message

    assert message.content is None
    assert message.tool_calls is not None
    assert [(c.id, c.function.name, c.function.arguments) for c in message.tool_calls] == [  # type: ignore[union-attr]
        ("call_a", "get_weather", '{"city":"Paris"}'),
        ("call_b", "get_time", '{"tz":"Europe/Paris"}'),
    ]


def test_answer_without_usage_has_no_usage_field() -> None:
    answer = ChatResponse(id="c", model="m", message=Message(role="assistant"), created=1)

    assert "usage" not in orjson.loads(dialect.encode_response(answer))


def test_answer_without_created_gets_the_current_time() -> None:
    answer = ChatResponse(id="c", model="m", message=Message(role="assistant"))

    assert orjson.loads(dialect.encode_response(answer))["created"] > 1_700_000_000


@pytest.mark.parametrize("answer", [TEXT_ANSWER, TOOL_ANSWER])
def test_encoded_answer_parsed_by_the_adapter_gives_the_answer_back(answer: ChatResponse) -> None:
    assert adapter.parse_chat(dialect.encode_response(answer)) == answer


utf8_text = st.text(st.characters(codec="utf-8"), max_size=30)
nonempty_text = st.text(st.characters(codec="utf-8"), min_size=1, max_size=30)
tokens = st.integers(0, 2**31)
usages = st.builds(Usage, prompt_tokens=tokens, completion_tokens=tokens, cached_tokens=tokens)
tool_calls = st.builds(ToolCall, id=nonempty_text, name=utf8_text, arguments=nonempty_text)
answers = st.builds(
    ChatResponse,
    id=utf8_text,
    model=utf8_text,
    message=st.builds(
        Message,
        role=st.just("assistant"),
        content=st.one_of(st.just([]), nonempty_text.map(lambda t: [TextPart(t)])),
        tool_calls=st.lists(tool_calls, max_size=3),
    ),
    stop_reason=st.sampled_from(["stop", "length", "tool_calls", "content_filter"]),
    usage=st.one_of(st.none(), usages),
    created=st.integers(1, 2**40),
)


@settings(max_examples=75, deadline=None)
@given(answers)
def test_any_encoded_answer_round_trips_through_the_adapter(answer: ChatResponse) -> None:
    encoded = dialect.encode_response(answer)

    ChatCompletion.model_validate_json(encoded)
    assert adapter.parse_chat(encoded) == answer


@settings(max_examples=75, deadline=None)
@given(answers)
def test_folding_an_answers_events_gives_the_answer_back(answer: ChatResponse) -> None:
    folded = fold_events(response_events(answer))

    assert msgspec.structs.replace(folded, created=answer.created) == answer


def test_folding_fills_empty_tool_arguments_and_orders_calls_by_index() -> None:
    folded = fold_events(
        [
            MessageStart(id="c", model="m"),
            ToolCallStart(index=1, id="call_b", name="later"),
            ToolCallStart(index=0, id="call_a", name="first"),
            ToolCallDelta(index=1, arguments='{"x":1}'),
            MessageEnd("tool_calls"),
        ]
    )

    assert folded.message.tool_calls == [
        ToolCall("call_a", "first", "{}"),
        ToolCall("call_b", "later", '{"x":1}'),
    ]
    assert (folded.usage, folded.message.content) == (None, [])


def test_folding_a_stream_without_message_end_stops_normally() -> None:
    assert fold_events([MessageStart(id="c", model="m"), TextDelta("hi")]).stop_reason == "stop"


def test_openai_sdk_client_reads_an_encoded_answer() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=dialect.encode_response(TOOL_ANSWER))

    completion = sdk_client(handler).chat.completions.create(
        model="gpt-4.1", messages=[{"role": "user", "content": "hi"}]
    )

    assert completion.id == "chatcmpl-2"
    assert completion.choices[0].finish_reason == "tool_calls"
    assert completion.choices[0].message.tool_calls is not None
    assert len(completion.choices[0].message.tool_calls) == 2


# --- encoding streams -------------------------------------------------------------------

TEXT_EVENTS: list[StreamEvent] = [
    MessageStart(id="chatcmpl-3", model="gpt-4.1"),
    TextDelta("Hel"),
    TextDelta("lo \u2014 "),
    TextDelta("there\n"),
    MessageEnd("stop"),
    UsageReport(Usage(prompt_tokens=10, completion_tokens=3, cached_tokens=2)),
]
TOOL_EVENTS: list[StreamEvent] = [
    MessageStart(id="chatcmpl-4", model="gpt-4.1"),
    TextDelta("Checking."),
    ToolCallStart(index=0, id="call_a", name="get_weather"),
    ToolCallDelta(index=0, arguments='{"ci'),
    ToolCallDelta(index=0, arguments='ty":"Paris"}'),
    ToolCallStart(index=1, id="call_b", name="get_time"),
    ToolCallDelta(index=1, arguments="{}"),
    MessageEnd("tool_calls"),
    UsageReport(Usage(prompt_tokens=40, completion_tokens=20)),
]


def without_usage(events: list[StreamEvent]) -> list[StreamEvent]:
    return [event for event in events if not isinstance(event, UsageReport)]


def sse_data(stream: bytes) -> list[bytes]:
    frames = stream.split(b"\n\n")
    assert frames[-1] == b""
    assert all(frame.startswith(b"data: ") for frame in frames[:-1])
    return [frame.removeprefix(b"data: ") for frame in frames[:-1]]


@pytest.mark.parametrize("events", [TEXT_EVENTS, TOOL_EVENTS])
def test_encoded_stream_with_usage_decodes_to_the_same_events(events: list[StreamEvent]) -> None:
    assert decode_stream(encode_stream(events, include_usage=True)) == events


@pytest.mark.parametrize("events", [TEXT_EVENTS, TOOL_EVENTS])
def test_encoded_stream_without_usage_drops_only_the_usage(events: list[StreamEvent]) -> None:
    assert decode_stream(encode_stream(events, include_usage=False)) == without_usage(events)


@pytest.mark.parametrize("include_usage", [True, False])
def test_every_encoded_chunk_is_a_valid_chat_completion_chunk(include_usage: bool) -> None:
    data = sse_data(encode_stream(TOOL_EVENTS, include_usage))

    assert data[-1] == b"[DONE]"
    chunks = [ChatCompletionChunk.model_validate_json(item) for item in data[:-1]]
    assert {chunk.id for chunk in chunks} == {"chatcmpl-4"}
    assert len({chunk.created for chunk in chunks}) == 1
    usage_chunks = [chunk for chunk in chunks if chunk.usage is not None]
    if include_usage:
        assert len(usage_chunks) == 1
        assert usage_chunks[0].choices == []
        assert usage_chunks[0] is chunks[-1]
    else:
        assert usage_chunks == []


def test_stream_of_a_folded_answer_round_trips() -> None:
    events = response_events(TOOL_ANSWER)

    assert decode_stream(encode_stream(events, include_usage=True)) == events


text_events = nonempty_text.map(TextDelta)


@st.composite
def event_sequences(draw: st.DrawFn) -> list[StreamEvent]:
    events: list[StreamEvent] = [MessageStart(id=draw(utf8_text), model=draw(utf8_text))]
    events += draw(st.lists(text_events, max_size=4))
    for index in range(draw(st.integers(0, 3))):
        events.append(ToolCallStart(index=index, id=draw(nonempty_text), name=draw(utf8_text)))
        arguments = draw(st.lists(nonempty_text, max_size=3))
        events += [ToolCallDelta(index=index, arguments=piece) for piece in arguments]
    events.append(MessageEnd(draw(st.sampled_from(["stop", "length", "tool_calls"]))))
    if draw(st.booleans()):
        events.append(UsageReport(draw(usages)))
    return events


@settings(max_examples=75, deadline=None)
@given(event_sequences(), st.booleans())
def test_any_encoded_stream_decodes_to_the_same_events(
    events: list[StreamEvent], include_usage: bool
) -> None:
    stream = encode_stream(events, include_usage)

    for item in sse_data(stream)[:-1]:
        ChatCompletionChunk.model_validate_json(item)
    expected = events if include_usage else without_usage(events)
    assert decode_stream(stream) == expected


def test_openai_sdk_client_reads_an_encoded_stream() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            content=encode_stream(TOOL_EVENTS, include_usage=True),
            headers={"content-type": "text/event-stream"},
        )

    stream = sdk_client(handler).chat.completions.create(
        model="gpt-4.1",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    arguments: dict[int, str] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or []:
                piece = call.function.arguments if call.function else None
                arguments[call.index] = arguments.get(call.index, "") + (piece or "")
    assert text == "Checking."
    assert arguments == {0: '{"city":"Paris"}', 1: "{}"}
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 60


def test_stream_encoder_follows_the_callers_include_usage() -> None:
    wants = decode(stream=True, stream_options={"include_usage": True})
    usage = UsageReport(Usage(prompt_tokens=1, completion_tokens=1))

    assert dialect.stream_encoder(wants).encode(usage) != b""
    assert dialect.stream_encoder(decode(stream=True)).encode(usage) == b""


# --- encoding errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "kind", "param", "code"),
    [
        (BadRequest("messages: required"), "invalid_request_error", "messages", None),
        (
            ContextWindowExceeded("too long"),
            "invalid_request_error",
            None,
            "context_length_exceeded",
        ),
        (UnknownModel("no such model: gpt-9"), "not_found_error", None, "model_not_found"),
        (
            RateLimited("slow down", retry_after=2.0),
            "rate_limit_error",
            None,
            "rate_limit_exceeded",
        ),
        (UpstreamStatusError("boom", upstream_status=500), "upstream_error", None, None),
    ],
)
def test_error_body_is_openais_error_envelope(
    error: ModelwayError, kind: str, param: str | None, code: str | None
) -> None:
    body = orjson.loads(encode_error_body(error))

    assert body == {"error": {"message": error.message, "type": kind, "param": param, "code": code}}
    assert ErrorObject.model_validate(body["error"]).message == error.message
    assert dialect.encode_error(error) == encode_error_body(error)


def test_error_body_is_read_back_by_the_adapter() -> None:
    assert adapter.error_message(encode_error_body(BadRequest("stream: bad"))) == "stream: bad"


def test_error_in_an_encoded_stream_reaches_the_adapter_as_an_upstream_error() -> None:
    encoder = ChunkEncoder(include_usage=False)
    stream = encoder.encode(TEXT_EVENTS[0]) + encoder.error(RateLimited("slow down"))
    decoder = adapter.stream_decoder()

    with pytest.raises(UpstreamStatusError, match="slow down"):
        decoder.feed(stream)


def test_openai_sdk_client_raises_the_encoded_error_with_its_message() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, content=encode_error_body(UnknownModel("no model gpt-9")))

    with pytest.raises(openai.NotFoundError) as raised:
        sdk_client(handler).chat.completions.create(
            model="gpt-9", messages=[{"role": "user", "content": "hi"}]
        )

    assert raised.value.code == "model_not_found"
    assert "no model gpt-9" in raised.value.message


def test_the_legacy_functions_api_is_refused_with_a_clear_400_not_dropped() -> None:
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "functions": [{"name": "f", "parameters": {"type": "object"}}],
    }
    with pytest.raises(BadRequest, match="send `tools`"):
        OpenAIDialect().decode_chat(body)


# --- prompt cache usage --------------------------------------------------------------


def test_answer_usage_counts_cache_reads_and_writes_inside_prompt_tokens() -> None:
    # From an Anthropic upstream: 30 uncached, 1000 read from the cache, 200 written to it.
    usage = Usage(
        prompt_tokens=1230, completion_tokens=5, cached_tokens=1000, cache_write_tokens=200
    )
    response = ChatResponse(
        id="c1", model="m", message=Message(role="assistant", content=[TextPart("hi")]), usage=usage
    )
    body = orjson.loads(dialect.encode_response(response))
    assert body["usage"] == {
        "prompt_tokens": 1230,
        "completion_tokens": 5,
        "total_tokens": 1235,
        "prompt_tokens_details": {"cached_tokens": 1000},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    ChatCompletion.model_validate(body)


def test_stream_usage_chunk_carries_the_cached_tokens() -> None:
    encoder = dialect.stream_encoder(ChatRequest(model="m", messages=[], include_usage=True))
    usage = Usage(
        prompt_tokens=1230, completion_tokens=5, cached_tokens=1000, cache_write_tokens=200
    )
    out = encoder.encode(UsageReport(usage))
    chunk = orjson.loads(out.split(b"\n")[0][6:])
    assert chunk["usage"]["prompt_tokens"] == 1230
    assert chunk["usage"]["prompt_tokens_details"] == {"cached_tokens": 1000}


def test_an_azure_stream_starts_with_the_chunk_that_names_the_model() -> None:
    # Azure's first chunk holds prompt_filter_results only: no choices, id and model "".
    filtered = {
        "choices": [],
        "created": 0,
        "id": "",
        "model": "",
        "object": "",
        "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}],
    }
    chunk = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-2024-11-20",
        "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": "stop"}],
    }
    stream = b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in (filtered, chunk))
    events = decode_stream(stream + b"data: [DONE]\n\n")
    assert events[0] == MessageStart(id="chatcmpl-1", model="gpt-4o-2024-11-20")
    assert [type(e) for e in events] == [MessageStart, TextDelta, MessageEnd]
