"""The Ollama dialect: decoding /api/chat requests, encoding answers, and round trips."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ollama
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelway.dialects.ollama import OllamaDialect
from modelway.dialects.ollama_generate import OllamaGenerateDialect
from modelway.errors import BadRequest, UpstreamStatusError
from modelway.providers.ollama import OllamaAdapter, build_chat_body
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
from tests.unit.wire import made_ids_numbered

FIXTURES = Path(__file__).parent.parent / "fixtures" / "ollama"
dialect = OllamaDialect()
adapter = OllamaAdapter()


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], **fields}


def lines(data: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in data.splitlines()]


def encode_stream(events: list[StreamEvent], request: ChatRequest | None = None) -> bytes:
    encoder = dialect.stream_encoder(request or ChatRequest("alias", []))
    return b"".join(encoder.encode(e) for e in events) + encoder.finish()


def decode_stream(data: bytes) -> list[StreamEvent]:
    decoder = adapter.stream_decoder()
    return decoder.feed(data) + decoder.close()


# --- decoding requests ----------------------------------------------------------------


def test_a_request_streams_by_default_as_ollama_does_and_always_wants_usage() -> None:
    request = dialect.decode_chat(chat())
    assert request.model == "llama3.2"
    assert request.messages == [Message(role="user", content=[TextPart("hi")])]
    assert request.stream is True
    assert request.include_usage is True
    assert dialect.decode_chat(chat(stream=False)).stream is False
    assert dialect.decode_chat(chat(stream=None)).stream is True


def test_options_map_to_canonical_sampling_settings() -> None:
    options = {"temperature": 0, "top_p": 0.5, "num_predict": 100, "stop": ["\n"], "seed": 1}
    request = dialect.decode_chat(chat(options=options))
    assert (request.temperature, request.top_p, request.max_tokens, request.stop) == (
        0,
        0.5,
        100,
        ["\n"],
    )


def test_num_predict_minus_one_means_no_token_limit() -> None:
    assert dialect.decode_chat(chat(options={"num_predict": -1})).max_tokens is None


def test_ollama_only_fields_are_not_passed_on_to_other_providers() -> None:
    request = dialect.decode_chat(chat(format="json", keep_alive="5m", think=True))
    assert request.extra == {}


def test_images_become_inline_parts_with_a_media_type_sniffed_from_the_data() -> None:
    message = {"role": "user", "content": "what?", "images": ["iVBORw0KGgoAAAA", "/9j/4AAQ"]}
    request = dialect.decode_chat(chat(messages=[message]))
    assert request.messages[0].content == [
        TextPart("what?"),
        ImagePart(data="iVBORw0KGgoAAAA", media_type="image/png"),
        ImagePart(data="/9j/4AAQ", media_type="image/jpeg"),
    ]


def test_tool_results_are_linked_to_their_calls_by_tool_name() -> None:
    messages = [
        {"role": "user", "content": "weather and time?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
                {"function": {"name": "get_time", "arguments": {}}},
            ],
        },
        {"role": "tool", "content": "12:00", "tool_name": "get_time"},
        {"role": "tool", "content": "sunny", "tool_name": "get_weather"},
    ]
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    request = dialect.decode_chat(chat(messages=messages, tools=tools))
    calls = request.messages[1].tool_calls
    assert calls == [
        ToolCall("call_1_0", "get_weather", '{"city":"Paris"}'),
        ToolCall("call_1_1", "get_time", "{}"),
    ]
    assert request.messages[2] == Message(
        role="tool", content=[TextPart("12:00")], tool_call_id="call_1_1", name="get_time"
    )
    assert request.messages[3].tool_call_id == "call_1_0"
    assert request.tools == [
        Tool("get_weather", "", {"type": "object", "properties": {}}),
    ]


def test_a_tool_result_without_tool_name_answers_the_next_open_call() -> None:
    messages = [
        {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": {}}}]},
        {"role": "tool", "content": "done"},
    ]
    request = dialect.decode_chat(chat(messages=messages))
    assert request.messages[1].tool_call_id == "call_0_0"


def test_a_tool_result_whose_name_matches_no_call_answers_the_next_open_one() -> None:
    """Ollama goes by order and takes such a result; an upstream that needs ids gets the
    open call's, not a null that OpenAI and Anthropic refuse."""
    messages = [
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "tool_calls": [
                {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
                {"function": {"name": "get_time", "arguments": {}}},
            ],
        },
        {"role": "tool", "content": "12:00", "tool_name": "get_time"},
        {"role": "tool", "content": "sunny", "tool_name": "wrong_name"},
        {"role": "tool", "content": "one too many", "tool_name": "get_time"},
    ]
    request = dialect.decode_chat(chat(messages=messages))
    ids = [message.tool_call_id for message in request.messages[2:]]
    assert ids == ["call_1_1", "call_1_0", None]  # the third answers nothing left open


