"""The Ollama adapter: request bodies, parsed answers, and the NDJSON stream decoder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelway.errors import (
    BadRequest,
    StreamTruncated,
    UndecodableResponse,
    UpstreamStatusError,
)
from modelway.providers.ollama import OllamaAdapter
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
    fold_events,
)
from tests.unit.wire import decode_stream, made_ids_numbered

FIXTURES = Path(__file__).parent.parent / "fixtures" / "ollama"
adapter = OllamaAdapter()


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def body_of(request: ChatRequest, model: str = "llama3.2") -> dict[str, Any]:
    http = adapter.chat_request(request, model)
    assert http.body is not None
    return orjson.loads(http.body)  # type: ignore[no-any-return]


def user(text: str) -> Message:
    return Message(role="user", content=[TextPart(text)])


def decode(chunks: list[bytes]) -> list[StreamEvent]:
    return made_ids_numbered(decode_stream(adapter, chunks))


def without_ids(events: list[StreamEvent]) -> list[StreamEvent]:
    """Events with the generated message id blanked (Ollama sends none to compare)."""
    return [
        MessageStart(id="", model=e.model) if isinstance(e, MessageStart) else e for e in events
    ]


# --- requests -------------------------------------------------------------------------


def test_chat_request_posts_to_api_chat_and_always_says_whether_to_stream() -> None:
    for stream in (False, True):
        http = adapter.chat_request(ChatRequest("x", [user("hi")], stream=stream), "llama3.2")
        assert (http.method, http.path) == ("POST", "/api/chat")
        assert orjson.loads(http.body or b"") == {
            "model": "llama3.2",
            "messages": [{"role": "user", "content": "hi"}],
            "stream": stream,
        }


def test_auth_header_is_a_bearer_token_only_when_a_key_is_given() -> None:
    assert adapter.auth_headers(None) == {}
    assert adapter.auth_headers("sk-1") == {"authorization": "Bearer sk-1"}


def test_images_travel_as_a_base64_list_on_the_message() -> None:
    message = Message(
        role="user",
        content=[
            TextPart("what is this?"),
            ImagePart(data="iVBORw0KGgo=", media_type="image/png"),
            ImagePart(url="data:image/jpeg;base64,/9j/4AAQ"),
        ],
    )
    body = body_of(ChatRequest("x", [message]))
    assert body["messages"] == [
        {"role": "user", "content": "what is this?", "images": ["iVBORw0KGgo=", "/9j/4AAQ"]}
    ]


def test_a_tool_results_images_travel_on_its_message() -> None:
    call = ToolCall(id="c1", name="shot", arguments="{}")
    result = Message(
        role="tool",
        content=[
            TextPart("first"),
            TextPart("second"),
            ImagePart(data="iVBO", media_type="image/png"),
        ],
        tool_call_id="c1",
    )
    body = body_of(ChatRequest("x", [Message(role="assistant", tool_calls=[call]), result]))
    assert body["messages"][1] == {
        "role": "tool",
        "content": "first\nsecond",
        "tool_name": "shot",
        "images": ["iVBO"],
    }


def test_an_image_given_only_by_url_is_refused_because_ollama_takes_inline_images_only() -> None:
    message = Message(role="user", content=[ImagePart(url="https://example.com/cat.png")])
    with pytest.raises(BadRequest, match=r"messages\.0\.content\.0: Ollama takes inline"):
        adapter.chat_request(ChatRequest("x", [message]), "llava")


def test_tool_round_trip_sends_object_arguments_and_finds_the_tool_name_by_call_id() -> None:
    request = ChatRequest(
        "x",
        [
            user("weather in Paris and the time?"),
            Message(
                role="assistant",
                tool_calls=[
                    ToolCall(id="call_a", name="get_weather", arguments='{"city": "Paris"}'),
                    ToolCall(id="call_b", name="get_time", arguments=""),
                ],
            ),
            Message(role="tool", content=[TextPart("12:00")], tool_call_id="call_b"),
            Message(role="tool", content=[TextPart("sunny")], tool_call_id="call_a"),
        ],
        tools=[Tool("get_weather", "Weather for a city", {"type": "object"}), Tool("get_time")],
    )
    body = body_of(request)
    assert body["messages"][1] == {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
            {"function": {"name": "get_time", "arguments": {}}},
        ],
    }
    assert body["messages"][2] == {"role": "tool", "content": "12:00", "tool_name": "get_time"}
    assert body["messages"][3] == {"role": "tool", "content": "sunny", "tool_name": "get_weather"}
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": {"type": "object"},
            },
        },
        {
            "type": "function",
            "function": {
                "name": "get_time",
                "description": "",
                "parameters": {"type": "object", "properties": {}},
            },
        },
    ]


def test_a_tool_result_for_an_unknown_call_falls_back_to_the_message_name() -> None:
    result = Message(role="tool", content=[TextPart("42")], tool_call_id="nope", name="answer")
    assert body_of(ChatRequest("x", [result]))["messages"] == [
        {"role": "tool", "content": "42", "tool_name": "answer"}
    ]


def test_tool_arguments_that_are_not_a_json_object_are_refused_naming_the_call() -> None:
    call = ToolCall(id="c", name="f", arguments="[1, 2]")
    request = ChatRequest("x", [user("hi"), Message(role="assistant", tool_calls=[call])])
    with pytest.raises(BadRequest, match=r"messages\.1\.tool_calls\.0\.arguments"):
        adapter.chat_request(request, "m")


def test_tool_choice_none_offers_no_tools() -> None:
    request = ChatRequest("x", [user("hi")], tools=[Tool("f")], tool_choice="none")
    assert "tools" not in body_of(request)


def test_sampling_settings_go_into_options() -> None:
    request = ChatRequest(
        "x", [user("hi")], temperature=0.2, top_p=0.9, max_tokens=64, stop=["\n\n", "User:"]
    )
    assert body_of(request)["options"] == {
        "temperature": 0.2,
        "top_p": 0.9,
        "num_predict": 64,
        "stop": ["\n\n", "User:"],
    }


def test_extra_is_merged_into_the_body_last() -> None:
    request = ChatRequest(
        "x", [user("hi")], temperature=0.2, extra={"keep_alive": "10m", "options": {"seed": 7}}
    )
    body = body_of(request)
    assert body["keep_alive"] == "10m"
    assert body["options"] == {"seed": 7}


# --- answers --------------------------------------------------------------------------


def test_parses_a_plain_answer_with_usage_and_creation_time() -> None:
    response = adapter.parse_chat(fixture("chat.json"))
    assert response.model == "llama3.2"
    assert response.message.text() == "The sky is blue because of Rayleigh scattering."
    assert response.message.tool_calls == []
    assert response.stop_reason == "stop"
    assert response.usage == Usage(prompt_tokens=26, completion_tokens=298)
    assert response.created == 1734012823
    assert response.id.startswith("ollama-")


def test_parses_tool_calls_with_json_text_arguments_and_made_ids() -> None:
    response = adapter.parse_chat(fixture("chat_tool_call.json"))
    assert made_ids_numbered(response.message.tool_calls) == [
        ToolCall("made_0", "get_current_weather", '{"format":"celsius","location":"Paris, FR"}'),
        ToolCall("made_1", "get_current_time", '{"timezone":"Europe/Paris"}'),
    ]
    assert response.message.content == []
    # Ollama says "stop" even when it stopped to call tools.
    assert response.stop_reason == "tool_calls"
    assert response.usage == Usage(prompt_tokens=122, completion_tokens=33)


def test_tool_call_ids_the_gateway_makes_differ_from_answer_to_answer() -> None:
    first, second = (adapter.parse_chat(fixture("chat_tool_call.json")) for _ in "12")
    ids = [call.id for call in first.message.tool_calls + second.message.tool_calls]
    assert len(set(ids)) == 4


def test_done_reason_length_means_the_answer_was_cut_short() -> None:
    body = orjson.loads(fixture("chat.json"))
    body["done_reason"] = "length"
    assert adapter.parse_chat(orjson.dumps(body)).stop_reason == "length"


def test_an_answer_without_counts_has_no_usage() -> None:
    body = {"model": "m", "message": {"role": "assistant", "content": "hi"}, "done": True}
    assert adapter.parse_chat(orjson.dumps(body)).usage is None


def test_an_error_body_is_an_upstream_error_and_its_message_is_read() -> None:
    with pytest.raises(UpstreamStatusError, match="not found, try pulling it first"):
        adapter.parse_chat(fixture("error.json"))
    assert adapter.error_message(fixture("error.json")) == (
        'model "llama9" not found, try pulling it first'
    )
    assert adapter.error_message(b"502 Bad Gateway") == "502 Bad Gateway"


def test_a_body_that_is_not_json_is_undecodable_and_keeps_the_raw_text() -> None:
    with pytest.raises(UndecodableResponse) as caught:
        adapter.parse_chat(b"<html>proxy error</html>")
    assert caught.value.raw == "<html>proxy error</html>"


def test_embeddings_request_and_answer() -> None:
    http = adapter.embeddings_request(EmbeddingRequest("e", ["a", "b"], dimensions=5), "all-minilm")
    assert (http.method, http.path) == ("POST", "/api/embed")
    assert orjson.loads(http.body or b"") == {
        "model": "all-minilm",
        "input": ["a", "b"],
        "dimensions": 5,
    }
    response = adapter.parse_embeddings(fixture("embed.json"))
    assert response.model == "all-minilm"
    assert len(response.vectors) == 2
    assert response.vectors[0][:2] == [0.010071029, -0.0017594862]
    assert response.usage == Usage(prompt_tokens=16)


def test_models_are_listed_from_api_tags() -> None:
    http = adapter.models_request()
    assert (http.method, http.path, http.body) == ("GET", "/api/tags", None)
    assert adapter.parse_models(fixture("tags.json")) == ["codellama:13b", "llama3:latest"]


# --- streams --------------------------------------------------------------------------

EXPECTED_STREAMS: dict[str, list[StreamEvent]] = {
    "chat_stream.ndjson": [
        MessageStart(id="", model="llama3.2"),
        TextDelta("The"),
        TextDelta(" sky"),
        TextDelta(" is"),
        TextDelta(" blue — été ☀️"),
        MessageEnd("stop"),
        UsageReport(Usage(prompt_tokens=26, completion_tokens=282)),
    ],
    "chat_stream_tool_call.ndjson": [
        MessageStart(id="", model="qwen3"),
        TextDelta("Let me check."),
        ToolCallStart(index=0, id="made_0", name="get_current_weather"),
        ToolCallDelta(index=0, arguments='{"format":"celsius","location":"Toronto"}'),
        ToolCallStart(index=1, id="made_1", name="get_current_time"),
        ToolCallDelta(index=1, arguments='{"timezone":"America/Toronto"}'),
        MessageEnd("tool_calls"),
        UsageReport(Usage(prompt_tokens=211, completion_tokens=41)),
    ],
}


@pytest.mark.parametrize("name", sorted(EXPECTED_STREAMS))
def test_stream_fixture_decodes_to_the_expected_events(name: str) -> None:
    assert without_ids(decode([fixture(name)])) == EXPECTED_STREAMS[name]


@pytest.mark.parametrize("name", sorted(EXPECTED_STREAMS))
def test_stream_decodes_identically_when_split_at_every_byte(name: str) -> None:
    data = fixture(name)
    for cut in range(len(data) + 1):
        assert without_ids(decode([data[:cut], data[cut:]])) == EXPECTED_STREAMS[name], cut


@pytest.mark.parametrize("name", sorted(EXPECTED_STREAMS))
def test_stream_decodes_identically_one_byte_at_a_time(name: str) -> None:
    data = fixture(name)
    events = decode([data[i : i + 1] for i in range(len(data))])
    assert without_ids(events) == EXPECTED_STREAMS[name]


@given(st.sampled_from(sorted(EXPECTED_STREAMS)), st.data())
def test_stream_decodes_identically_under_random_splits(name: str, data: st.DataObject) -> None:
    raw = fixture(name)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=12)))
    pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    assert without_ids(decode(pieces)) == EXPECTED_STREAMS[name]


def test_a_streamed_answer_folds_to_the_same_answer_as_the_unstreamed_one() -> None:
    folded = fold_events(decode([fixture("chat_stream_tool_call.ndjson")]))
    assert folded.message.text() == "Let me check."
    assert [c.name for c in folded.message.tool_calls] == [
        "get_current_weather",
        "get_current_time",
    ]
    assert folded.stop_reason == "tool_calls"


def test_the_message_id_is_generated_once_per_stream() -> None:
    decoder = adapter.stream_decoder()
    first = decoder.feed(fixture("chat_stream.ndjson"))
    starts = [e for e in first if isinstance(e, MessageStart)]
    assert len(starts) == 1 and starts[0].id.startswith("ollama-")


def test_a_stream_without_its_done_chunk_is_truncated() -> None:
    lines = fixture("chat_stream.ndjson").splitlines(keepends=True)
    decoder = adapter.stream_decoder()
    decoder.feed(b"".join(lines[:-1]))
    with pytest.raises(StreamTruncated):
        decoder.close()


def test_the_done_chunk_without_a_final_newline_still_finishes_the_stream() -> None:
    events = decode([fixture("chat_stream.ndjson").rstrip(b"\n")])
    assert isinstance(events[-1], UsageReport)


def test_a_corrupt_stream_line_is_undecodable_and_keeps_the_raw_text() -> None:
    decoder = adapter.stream_decoder()
    with pytest.raises(UndecodableResponse) as caught:
        decoder.feed(b'{"model":"m","message":{"content":"a"},"done":false}\n{"model": oops\n')
    assert caught.value.raw == '{"model": oops'


def test_an_error_line_mid_stream_is_an_upstream_server_error() -> None:
    decoder = adapter.stream_decoder()
    with pytest.raises(UpstreamStatusError) as caught:
        decoder.feed(fixture("chat_stream_error.ndjson"))
    assert caught.value.upstream_status == 500
    assert caught.value.retryable
    assert "unexpected EOF" in caught.value.message
