"""The OpenAI adapter: Chat Completions requests out; answers, stream chunks, embeddings in."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types import CreateEmbeddingResponse, Model
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from modelway.config import ProviderSettings
from modelway.errors import EmptyResponse, StreamTruncated, UndecodableResponse, UpstreamStatusError
from modelway.providers.openai import OpenAIAdapter, parse_responses_usage, parse_usage
from modelway.providers.registry import build_backend
from modelway.providers.upstream import HttpProvider
from modelway.types import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
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
)
from tests.unit.wire import decode_stream, made_ids_numbered

FIXTURES = Path(__file__).parent.parent / "fixtures" / "openai"
adapter = OpenAIAdapter()


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def body_for(request: ChatRequest, model: str = "gpt-4.1") -> dict[str, Any]:
    http = adapter.chat_request(request, model)
    assert http.body is not None
    result: dict[str, Any] = orjson.loads(http.body)
    return result


def user(text: str) -> Message:
    return Message(role="user", content=[TextPart(text)])


def decode(pieces: list[bytes]) -> list[StreamEvent]:
    return made_ids_numbered(decode_stream(adapter, pieces))


TEXT_STREAM_EVENTS: list[StreamEvent] = [
    MessageStart(id="chatcmpl-BjoxdCfe2SnNCuk8kPxuUYktHsuda", model="gpt-4.1-2025-04-14"),
    TextDelta("Hello"),
    TextDelta("!"),
    TextDelta(" How can I"),
    TextDelta(" help \u2014 today?"),
    MessageEnd("stop"),
    UsageReport(Usage(prompt_tokens=19, completion_tokens=8)),
]
TOOL_STREAM_EVENTS: list[StreamEvent] = [
    MessageStart(id="chatcmpl-BQb0iSFzE1zz1OVhaqg3u2Yqn1Ezf", model="gpt-4o-2024-08-06"),
    ToolCallStart(index=0, id="call_PieqNSej6kM9hgYbcQdbZSaC", name="get_weather"),
    ToolCallDelta(index=0, arguments='{"lo'),
    ToolCallDelta(index=0, arguments="cation"),
    ToolCallDelta(index=0, arguments='": "Par'),
    ToolCallDelta(index=0, arguments='is, France"}'),
    ToolCallStart(index=1, id="call_Fh3oX0Cw1lDoPGFzhxXmJ2Gk", name="get_time"),
    ToolCallDelta(index=1, arguments='{"tz"'),
    ToolCallDelta(index=1, arguments=': "Europe/Paris"}'),
    MessageEnd("tool_calls"),
    UsageReport(Usage(prompt_tokens=82, completion_tokens=51, cached_tokens=64)),
]


# --- the fixtures follow OpenAI's documented shapes ------------------------------------


def test_fixtures_validate_against_the_official_openai_sdk_types() -> None:
    ChatCompletion.model_validate_json(fixture("chat_text.json"))
    ChatCompletion.model_validate_json(fixture("chat_tool_calls.json"))
    CreateEmbeddingResponse.model_validate_json(fixture("embeddings.json"))
    for item in orjson.loads(fixture("models.json"))["data"]:
        Model.model_validate(item)
    for name in ("stream_text.sse", "stream_parallel_tool_calls.sse"):
        chunks = fixture(name).split(b"\n\n")
        assert chunks[-2:] == [b"data: [DONE]", b""]
        for chunk in chunks[:-2]:
            ChatCompletionChunk.model_validate_json(chunk.removeprefix(b"data: "))


# --- request building -------------------------------------------------------------------


def test_chat_request_posts_json_to_chat_completions_with_the_deployment_model() -> None:
    http = adapter.chat_request(ChatRequest(model="alias", messages=[user("hi")]), "gpt-4.1")

    assert (http.method, http.path) == ("POST", "/chat/completions")
    assert http.headers == {"content-type": "application/json"}
    assert body_for(ChatRequest(model="alias", messages=[user("hi")])) == {
        "model": "gpt-4.1",
        "messages": [{"role": "user", "content": "hi"}],
    }


def test_images_a_tool_returned_follow_the_tool_results_as_a_user_message() -> None:
    # A Chat Completions tool message holds text only; the results stay next to their call.
    call = ToolCall(id="c1", name="shot", arguments="{}")
    other = ToolCall(id="c2", name="read", arguments="{}")
    request = ChatRequest(
        model="m",
        messages=[
            Message(role="user", content=[TextPart("take a look")]),
            Message(role="assistant", tool_calls=[call, other]),
            Message(
                role="tool",
                content=[
                    TextPart("line one"),
                    TextPart("line two"),
                    ImagePart(data="iVBO", media_type="image/png"),
                ],
                tool_call_id="c1",
            ),
            Message(role="tool", content=[TextPart("done")], tool_call_id="c2"),
            Message(role="user", content=[TextPart("and?")]),
        ],
    )
    messages = body_for(request)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "tool", "user", "user"]
    assert messages[2]["content"] == "line one\nline two"  # two blocks, not "line oneline two"
    assert messages[4]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64,iVBO"},
    }
    assert messages[5]["content"] == "and?"


def test_auth_header_is_a_bearer_token_and_absent_without_a_key() -> None:
    assert adapter.auth_headers("sk-test") == {"authorization": "Bearer sk-test"}
    assert adapter.auth_headers(None) == {}


def test_system_user_assistant_and_tool_messages_become_openai_messages() -> None:
    request = ChatRequest(
        model="m",
        messages=[
            Message(role="system", content=[TextPart("Be brief.")]),
            Message(role="user", content=[TextPart("Weather in "), TextPart("Paris?")], name="ann"),
            Message(
                role="assistant",
                tool_calls=[
                    ToolCall(id="call_1", name="get_weather", arguments='{"city":"Paris"}')
                ],
            ),
            Message(role="tool", content=[TextPart("18C, sunny")], tool_call_id="call_1"),
            Message(role="assistant", content=[TextPart("It is 18C.")]),
        ],
    )

    assert body_for(request)["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in \nParis?", "name": "ann"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C, sunny"},
        {"role": "assistant", "content": "It is 18C."},
    ]


def test_assistant_text_alongside_tool_calls_is_kept() -> None:
    message = Message(
        role="assistant",
        content=[TextPart("Let me check.")],
        tool_calls=[ToolCall(id="call_1", name="f", arguments="{}")],
    )
    encoded = body_for(ChatRequest(model="m", messages=[message]))["messages"][0]

    assert encoded["content"] == "Let me check."
    assert encoded["tool_calls"][0]["id"] == "call_1"


def thinking_tool_turn() -> ChatRequest:
    thought = Message(
        role="assistant",
        reasoning="The user wants the weather: call the tool.",
        tool_calls=[ToolCall(id="call_1", name="get_weather", arguments="{}")],
    )
    result = Message(role="tool", content=[TextPart("18C")], tool_call_id="call_1")
    return ChatRequest(model="m", messages=[user("Weather?"), thought, result])


def test_a_provider_that_replays_reasoning_gets_the_assistant_thinking_back() -> None:
    deepseek = OpenAIAdapter(replays_reasoning=True)
    body = orjson.loads(deepseek.chat_request(thinking_tool_turn(), "deepseek-v4-pro").body or b"")

    assert body["messages"][1]["reasoning_content"] == "The user wants the weather: call the tool."
    assert "reasoning_content" not in body["messages"][0]


def test_openai_itself_is_sent_no_reasoning_content() -> None:
    assert all("reasoning_content" not in m for m in body_for(thinking_tool_turn())["messages"])


@pytest.mark.parametrize(
    ("name", "replays"), [("deepseek", True), ("openai", False), ("groq", False)]
)
def test_only_the_deepseek_preset_replays_reasoning(name: str, replays: bool) -> None:
    backend = build_backend(name, ProviderSettings(api_key="k"))
    assert isinstance(backend, HttpProvider)
    assert isinstance(backend.adapter, OpenAIAdapter)
    assert backend.adapter.replays_reasoning is replays


def test_images_become_image_url_parts_and_inline_images_data_urls() -> None:
    message = Message(
        role="user",
        content=[
            TextPart("Compare"),
            ImagePart(url="https://example.com/cat.png"),
            ImagePart(data="iVBORw0KGgo=", media_type="image/jpeg"),
            ImagePart(data="R0lGODlh"),
        ],
    )

    assert body_for(ChatRequest(model="m", messages=[message]))["messages"][0]["content"] == [
        {"type": "text", "text": "Compare"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,R0lGODlh"}},
    ]


def test_tools_become_function_tools() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    request = ChatRequest(
        model="m",
        messages=[user("hi")],
        tools=[Tool("get_weather", "Current weather", schema), Tool("noop")],
    )

    assert body_for(request)["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather",
                "parameters": schema,
            },
        },
        {"type": "function", "function": {"name": "noop", "description": "", "parameters": {}}},
    ]


@pytest.mark.parametrize("choice", ["auto", "none", "required"])
def test_tool_choice_keywords_pass_as_strings(choice: str) -> None:
    request = ChatRequest(model="m", messages=[user("hi")], tool_choice=choice)

    assert body_for(request)["tool_choice"] == choice


def test_tool_choice_naming_a_tool_becomes_a_function_choice() -> None:
    request = ChatRequest(model="m", messages=[user("hi")], tool_choice="get_weather")

    assert body_for(request)["tool_choice"] == {
        "type": "function",
        "function": {"name": "get_weather"},
    }


def test_no_tool_choice_sends_none_at_all() -> None:
    assert "tool_choice" not in body_for(ChatRequest(model="m", messages=[user("hi")]))


def test_sampling_fields_stop_and_user_are_sent_when_set() -> None:
    request = ChatRequest(
        model="m",
        messages=[user("hi")],
        temperature=0.0,
        top_p=0.5,
        max_tokens=64,
        stop=["\n\n", "END"],
        user="user-42",
    )
    body = body_for(request, "gpt-4.1")

    assert body["temperature"] == 0.0
    assert body["top_p"] == 0.5
    assert body["max_tokens"] == 64
    assert body["stop"] == ["\n\n", "END"]
    assert body["user"] == "user-42"
    assert "max_completion_tokens" not in body


@pytest.mark.parametrize(
    "model", ["o1", "o1-mini", "o3-mini", "o4-mini-2025-04-16", "gpt-5", "gpt-5-nano"]
)
def test_reasoning_models_get_max_completion_tokens(model: str) -> None:
    body = body_for(ChatRequest(model="m", messages=[user("hi")], max_tokens=100), model)

    assert body["max_completion_tokens"] == 100
    assert "max_tokens" not in body


@pytest.mark.parametrize("model", ["o1", "o3-mini", "o4-mini", "gpt-5", "gpt-5-mini"])
def test_reasoning_models_are_sent_no_temperature_or_top_p(model: str) -> None:
    request = ChatRequest(model="m", messages=[user("hi")], temperature=0.0, top_p=0.5)
    body = body_for(request, model)

    assert "temperature" not in body
    assert "top_p" not in body


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-4.1-mini", "llama-3.1-8b"])
def test_other_models_keep_max_tokens(model: str) -> None:
    body = body_for(ChatRequest(model="m", messages=[user("hi")], max_tokens=100), model)

    assert body["max_tokens"] == 100
    assert "max_completion_tokens" not in body


def test_streaming_request_always_asks_upstream_for_usage() -> None:
    body = body_for(ChatRequest(model="m", messages=[user("hi")], stream=True))

    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


def test_non_streaming_request_has_no_stream_fields() -> None:
    body = body_for(ChatRequest(model="m", messages=[user("hi")]))

    assert "stream" not in body
    assert "stream_options" not in body


def test_extra_fields_are_merged_into_the_body() -> None:
    request = ChatRequest(
        model="m",
        messages=[user("hi")],
        extra={"seed": 7, "response_format": {"type": "json_object"}, "logprobs": True},
    )
    body = body_for(request)

    assert body["seed"] == 7
    assert body["response_format"] == {"type": "json_object"}
    assert body["logprobs"] is True


# --- parsing answers --------------------------------------------------------------------


def test_text_answer_parses_into_a_chat_response() -> None:
    assert adapter.parse_chat(fixture("chat_text.json")) == ChatResponse(
        id="chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        model="gpt-4.1-2025-04-14",
        message=Message(role="assistant", content=[TextPart("Hello! How can I assist you today?")]),
        stop_reason="stop",
        usage=Usage(prompt_tokens=19, completion_tokens=10, cached_tokens=0),
        created=1741569952,
    )


def test_tool_calls_answer_parses_every_call_in_order() -> None:
    response = adapter.parse_chat(fixture("chat_tool_calls.json"))

    assert response.message == Message(
        role="assistant",
        tool_calls=[
            ToolCall("call_qOfTGgDrItLORNfC6VwUbyLL", "get_weather", '{"location":"Shanghai"}'),
            ToolCall("call_7cVyFvLxD0hBfRk2mPqZ8sTw", "get_weather", '{"location":"Paris"}'),
        ],
    )
    assert response.stop_reason == "tool_calls"
    assert response.usage == Usage(prompt_tokens=91, completion_tokens=46, cached_tokens=64)


@pytest.mark.parametrize(
    ("finish_reason", "stop_reason"),
    [
        ("stop", "stop"),
        ("length", "length"),
        ("tool_calls", "tool_calls"),
        ("function_call", "tool_calls"),
        ("content_filter", "content_filter"),
        (None, "stop"),
        ("something_new", "stop"),
    ],
)
def test_finish_reasons_map_to_canonical_stop_reasons(
    finish_reason: str | None, stop_reason: str
) -> None:
    body = orjson.dumps(
        {
            "id": "x",
            "model": "m",
            "choices": [{"message": {"content": "hi"}, "finish_reason": finish_reason}],
        }
    )

    assert adapter.parse_chat(body).stop_reason == stop_reason


def test_answer_without_usage_has_usage_none() -> None:
    body = orjson.dumps({"id": "x", "model": "m", "choices": [{"message": {"content": "hi"}}]})

    assert adapter.parse_chat(body).usage is None


@pytest.mark.parametrize("body", [b"", b"  \n", b'{"id": "x", "choices": []}', b'{"id": "x"}'])
def test_empty_body_or_no_choices_is_an_empty_response(body: bytes) -> None:
    with pytest.raises(EmptyResponse):
        adapter.parse_chat(body)


def test_answer_that_is_not_json_is_undecodable_and_keeps_the_raw_text() -> None:
    with pytest.raises(UndecodableResponse) as raised:
        adapter.parse_chat(b"<html>502 Bad Gateway</html>")

    assert raised.value.raw == "<html>502 Bad Gateway</html>"


def test_answer_that_is_json_but_not_an_object_is_an_empty_response() -> None:
    with pytest.raises(EmptyResponse):
        adapter.parse_chat(b"[1, 2, 3]")


# --- streams ----------------------------------------------------------------------------


def test_text_stream_decodes_into_text_deltas_then_end_then_usage() -> None:
    assert decode([fixture("stream_text.sse")]) == TEXT_STREAM_EVENTS


def test_parallel_tool_call_stream_decodes_starts_and_argument_pieces() -> None:
    assert decode([fixture("stream_parallel_tool_calls.sse")]) == TOOL_STREAM_EVENTS


def test_parallel_tool_call_stream_folds_into_two_complete_calls() -> None:
    response = fold_events(decode([fixture("stream_parallel_tool_calls.sse")]))

    assert response.message.tool_calls == [
        ToolCall("call_PieqNSej6kM9hgYbcQdbZSaC", "get_weather", '{"location": "Paris, France"}'),
        ToolCall("call_Fh3oX0Cw1lDoPGFzhxXmJ2Gk", "get_time", '{"tz": "Europe/Paris"}'),
    ]
    assert response.stop_reason == "tool_calls"


def test_stream_decoder_gives_the_same_events_at_every_split_point() -> None:
    for name, expected in (
        ("stream_text.sse", TEXT_STREAM_EVENTS),
        ("stream_parallel_tool_calls.sse", TOOL_STREAM_EVENTS),
    ):
        stream = fixture(name)
        for cut in range(len(stream) + 1):
            assert decode([stream[:cut], stream[cut:]]) == expected, (name, cut)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, len(fixture("stream_parallel_tool_calls.sse"))), max_size=20))
def test_stream_decoder_gives_the_same_events_for_random_splits(cuts: list[int]) -> None:
    stream = fixture("stream_parallel_tool_calls.sse")
    bounds = [0, *sorted(cuts), len(stream)]
    pieces = [stream[a:b] for a, b in itertools.pairwise(bounds)]

    assert decode(pieces) == TOOL_STREAM_EVENTS


def test_stream_with_crlf_line_ends_decodes_the_same() -> None:
    stream = fixture("stream_text.sse").replace(b"\n", b"\r\n")

    assert decode([stream]) == TEXT_STREAM_EVENTS


def test_stream_with_keep_alive_comments_decodes_the_same() -> None:
    stream = b": keep-alive\n\n" + fixture("stream_text.sse").replace(b"\n\n", b"\n\n: ping\n\n", 2)

    assert decode([stream]) == TEXT_STREAM_EVENTS


def tool_call_stream(*calls: dict[str, Any]) -> bytes:
    """A stream whose chunks each carry one ``tool_calls[]`` delta."""
    chunks = [
        {"id": "c", "model": "m", "choices": [{"delta": {"tool_calls": [call]}}]} for call in calls
    ]
    return b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"


def test_tool_call_delta_without_id_gets_a_made_id_and_counts_from_zero() -> None:
    stream = tool_call_stream({"index": 2, "function": {"name": "f", "arguments": "{}"}})

    assert decode([stream])[1:] == [
        ToolCallStart(index=0, id="made_0", name="f"),
        ToolCallDelta(index=0, arguments="{}"),
    ]


def test_a_refusal_is_the_answers_text_whole_and_streamed() -> None:
    answer = {
        "id": "r",
        "model": "m",
        "choices": [
            {"message": {"content": None, "refusal": "I can't help."}, "finish_reason": "stop"}
        ],
    }
    chunk = {"id": "r", "model": "m", "choices": [{"delta": {"refusal": "I can't help."}}]}
    stream = b"data: " + orjson.dumps(chunk) + b"\n\ndata: [DONE]\n\n"

    assert adapter.parse_chat(orjson.dumps(answer)).message.text() == "I can't help."
    assert decode([stream])[1:] == [TextDelta("I can't help.")]


def test_a_new_id_under_the_same_index_starts_a_new_tool_call() -> None:
    stream = tool_call_stream(
        {"index": 0, "id": "call_a", "function": {"name": "f", "arguments": '{"x":'}},
        {"index": 0, "function": {"arguments": "1}"}},
        {"index": 0, "id": "call_b", "function": {"name": "g", "arguments": "{}"}},
    )

    assert fold_events(decode([stream])).message.tool_calls == [
        ToolCall("call_a", "f", '{"x":1}'),
        ToolCall("call_b", "g", "{}"),
    ]


def test_tool_call_deltas_without_an_index_follow_their_id_or_the_latest_call() -> None:
    stream = tool_call_stream(
        {"index": None, "id": "call_a", "function": {"name": "f", "arguments": '{"x":'}},
        {"index": None, "id": "call_b", "function": {"name": "g", "arguments": "{"}},
        {"index": None, "id": "call_a", "function": {"arguments": "1}"}},
        {"function": {"arguments": "}"}},
    )

    assert fold_events(decode([stream])).message.tool_calls == [
        ToolCall("call_a", "f", '{"x":1}'),
        ToolCall("call_b", "g", "{}"),
    ]


@pytest.mark.parametrize(
    "call", ["not an object", {"index": 0, "function": "f"}, {"function": {"arguments": {}}}]
)
def test_a_tool_call_delta_of_the_wrong_shape_is_undecodable(call: Any) -> None:
    with pytest.raises(UndecodableResponse):
        decode([tool_call_stream(call)])


def test_stream_without_done_is_truncated() -> None:
    stream = fixture("stream_text.sse").removesuffix(b"data: [DONE]\n\n")
    decoder = adapter.stream_decoder()
    events = decoder.feed(stream)

    assert events == TEXT_STREAM_EVENTS
    with pytest.raises(StreamTruncated):
        decoder.close()


def test_stream_cut_mid_event_is_truncated() -> None:
    stream = fixture("stream_text.sse")
    decoder = adapter.stream_decoder()
    decoder.feed(stream[: len(stream) // 2])

    with pytest.raises((StreamTruncated, UndecodableResponse)):
        decoder.close()


def test_done_without_trailing_blank_line_still_ends_the_stream() -> None:
    stream = fixture("stream_text.sse").removesuffix(b"\n\n")

    assert decode([stream]) == TEXT_STREAM_EVENTS


def test_stream_chunk_that_is_not_json_is_undecodable_and_carries_the_raw_text() -> None:
    decoder = adapter.stream_decoder()

    with pytest.raises(UndecodableResponse) as raised:
        decoder.feed(b'data: {"id": "c", "choices": [\n\n')

    assert raised.value.raw == '{"id": "c", "choices": ['


def test_stream_chunk_that_is_json_but_not_an_object_is_undecodable() -> None:
    with pytest.raises(UndecodableResponse) as raised:
        adapter.stream_decoder().feed(b"data: [1, 2]\n\n")

    assert raised.value.raw == "[1, 2]"


def test_error_chunk_in_a_stream_is_an_upstream_status_error() -> None:
    error = {
        "error": {
            "message": "The server had an error",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }
    decoder = adapter.stream_decoder()
    decoder.feed(fixture("stream_text.sse").split(b"\n\n")[0] + b"\n\n")

    with pytest.raises(UpstreamStatusError) as raised:
        decoder.feed(b"data: " + orjson.dumps(error) + b"\n\n")

    assert "The server had an error" in raised.value.message
    assert raised.value.upstream_status == 500
    assert raised.value.status == 502
    assert raised.value.retryable


def test_error_chunk_with_a_numeric_code_keeps_that_status() -> None:
    error = {"error": {"message": "Rate limit reached", "code": 429}}

    with pytest.raises(UpstreamStatusError) as raised:
        adapter.stream_decoder().feed(b"data: " + orjson.dumps(error) + b"\n\n")

    assert raised.value.status == 429
    assert raised.value.retryable


# --- embeddings, models, errors ---------------------------------------------------------


def test_embeddings_request_posts_inputs_and_dimensions() -> None:
    http = adapter.embeddings_request(
        EmbeddingRequest(model="alias", input=["a", "b"], dimensions=256), "text-embedding-3-small"
    )

    assert (http.method, http.path) == ("POST", "/embeddings")
    assert http.body is not None
    assert orjson.loads(http.body) == {
        "model": "text-embedding-3-small",
        "input": ["a", "b"],
        "dimensions": 256,
    }


def test_embeddings_request_omits_dimensions_when_unset() -> None:
    http = adapter.embeddings_request(EmbeddingRequest(model="m", input=["a"]), "m")

    assert http.body is not None
    assert "dimensions" not in orjson.loads(http.body)


def test_embeddings_answer_parses_vectors_in_input_order() -> None:
    assert adapter.parse_embeddings(fixture("embeddings.json")) == EmbeddingResponse(
        model="text-embedding-3-small",
        vectors=[
            [0.0023064255, -0.009327292, 0.015797347, -0.0077780345],
            [-0.0114552, 0.0238741, 0.0055183, 0.0301004],
        ],
        usage=Usage(prompt_tokens=8),
    )


def test_embeddings_out_of_order_are_sorted_by_index() -> None:
    data = orjson.loads(fixture("embeddings.json"))
    data["data"].reverse()

    vectors = adapter.parse_embeddings(orjson.dumps(data)).vectors

    assert vectors[0][0] == 0.0023064255
    assert vectors[1][0] == -0.0114552


def test_models_request_and_listing_give_model_ids() -> None:
    assert adapter.models_request() == ("GET", "/models", None, {})
    assert adapter.parse_models(fixture("models.json")) == [
        "gpt-4.1-2025-04-14",
        "o3-mini",
        "text-embedding-3-small",
    ]


@pytest.mark.parametrize("parse", [adapter.parse_embeddings, adapter.parse_models])
def test_embeddings_or_models_answer_that_is_not_an_object_is_undecodable(parse: Any) -> None:
    with pytest.raises(UndecodableResponse) as raised:
        parse(b'["not", "an", "object"]')

    assert raised.value.raw == '["not", "an", "object"]'


@pytest.mark.parametrize("parse", [adapter.parse_embeddings, adapter.parse_models])
def test_embeddings_or_models_empty_body_is_an_empty_response(parse: Any) -> None:
    with pytest.raises(EmptyResponse):
        parse(b"")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            fixture("error_invalid_request.json"),
            "Invalid value for 'tool_choice': 'sometimes'. Supported values are: 'none', 'auto', "
            "and 'required'.",
        ),
        (b'{"error": "model overloaded"}', "model overloaded"),
        (b"upstream connect error", "upstream connect error"),
        (b'{"detail": "Not Found"}', '{"detail": "Not Found"}'),
    ],
)
def test_error_message_is_read_from_the_error_envelope_or_falls_back_to_raw(
    body: bytes, message: str
) -> None:
    assert adapter.error_message(body) == message


def test_error_message_fallback_is_bounded() -> None:
    assert len(adapter.error_message(b"x" * 10_000)) == 500


# --- prompt cache usage --------------------------------------------------------------


def test_chat_usage_counts_cached_tokens_inside_the_prompt() -> None:
    raw = {
        "prompt_tokens": 2006,
        "completion_tokens": 300,
        "total_tokens": 2306,
        "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
    }
    assert parse_usage(raw) == Usage(prompt_tokens=2006, completion_tokens=300, cached_tokens=1920)


def test_chat_usage_reads_cache_writes_an_openai_compatible_upstream_reports() -> None:
    raw = {
        "prompt_tokens": 2006,
        "completion_tokens": 3,
        "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 2000},
    }
    usage = parse_usage(raw)
    assert usage is not None
    assert (usage.prompt_tokens, usage.cache_write_tokens) == (2006, 2000)


def test_responses_usage_counts_cached_tokens_inside_the_input() -> None:
    raw = {
        "input_tokens": 2006,
        "input_tokens_details": {"cached_tokens": 1920},
        "output_tokens": 300,
        "output_tokens_details": {"reasoning_tokens": 128},
        "total_tokens": 2306,
    }
    assert parse_responses_usage(raw) == Usage(
        prompt_tokens=2006, completion_tokens=300, cached_tokens=1920, reasoning_tokens=128
    )