def test_an_ollama_request_survives_decoding_and_re_encoding_for_ollama() -> None:
    body = {
        "model": "llama3.2",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "look", "images": ["iVBORw0KGgo="]},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1}}}],
            },
            {"role": "tool", "content": "ok", "tool_name": "f"},
        ],
        "stream": False,
        "tools": [
            {
                "type": "function",
                "function": {"name": "f", "description": "d", "parameters": {"type": "object"}},
            }
        ],
        "options": {"temperature": 0.1, "top_p": 0.9, "num_predict": 10, "stop": ["x"]},
    }
    assert build_chat_body(dialect.decode_chat(body), "llama3.2") == body


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "the request body must be a JSON object"),
        ({"messages": []}, "model:"),
        (chat(model=""), "model:"),
        (chat(messages="hi"), "messages:"),
        (chat(messages=[]), "messages:"),
        (chat(messages=["hi"]), "messages.0:"),
        (chat(messages=[{"role": "robot", "content": "x"}]), "messages.0.role:"),
        (chat(messages=[{"role": "user", "content": ["x"]}]), "messages.0.content:"),
        (chat(messages=[{"role": "user", "images": "abc"}]), "messages.0.images:"),
        (chat(messages=[{"role": "user", "images": [1]}]), "messages.0.images.0:"),
        (
            chat(messages=[{"role": "assistant", "tool_calls": [{"name": "f"}]}]),
            "messages.0.tool_calls.0.function:",
        ),
        (
            chat(messages=[{"role": "assistant", "tool_calls": [{"function": {"name": 1}}]}]),
            "messages.0.tool_calls.0.function.name:",
        ),
        (
            chat(
                messages=[
                    {
                        "role": "assistant",
                        "tool_calls": [{"function": {"name": "f", "arguments": 3}}],
                    }
                ]
            ),
            "messages.0.tool_calls.0.function.arguments:",
        ),
        (
            chat(messages=[{"role": "user", "tool_calls": [{"function": {"name": "f"}}]}]),
            "messages.0.tool_calls:",
        ),
        (chat(messages=[{"role": "tool", "tool_name": 5}]), "messages.0.tool_name:"),
        (chat(tools={"f": 1}), "tools:"),
        (chat(tools=[{"type": "function"}]), "tools.0.function:"),
        (chat(tools=[{"function": {"description": "d"}}]), "tools.0.function.name:"),
        (chat(options=[]), "options:"),
        (chat(options={"temperature": "hot"}), "options.temperature:"),
        (chat(options={"top_p": True}), "options.top_p:"),
        (chat(options={"num_predict": 1.5}), "options.num_predict:"),
        (chat(options={"stop": [1]}), "options.stop:"),
        (chat(stream="yes"), "stream:"),
    ],
)
def test_a_bad_request_is_refused_naming_the_bad_field(body: Any, field: str) -> None:
    with pytest.raises(BadRequest) as caught:
        dialect.decode_chat(body)
    assert caught.value.message.startswith(field)


