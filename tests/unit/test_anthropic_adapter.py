"""The Anthropic adapter: Messages API requests out, answers and stream events in."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelway.errors import (
    BadRequest,
    EmptyResponse,
    StreamTruncated,
    UndecodableResponse,
    UpstreamStatusError,
)
from modelway.providers.anthropic import AnthropicAdapter
from modelway.types import (
    ChatRequest,
    EmbeddingRequest,
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
from tests.unit.wire import decode_stream

FIXTURES = Path(__file__).parent.parent / "fixtures" / "anthropic"
adapter = AnthropicAdapter()


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def body_for(request: ChatRequest, model: str = "claude-sonnet-4-5") -> dict[str, Any]:
    http = adapter.chat_request(request, model)
    assert http.body is not None
    result: dict[str, Any] = orjson.loads(http.body)
    return result


def user(text: str) -> Message:
    return Message(role="user", content=[TextPart(text)])


def decode(chunks: list[bytes]) -> list[StreamEvent]:
    return decode_stream(adapter, chunks)


STREAM_TEXT_EVENTS: list[StreamEvent] = [
    MessageStart(id="msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY", model="claude-sonnet-4-5-20250929"),
    TextDelta("Hello"),
    TextDelta(", wörld! ☀️"),
    MessageEnd("stop"),
    UsageReport(Usage(prompt_tokens=25, completion_tokens=15)),
]

STREAM_TOOL_USE_EVENTS: list[StreamEvent] = [
    MessageStart(id="msg_014p7gG3wDgGV9EUtLvnow3U", model="claude-sonnet-4-5-20250929"),
    TextDelta("Okay"),
    TextDelta(", let's check the weather in both cities:"),
    ToolCallStart(index=0, id="toolu_01T1x1fJ34qAmk2tNTrN7Up6", name="get_weather"),
    ToolCallDelta(index=0, arguments='{"location":'),
    ToolCallDelta(index=0, arguments=' "San Fra'),
    ToolCallDelta(index=0, arguments='ncisco, CA"}'),
    ToolCallStart(index=1, id="toolu_01NRLabsLyVHZPKxbKvkfSMn", name="get_weather"),
    ToolCallDelta(index=1, arguments='{"location": "Paris",'),
    ToolCallDelta(index=1, arguments=' "unit": "celsius"}'),
    MessageEnd("tool_calls"),
    UsageReport(Usage(prompt_tokens=600, completion_tokens=89, cached_tokens=128)),
]

STREAMS = {"stream_text.sse": STREAM_TEXT_EVENTS, "stream_tool_use.sse": STREAM_TOOL_USE_EVENTS}


# --- request building ----------------------------------------------------------------


def test_chat_request_posts_to_v1_messages_as_json() -> None:
    http = adapter.chat_request(ChatRequest(model="x", messages=[user("hi")]), "claude-x")
    assert (http.method, http.path) == ("POST", "/v1/messages")
    assert http.headers["content-type"] == "application/json"


def test_auth_headers_carry_the_key_and_the_api_version() -> None:
    assert adapter.auth_headers("sk-ant-1") == {
        "x-api-key": "sk-ant-1",
        "anthropic-version": "2023-06-01",
    }
    assert adapter.auth_headers(None) == {"anthropic-version": "2023-06-01"}


def test_system_messages_move_to_top_level_system() -> None:
    request = ChatRequest(
        model="x",
        messages=[Message(role="system", content=[TextPart("Be terse.")]), user("hi")],
    )
    body = body_for(request)
    assert body["system"] == "Be terse."
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    assert body["model"] == "claude-sonnet-4-5"


def test_max_tokens_defaults_to_4096_because_anthropic_requires_it() -> None:
    assert body_for(ChatRequest(model="x", messages=[user("hi")]))["max_tokens"] == 4096
    request = ChatRequest(model="x", messages=[user("hi")], max_tokens=10)
    assert body_for(request)["max_tokens"] == 10


def test_assistant_tool_calls_become_tool_use_blocks_with_parsed_input() -> None:
    call = ToolCall(id="toolu_1", name="get_weather", arguments='{"city": "Paris"}')
    request = ChatRequest(
        model="x",
        messages=[
            user("weather?"),
            Message(role="assistant", content=[TextPart("Checking.")], tool_calls=[call]),
        ],
    )
    assert body_for(request)["messages"][1] == {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Checking."},
            {
                "type": "tool_use",
                "id": "toolu_1",
                "name": "get_weather",
                "input": {"city": "Paris"},
            },
        ],
    }


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]"])
def test_tool_call_arguments_that_are_not_a_json_object_are_a_bad_request(arguments: str) -> None:
    call = ToolCall(id="toolu_1", name="f", arguments=arguments)
    request = ChatRequest(
        model="x", messages=[user("hi"), Message(role="assistant", tool_calls=[call])]
    )
    with pytest.raises(BadRequest, match=r"messages\.1\.tool_calls\.0\.arguments"):
        adapter.chat_request(request, "claude-x")


def test_consecutive_tool_results_merge_into_one_user_turn() -> None:
    calls = [ToolCall(id="t1", name="f", arguments="{}"), ToolCall(id="t2", name="f")]
    request = ChatRequest(
        model="x",
        messages=[
            user("go"),
            Message(role="assistant", tool_calls=calls),
            Message(role="tool", content=[TextPart("one")], tool_call_id="t1"),
            Message(role="tool", content=[TextPart("two")], tool_call_id="t2"),
            user("thanks"),
        ],
    )
    messages = body_for(request)["messages"]
    assert [turn["role"] for turn in messages] == ["user", "assistant", "user"]
    assert messages[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "one"}]},
        {"type": "tool_result", "tool_use_id": "t2", "content": [{"type": "text", "text": "two"}]},
        {"type": "text", "text": "thanks"},
    ]


def test_tool_results_come_first_in_a_merged_user_turn() -> None:
    request = ChatRequest(
        model="x",
        messages=[
            user("go"),
            Message(role="assistant", tool_calls=[ToolCall(id="t1", name="f")]),
            user("note"),
            Message(role="tool", content=[TextPart("done")], tool_call_id="t1"),
        ],
    )
    content = body_for(request)["messages"][2]["content"]
    assert [block["type"] for block in content] == ["tool_result", "text"]


def test_a_tool_result_without_its_call_id_is_a_bad_request() -> None:
    request = ChatRequest(model="x", messages=[Message(role="tool", content=[TextPart("r")])])
    with pytest.raises(BadRequest, match=r"messages\.0\.tool_call_id"):
        adapter.chat_request(request, "claude-x")


def test_consecutive_same_role_turns_merge_because_anthropic_requires_alternation() -> None:
    request = ChatRequest(
        model="x",
        messages=[
            user("a"),
            user("b"),
            Message(role="assistant", content=[TextPart("c")]),
            Message(role="assistant", content=[TextPart("d")]),
            Message(role="user", content=[TextPart("")]),
        ],
    )
    assert body_for(request)["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "c"}, {"type": "text", "text": "d"}],
        },
    ]


def test_images_become_base64_or_url_sources() -> None:
    parts = [
        ImagePart(data="iVBORw0KGgo=", media_type="image/png"),
        ImagePart(url="https://example.com/cat.jpg"),
        ImagePart(url="data:image/webp;base64,UklGRg=="),
    ]
    request = ChatRequest(model="x", messages=[Message(role="user", content=list(parts))])
    sources = [block["source"] for block in body_for(request)["messages"][0]["content"]]
    assert sources == [
        {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
        {"type": "url", "url": "https://example.com/cat.jpg"},
        {"type": "base64", "media_type": "image/webp", "data": "UklGRg=="},
    ]


def test_tools_become_name_description_and_input_schema() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    tools = [Tool(name="get_weather", description="Weather now.", parameters=schema), Tool("noop")]
    body = body_for(ChatRequest(model="x", messages=[user("hi")], tools=tools))
    assert body["tools"] == [
        {"name": "get_weather", "description": "Weather now.", "input_schema": schema},
        {"name": "noop", "input_schema": {"type": "object", "properties": {}}},
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("none", {"type": "none"}),
        ("required", {"type": "any"}),
        ("get_weather", {"type": "tool", "name": "get_weather"}),
    ],
)
def test_tool_choice_maps_to_anthropic_types(choice: str, expected: dict[str, str]) -> None:
    request = ChatRequest(model="x", messages=[user("hi")], tools=[Tool("f")], tool_choice=choice)
    assert body_for(request)["tool_choice"] == expected


def test_sampling_stop_stream_user_are_sent_and_extra_is_merged_last() -> None:
    request = ChatRequest(
        model="x",
        messages=[user("hi")],
        top_p=0.9,
        stop=["END"],
        stream=True,
        user="u-42",
        extra={"top_k": 5, "temperature": 0.7},
    )
    body = body_for(request)
    assert body["temperature"] == 0.7
    assert (body["top_p"], body["top_k"], body["stream"]) == (0.9, 5, True)
    assert body["stop_sequences"] == ["END"]
    assert body["metadata"] == {"user_id": "u-42"}


def test_temperature_alone_is_sent_when_the_caller_gives_top_p_too() -> None:
    request = ChatRequest(model="x", messages=[user("hi")], temperature=0.2, top_p=0.9)
    body = body_for(request)
    assert body["temperature"] == 0.2
    assert "top_p" not in body


@pytest.mark.parametrize(("given", "sent"), [(1.7, 1.0), (2.0, 1.0), (1.0, 1.0), (0.0, 0.0)])
def test_an_openai_temperature_above_anthropics_range_is_sent_as_its_most(
    given: float, sent: float
) -> None:
    body = body_for(ChatRequest(model="x", messages=[user("hi")], temperature=given))
    assert body["temperature"] == sent


def test_top_p_alone_is_sent() -> None:
    body = body_for(ChatRequest(model="x", messages=[user("hi")], top_p=0.9))
    assert body["top_p"] == 0.9
    assert "temperature" not in body


def test_a_plain_request_sends_no_optional_fields() -> None:
    assert set(body_for(ChatRequest(model="x", messages=[user("hi")]))) == {
        "model",
        "max_tokens",
        "messages",
    }


# --- non-streamed answers ------------------------------------------------------------


def test_parse_chat_reads_a_text_answer() -> None:
    response = adapter.parse_chat(fixture("message_text.json"))
    assert response.id == "msg_01XFDUDYJgAACzvnptvVoYEL"
    assert response.model == "claude-sonnet-4-5-20250929"
    assert response.message == Message(
        role="assistant", content=[TextPart("Hello! How can I help you today?")]
    )
    assert response.stop_reason == "stop"
    assert response.usage == Usage(prompt_tokens=12, completion_tokens=10)


def test_parse_chat_reads_a_tool_use_answer_with_cache_usage() -> None:
    response = adapter.parse_chat(fixture("message_tool_use.json"))
    assert response.stop_reason == "tool_calls"
    assert response.message.text() == "I'll check the current weather in San Francisco for you."
    assert response.message.tool_calls == [
        ToolCall(
            id="toolu_01A09q90qw90lq917835lq9",
            name="get_weather",
            arguments='{"location":"San Francisco, CA","unit":"celsius"}',
        )
    ]
    # input_tokens excludes cache reads and writes; canonical prompt_tokens includes both.
    assert response.usage == Usage(
        prompt_tokens=1404, completion_tokens=73, cached_tokens=1000, cache_write_tokens=20
    )


@pytest.mark.parametrize(
    ("anthropic", "canonical"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
    ],
)
def test_stop_reasons_map_to_canonical(anthropic: str, canonical: str) -> None:
    data = orjson.loads(fixture("message_text.json"))
    data["stop_reason"] = anthropic
    assert adapter.parse_chat(orjson.dumps(data)).stop_reason == canonical


def test_a_body_that_is_not_json_is_undecodable_and_keeps_the_text() -> None:
    with pytest.raises(UndecodableResponse) as caught:
        adapter.parse_chat(b"<html>Bad gateway</html>")
    assert caught.value.raw == "<html>Bad gateway</html>"


def test_a_message_of_the_wrong_shape_is_undecodable() -> None:
    with pytest.raises(UndecodableResponse):
        adapter.parse_chat(b'{"id": "msg_1", "content": "not a list of blocks"}')


def test_an_empty_body_is_an_empty_response() -> None:
    with pytest.raises(EmptyResponse):
        adapter.parse_chat(b"  ")


def test_an_error_body_raises_with_the_status_its_type_implies() -> None:
    with pytest.raises(UpstreamStatusError) as caught:
        adapter.parse_chat(fixture("error_overloaded.json"))
    assert caught.value.upstream_status == 529
    assert caught.value.retryable


def test_error_message_reads_error_message_or_falls_back_to_raw_text() -> None:
    assert adapter.error_message(fixture("error_overloaded.json")) == "Overloaded"
    assert adapter.error_message(b"upstream connect error") == "upstream connect error"


# --- streamed answers ----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_stream_fixture_decodes_to_canonical_events(name: str) -> None:
    assert decode([fixture(name)]) == STREAMS[name]


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_stream_decodes_identically_at_every_split_point(name: str) -> None:
    data = fixture(name)
    for split in range(len(data) + 1):
        assert decode([data[:split], data[split:]]) == STREAMS[name], f"split at {split}"


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_stream_decodes_identically_byte_by_byte(name: str) -> None:
    data = fixture(name)
    assert decode([data[i : i + 1] for i in range(len(data))]) == STREAMS[name]


@given(
    name=st.sampled_from(sorted(STREAMS)),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=30),
)
def test_stream_decodes_identically_for_any_chunking(name: str, cuts: list[int]) -> None:
    data = fixture(name)
    points = sorted({0, len(data), *(cut % (len(data) + 1) for cut in cuts)})
    chunks = [data[start:end] for start, end in pairwise(points)]
    assert decode(chunks) == STREAMS[name]


def test_stream_with_crlf_line_ends_decodes_the_same() -> None:
    data = fixture("stream_tool_use.sse").replace(b"\n", b"\r\n")
    assert decode([data]) == STREAM_TOOL_USE_EVENTS


def test_stream_without_message_stop_is_truncated() -> None:
    data = fixture("stream_text.sse")
    cut = data.index(b"event: message_stop")
    with pytest.raises(StreamTruncated):
        decode([data[:cut]])


def test_stream_ending_mid_event_is_truncated() -> None:
    data = fixture("stream_tool_use.sse")
    with pytest.raises(StreamTruncated):
        decode([data[: len(data) // 2]])


def test_corrupt_stream_data_is_undecodable_and_keeps_the_raw_text() -> None:
    decoder = adapter.stream_decoder()
    decoder.feed(fixture("stream_text.sse").split(b"event: content_block_start")[0])
    with pytest.raises(UndecodableResponse) as caught:
        decoder.feed(b'event: content_block_delta\ndata: {"type": "content_block_del\n\n')
    assert caught.value.raw == '{"type": "content_block_del'


def test_stream_event_of_the_wrong_shape_is_undecodable() -> None:
    with pytest.raises(UndecodableResponse):
        decode([b'event: message_start\ndata: {"type": "message_start"}\n\n'])


@pytest.mark.parametrize(
    ("error_type", "status", "retryable"),
    [
        ("overloaded_error", 529, True),
        ("api_error", 500, True),
        ("rate_limit_error", 429, True),
        ("invalid_request_error", 400, False),
        ("authentication_error", 401, False),
    ],
)
def test_stream_error_event_raises_upstream_status_error(
    error_type: str, status: int, retryable: bool
) -> None:
    data = fixture("stream_error.sse").replace(b"overloaded_error", error_type.encode())
    decoder = adapter.stream_decoder()
    with pytest.raises(UpstreamStatusError) as caught:
        decoder.feed(data)
    assert (caught.value.upstream_status, caught.value.retryable) == (status, retryable)
    assert b"Overloaded" in caught.value.body


def test_stream_events_before_an_error_are_still_delivered() -> None:
    data = fixture("stream_error.sse")
    decoder = adapter.stream_decoder()
    head, _, tail = data.partition(b"event: error")
    assert decoder.feed(head) == [
        MessageStart(id="msg_01Vt7uiq2Yj6Dm4m4Hn6b7vR", model="claude-sonnet-4-5-20250929"),
        TextDelta("Once upon"),
    ]
    with pytest.raises(UpstreamStatusError):
        decoder.feed(b"event: error" + tail)


def test_unknown_stream_events_and_deltas_are_ignored() -> None:
    data = fixture("stream_text.sse").replace(
        b"event: ping",
        b'event: future_event\ndata: {"type": "future_event"}\n\n'
        b"event: content_block_delta\n"
        b'data: {"type": "content_block_delta", "index": 0, '
        b'"delta": {"type": "citations_delta", "citation": {}}}\n\nevent: ping',
    )
    assert decode([data]) == STREAM_TEXT_EVENTS


# --- embeddings and models -----------------------------------------------------------


def test_embeddings_are_a_bad_request_because_anthropic_has_none() -> None:
    with pytest.raises(BadRequest, match="no embeddings"):
        adapter.embeddings_request(EmbeddingRequest(model="x", input=["a"]), "claude-x")


def test_models_are_listed_from_get_v1_models() -> None:
    http = adapter.models_request()
    assert (http.method, http.path.split("?")[0]) == ("GET", "/v1/models")
    assert adapter.parse_models(fixture("models.json")) == [
        "claude-sonnet-4-5-20250929",
        "claude-haiku-4-5-20251001",
    ]


def test_a_last_event_without_its_blank_line_still_finishes_the_stream() -> None:
    data = fixture("stream_text.sse").rstrip(b"\n")
    assert decode([data]) == STREAM_TEXT_EVENTS


# --- prompt cache usage --------------------------------------------------------------


def cache_stream(delta_usage: dict[str, Any]) -> bytes:
    start_usage = {
        "input_tokens": 10,
        "cache_creation_input_tokens": 200,
        "cache_read_input_tokens": 1000,
        "output_tokens": 1,
    }
    events: list[dict[str, Any]] = [
        {
            "type": "message_start",
            "message": {"id": "msg_1", "model": "claude-sonnet-4-5", "usage": start_usage},
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": delta_usage},
        {"type": "message_stop"},
    ]
    return b"".join(
        b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"
        for event in events
    )


def test_stream_usage_reads_cache_reads_and_writes_from_message_start() -> None:
    events = decode([cache_stream({"output_tokens": 5})])
    # input_tokens (10) leaves out the cache; canonical prompt_tokens holds all 1210.
    assert events[-1] == UsageReport(
        Usage(prompt_tokens=1210, completion_tokens=5, cached_tokens=1000, cache_write_tokens=200)
    )


def test_stream_usage_takes_the_cache_counts_message_delta_updates() -> None:
    late = {"output_tokens": 5, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 1200}
    events = decode([cache_stream(late)])
    assert events[-1] == UsageReport(
        Usage(prompt_tokens=1210, completion_tokens=5, cached_tokens=1200, cache_write_tokens=0)
    )


def test_thinking_tokens_are_the_reasoning_tokens_whole_and_streamed() -> None:
    late = {"output_tokens": 50, "output_tokens_details": {"thinking_tokens": 30}}
    streamed = decode([cache_stream(late)])[-1]
    answer = orjson.loads(fixture("message_text.json"))
    answer["usage"] = {"input_tokens": 10, **late}
    whole = adapter.parse_chat(orjson.dumps(answer))

    assert isinstance(streamed, UsageReport)
    assert streamed.usage.reasoning_tokens == 30
    assert whole.usage is not None
    assert (whole.usage.reasoning_tokens, whole.usage.completion_tokens) == (30, 50)