# --- encoding answers -----------------------------------------------------------------

ANSWER = ChatResponse(
    id="resp_1",
    model="llama3.2",
    message=Message(role="assistant", content=[TextPart("Hello there.")]),
    stop_reason="stop",
    usage=Usage(prompt_tokens=12, completion_tokens=3),
    created=1734012823,
)
TOOL_ANSWER = ChatResponse(
    id="resp_2",
    model="qwen3",
    message=Message(
        role="assistant",
        content=[TextPart("Checking.")],
        tool_calls=[
            ToolCall("toolu_x", "get_weather", '{"city":"Paris","days":[1,2]}'),
            ToolCall("toolu_y", "get_time", "{}"),
        ],
    ),
    stop_reason="tool_calls",
    usage=Usage(prompt_tokens=40, completion_tokens=9),
    created=1734012823,
)


def test_an_answer_is_encoded_as_ollama_non_stream_chat_json() -> None:
    body = orjson.loads(dialect.encode_response(ANSWER))
    assert body == {
        "model": "llama3.2",
        "created_at": "2024-12-12T14:13:43.000000Z",
        "message": {"role": "assistant", "content": "Hello there."},
        "done": True,
        "done_reason": "stop",
        "total_duration": 0,
        "load_duration": 0,
        "prompt_eval_count": 12,
        "prompt_eval_duration": 0,
        "eval_count": 3,
        "eval_duration": 0,
    }


def test_encoded_answers_validate_against_the_official_ollama_client_types() -> None:
    for answer in (ANSWER, TOOL_ANSWER):
        parsed = ollama.ChatResponse.model_validate_json(dialect.encode_response(answer))
        assert parsed.done is True
        assert parsed.message.content == answer.message.text()
    parsed = ollama.ChatResponse.model_validate_json(dialect.encode_response(TOOL_ANSWER))
    assert parsed.message.tool_calls is not None
    assert parsed.message.tool_calls[0].function.arguments == {"city": "Paris", "days": [1, 2]}


def test_tool_arguments_that_are_not_a_json_object_are_sent_as_an_empty_object() -> None:
    answer = ChatResponse(
        id="r",
        model="m",
        message=Message(role="assistant", tool_calls=[ToolCall("c", "f", '{"broken')]),
        stop_reason="tool_calls",
    )
    body = orjson.loads(dialect.encode_response(answer))
    assert body["message"]["tool_calls"] == [{"function": {"name": "f", "arguments": {}}}]
    assert "prompt_eval_count" not in body


def test_errors_are_a_bare_error_string() -> None:
    error = BadRequest("messages: required")
    assert orjson.loads(dialect.encode_error(error)) == {"error": "messages: required"}
    assert dialect.stream_media_type == "application/x-ndjson"


# --- encoding streams -----------------------------------------------------------------


def test_text_deltas_stream_as_one_line_each_and_the_done_line_ends_the_stream() -> None:
    encoder = dialect.stream_encoder(ChatRequest("alias", []))
    assert encoder.encode(MessageStart(id="m", model="llama3.2")) == b""
    first = lines(encoder.encode(TextDelta("Hel")))
    assert first == [
        {
            "model": "llama3.2",
            "created_at": first[0]["created_at"],
            "message": {"role": "assistant", "content": "Hel"},
            "done": False,
        }
    ]
    assert encoder.encode(TextDelta("")) == b""
    assert encoder.encode(MessageEnd("length")) == b""
    assert encoder.encode(UsageReport(Usage(prompt_tokens=5, completion_tokens=2))) == b""
    final = lines(encoder.finish())
    assert final[0]["done"] is True
    assert final[0]["done_reason"] == "length"
    assert (final[0]["prompt_eval_count"], final[0]["eval_count"]) == (5, 2)
    assert encoder.finish() == b""


#: An upstream reporting usage in every chunk, before its stop (vLLM's continuous usage
#: stats; the OpenAI provider passes each on): the answer goes on after the first report.
USAGE_EVERY_CHUNK = [
    MessageStart(id="m", model="llama3.2"),
    TextDelta("one "),
    UsageReport(Usage(prompt_tokens=11, completion_tokens=1)),
    TextDelta("two "),
    UsageReport(Usage(prompt_tokens=11, completion_tokens=2)),
    TextDelta("three"),
    MessageEnd("stop"),
    UsageReport(Usage(prompt_tokens=11, completion_tokens=3)),
]


@pytest.mark.parametrize("chat", [True, False], ids=["api-chat", "api-generate"])
def test_one_done_line_ends_a_stream_whose_usage_came_in_every_chunk(chat: bool) -> None:
    encoder = (dialect if chat else OllamaGenerateDialect()).stream_encoder(
        ChatRequest("alias", [])
    )
    data = b"".join(encoder.encode(event) for event in USAGE_EVERY_CHUNK) + encoder.finish()
    streamed = lines(data)
    assert [line["done"] for line in streamed] == [False, False, False, True]
    texts = [line["message"]["content"] if chat else line["response"] for line in streamed]
    assert "".join(texts) == "one two three"
    done = streamed[-1]
    assert (done["done_reason"], done["prompt_eval_count"], done["eval_count"]) == ("stop", 11, 3)


def test_tool_calls_are_streamed_whole_once_the_answer_ends() -> None:
    encoder = dialect.stream_encoder(ChatRequest("alias", []))
    held = [
        encoder.encode(MessageStart(id="m", model="qwen3")),
        encoder.encode(ToolCallStart(index=0, id="c", name="get_weather")),
        encoder.encode(ToolCallDelta(index=0, arguments='{"city":')),
        encoder.encode(ToolCallDelta(index=0, arguments='"Oslo"}')),
    ]
    assert held == [b"", b"", b"", b""]
    out = lines(encoder.encode(MessageEnd("tool_calls")))
    assert out[0]["message"]["tool_calls"] == [
        {"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}
    ]
    assert out[0]["done"] is False
    final = lines(encoder.finish())
    assert final[0]["done"] is True and final[0]["done_reason"] == "stop"
    assert "prompt_eval_count" not in final[0]


def test_every_streamed_line_validates_against_the_official_ollama_client_types() -> None:
    for line in encode_stream(response_events(TOOL_ANSWER)).splitlines():
        ollama.ChatResponse.model_validate_json(line)


def test_the_stream_model_falls_back_to_the_requested_model() -> None:
    data = encode_stream([MessageStart(id="", model=""), TextDelta("x")], ChatRequest("mine", []))
    assert {line["model"] for line in lines(data)} == {"mine"}


def test_a_failure_mid_stream_is_an_error_line_and_ends_the_stream() -> None:
    encoder = dialect.stream_encoder(ChatRequest("alias", []))
    encoder.encode(TextDelta("partial"))
    error = UpstreamStatusError("upstream broke", upstream_status=500)
    assert lines(encoder.error(error)) == [{"error": "upstream broke"}]
    assert encoder.finish() == b""


# --- round trips through the adapter --------------------------------------------------


def same_modulo_ids(got: ChatResponse, want: ChatResponse) -> None:
    """Equal except for ids, which Ollama cannot carry (the gateway makes tool call ids)."""
    assert got.model == want.model
    assert got.message.text() == want.message.text()
    assert [(c.name, orjson.loads(c.arguments)) for c in got.message.tool_calls] == [
        (c.name, orjson.loads(c.arguments)) for c in want.message.tool_calls
    ]
    assert [c.id for c in made_ids_numbered(got.message.tool_calls)] == [
        f"made_{i}" for i in range(len(want.message.tool_calls))
    ]
    assert got.stop_reason == want.stop_reason
    assert got.usage == want.usage


@pytest.mark.parametrize("answer", [ANSWER, TOOL_ANSWER], ids=["text", "tools"])
def test_an_encoded_answer_parses_back_to_the_same_answer(answer: ChatResponse) -> None:
    parsed = adapter.parse_chat(dialect.encode_response(answer))
    same_modulo_ids(parsed, answer)
    assert parsed.created == answer.created


@pytest.mark.parametrize("answer", [ANSWER, TOOL_ANSWER], ids=["text", "tools"])
def test_an_encoded_stream_decodes_back_to_the_same_events(answer: ChatResponse) -> None:
    events = decode_stream(encode_stream(response_events(answer)))
    assert [e for e in made_ids_numbered(events) if not isinstance(e, MessageStart)] == [
        e for e in response_events(_with_ollama_ids(answer)) if not isinstance(e, MessageStart)
    ]
    same_modulo_ids(fold_events(events), answer)


def _with_ollama_ids(answer: ChatResponse) -> ChatResponse:
    calls = [
        ToolCall(f"made_{i}", c.name, orjson.dumps(orjson.loads(c.arguments)).decode())
        for i, c in enumerate(answer.message.tool_calls)
    ]
    message = Message(role="assistant", content=answer.message.content, tool_calls=calls)
    return ChatResponse(answer.id, answer.model, message, answer.stop_reason, answer.usage)


def test_a_stream_without_usage_still_ends_with_a_done_line() -> None:
    events = decode_stream(
        encode_stream([MessageStart("i", "m"), TextDelta("x"), MessageEnd("stop")])
    )
    assert [type(e) for e in events] == [MessageStart, TextDelta, MessageEnd]


@given(
    st.lists(st.text(min_size=1), max_size=8),
    st.lists(
        st.tuples(
            st.from_regex(r"[a-z_]{1,12}", fullmatch=True),
            st.dictionaries(
                st.text(max_size=5), st.integers(-(2**53), 2**53) | st.text(max_size=5), max_size=3
            ),
        ),
        max_size=3,
    ),
    st.integers(0, 10_000),
    st.integers(0, 10_000),
)
def test_any_answer_streams_through_ollama_ndjson_unchanged(
    texts: list[str],
    calls: list[tuple[str, dict[str, Any]]],
    prompt_tokens: int,
    completion_tokens: int,
) -> None:
    usage = Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
    events: list[StreamEvent] = [MessageStart("id", "m"), *[TextDelta(t) for t in texts]]
    for i, (name, arguments) in enumerate(calls):
        events += [
            ToolCallStart(index=i, id=f"x{i}", name=name),
            ToolCallDelta(index=i, arguments=orjson.dumps(arguments).decode()),
        ]
    events += [MessageEnd("tool_calls" if calls else "stop"), UsageReport(usage)]
    folded = fold_events(decode_stream(encode_stream(events)))
    assert folded.message.text() == "".join(texts)
    assert [(c.name, orjson.loads(c.arguments)) for c in folded.message.tool_calls] == calls
    assert folded.stop_reason == ("tool_calls" if calls else "stop")
    assert folded.usage == usage


# --- /api/generate ----------------------------------------------------------------------


def test_generate_answers_carry_thinking_whole_and_streamed() -> None:
    generate = OllamaGenerateDialect()
    message = Message(role="assistant", content=[TextPart("4")], reasoning="2 + 2 is 4.")
    answer = ChatResponse(id="r", model="qwen3", message=message)
    whole = ollama.GenerateResponse.model_validate_json(generate.encode_response(answer))
    encoder = generate.stream_encoder(ChatRequest("qwen3", []))
    streamed = b"".join(encoder.encode(event) for event in response_events(answer))
    chunks = [ollama.GenerateResponse.model_validate(line) for line in lines(streamed)]

    assert (whole.thinking, whole.response) == ("2 + 2 is 4.", "4")
    assert "".join(chunk.thinking or "" for chunk in chunks) == "2 + 2 is 4."
    assert "".join(chunk.response for chunk in chunks) == "4"
