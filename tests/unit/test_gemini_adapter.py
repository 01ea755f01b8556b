"""The Gemini adapter: generateContent requests out, answers and stream events in."""

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
from modelway.providers.gemini import GeminiAdapter, parse_usage
from modelway.providers.gemini_schema import gemini_schema
from modelway.types import (
    ChatRequest,
    EmbeddingRequest,
    ImagePart,
    Message,
    MessageEnd,
    MessageStart,
    ReasoningDelta,
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

FIXTURES = Path(__file__).parent.parent / "fixtures" / "gemini"
adapter = GeminiAdapter()


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def body_for(request: ChatRequest, model: str = "gemini-2.5-flash") -> dict[str, Any]:
    http = adapter.chat_request(request, model)
    assert http.body is not None
    result: dict[str, Any] = orjson.loads(http.body)
    return result


def user(text: str) -> Message:
    return Message(role="user", content=[TextPart(text)])


def decode(chunks: list[bytes]) -> list[StreamEvent]:
    return made_ids_numbered(decode_stream(adapter, chunks))


STREAM_TEXT_EVENTS: list[StreamEvent] = [
    MessageStart(id="cT9pZ9DVLq3bmNAP4_m2iAo", model="gemini-2.5-flash"),
    TextDelta("Hello"),
    TextDelta(", wörld! ☀️"),
    MessageEnd("stop"),
    UsageReport(Usage(prompt_tokens=25, completion_tokens=15)),
]

STREAM_FUNCTION_CALL_EVENTS: list[StreamEvent] = [
    MessageStart(id="Ak5qZ_XKJbOe1e8P9b2s-Qc", model="gemini-2.5-pro"),
    TextDelta("Let me check"),
    ReasoningDelta("The user wants weather."),
    TextDelta(" both cities:"),
    ReasoningDelta(signature="gemini:CiQBVKhc7mTRYmCxjV0="),
    ToolCallStart(index=0, id="made_0", name="get_weather"),
    ToolCallDelta(index=0, arguments='{"location":"San Francisco, CA"}'),
    ToolCallStart(index=1, id="fc_paris", name="get_weather"),
    ToolCallDelta(index=1, arguments='{"location":"Paris","unit":"celsius"}'),
    MessageEnd("tool_calls"),
    UsageReport(
        Usage(prompt_tokens=600, completion_tokens=89, cached_tokens=128, reasoning_tokens=32)
    ),
]

STREAMS = {
    "stream_text.sse": STREAM_TEXT_EVENTS,
    "stream_function_call.sse": STREAM_FUNCTION_CALL_EVENTS,
}


# --- request building ----------------------------------------------------------------


def test_chat_request_posts_to_the_model_generate_content_path() -> None:
    http = adapter.chat_request(ChatRequest(model="x", messages=[user("hi")]), "gemini-2.5-flash")
    assert (http.method, http.path) == ("POST", "/v1beta/models/gemini-2.5-flash:generateContent")
    assert http.headers["content-type"] == "application/json"


def test_streaming_uses_stream_generate_content_with_alt_sse() -> None:
    request = ChatRequest(model="x", messages=[user("hi")], stream=True)
    http = adapter.chat_request(request, "models/gemini-2.5-pro")
    assert http.path == "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    assert "stream" not in body_for(request)


def test_auth_headers_carry_the_key_as_x_goog_api_key() -> None:
    assert adapter.auth_headers("AIza-1") == {"x-goog-api-key": "AIza-1"}
    assert adapter.auth_headers(None) == {}


def test_a_plain_request_is_contents_only_and_names_no_model() -> None:
    assert body_for(ChatRequest(model="x", messages=[user("hi")])) == {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}]
    }


def test_system_messages_become_system_instruction() -> None:
    request = ChatRequest(
        model="x",
        messages=[Message(role="system", content=[TextPart("Be terse.")]), user("hi")],
    )
    body = body_for(request)
    assert body["systemInstruction"] == {"parts": [{"text": "Be terse."}]}
    assert body["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]


def test_sampling_and_stop_go_in_generation_config_and_extra_merges_into_it() -> None:
    request = ChatRequest(
        model="x",
        messages=[user("hi")],
        temperature=0.2,
        top_p=0.9,
        max_tokens=64,
        stop=["END"],
        user="u-42",
        extra={"generationConfig": {"topK": 5}, "safetySettings": []},
    )
    body = body_for(request)
    assert body["generationConfig"] == {
        "temperature": 0.2,
        "topP": 0.9,
        "maxOutputTokens": 64,
        "stopSequences": ["END"],
        "topK": 5,
    }
    assert body["safetySettings"] == []
    assert b"u-42" not in orjson.dumps(body)  # Gemini has no end-user field


def test_assistant_turns_are_model_turns_with_function_calls() -> None:
    call = ToolCall(id="toolu_1", name="get_weather", arguments='{"city": "Paris"}')
    second = ToolCall(id="toolu_2", name="get_time", arguments="")
    request = ChatRequest(
        model="x",
        messages=[
            user("weather?"),
            Message(role="assistant", content=[TextPart("Checking.")], tool_calls=[call, second]),
        ],
    )
    assert body_for(request)["contents"][1] == {
        "role": "model",
        "parts": [
            {"text": "Checking."},
            {
                "functionCall": {"id": "toolu_1", "name": "get_weather", "args": {"city": "Paris"}},
                "thoughtSignature": "skip_thought_signature_validator",
            },
            {"functionCall": {"id": "toolu_2", "name": "get_time", "args": {}}},
        ],
    }


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]"])
def test_tool_call_arguments_that_are_not_a_json_object_are_a_bad_request(arguments: str) -> None:
    call = ToolCall(id="c1", name="f", arguments=arguments)
    request = ChatRequest(
        model="x", messages=[user("hi"), Message(role="assistant", tool_calls=[call])]
    )
    with pytest.raises(BadRequest, match=r"messages\.1\.tool_calls\.0\.arguments"):
        adapter.chat_request(request, "gemini-x")


def test_tool_results_become_function_responses_with_the_id_and_name_of_their_call() -> None:
    calls = [ToolCall(id="t1", name="get_weather"), ToolCall(id="t2", name="lookup")]
    request = ChatRequest(
        model="x",
        messages=[
            user("go"),
            Message(role="assistant", tool_calls=calls),
            Message(role="tool", content=[TextPart('{"temp": 21}')], tool_call_id="t1"),
            Message(role="tool", content=[TextPart("plain text")], tool_call_id="t2"),
            user("thanks"),
        ],
    )
    contents = body_for(request)["contents"]
    assert [turn["role"] for turn in contents] == ["user", "model", "user"]
    assert contents[2]["parts"] == [
        {"functionResponse": {"id": "t1", "name": "get_weather", "response": {"temp": 21}}},
        {"functionResponse": {"id": "t2", "name": "lookup", "response": {"result": "plain text"}}},
        {"text": "thanks"},
    ]


def test_a_call_id_gemini_gave_goes_back_on_the_replayed_call_and_its_response() -> None:
    answer = fold_events(decode_stream(adapter, [fixture("stream_function_call.sse")]))
    paris = answer.message.tool_calls[1]
    result = Message(role="tool", content=[TextPart("18C")], tool_call_id=paris.id)
    request = ChatRequest(model="x", messages=[user("go"), answer.message, result])
    model_turn, results = body_for(request)["contents"][1:]
    assert model_turn["parts"][-1]["functionCall"]["id"] == "fc_paris"
    assert results["parts"][0]["functionResponse"]["id"] == "fc_paris"


def test_repeated_call_ids_name_the_most_recent_call() -> None:
    request = ChatRequest(
        model="x",
        messages=[
            user("go"),
            Message(role="assistant", tool_calls=[ToolCall(id="call_0", name="first")]),
            Message(role="tool", content=[TextPart("1")], tool_call_id="call_0"),
            Message(role="assistant", tool_calls=[ToolCall(id="call_0", name="second")]),
            Message(role="tool", content=[TextPart("[2]")], tool_call_id="call_0"),
        ],
    )
    last = body_for(request)["contents"][-1]["parts"][0]
    assert last["functionResponse"]["name"] == "second"


def test_a_tool_result_for_an_unknown_call_is_a_bad_request() -> None:
    request = ChatRequest(
        model="x", messages=[Message(role="tool", content=[TextPart("r")], tool_call_id="nope")]
    )
    with pytest.raises(BadRequest, match=r"messages\.0\.tool_call_id"):
        adapter.chat_request(request, "gemini-x")


def test_consecutive_same_role_turns_merge_and_empty_ones_are_dropped() -> None:
    request = ChatRequest(
        model="x",
        messages=[
            user("a"),
            user("b"),
            Message(role="assistant", content=[TextPart("c")]),
            Message(role="assistant", content=[TextPart("d")]),
            user(""),
        ],
    )
    assert body_for(request)["contents"] == [
        {"role": "user", "parts": [{"text": "a"}, {"text": "b"}]},
        {"role": "model", "parts": [{"text": "c"}, {"text": "d"}]},
    ]


def test_images_become_inline_data_or_file_data() -> None:
    parts = [
        ImagePart(data="iVBORw0KGgo=", media_type="image/png"),
        ImagePart(url="https://example.com/cat.webp"),
        ImagePart(url="data:image/jpeg;base64,/9j/4AAQ"),
    ]
    request = ChatRequest(model="x", messages=[Message(role="user", content=list(parts))])
    assert body_for(request)["contents"][0]["parts"] == [
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {"fileData": {"mimeType": "image/webp", "fileUri": "https://example.com/cat.webp"}},
        {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQ"}},
    ]


def test_a_data_url_that_is_not_base64_is_a_bad_request_naming_the_part() -> None:
    image = ImagePart(url="data:image/png,rawbytes")
    request = ChatRequest(model="x", messages=[Message(role="user", content=[image])])
    with pytest.raises(BadRequest, match=r"messages\.0\.content\.0"):
        adapter.chat_request(request, "gemini-x")


def test_tools_become_function_declarations_with_gemini_schemas() -> None:
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    }
    tools = [Tool(name="get_weather", description="Weather now.", parameters=schema), Tool("noop")]
    body = body_for(ChatRequest(model="x", messages=[user("hi")], tools=tools))
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Weather now.",
                    "parameters": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}},
                        "required": ["city"],
                    },
                },
                {"name": "noop"},  # Gemini rejects an object schema without properties
            ]
        }
    ]


def test_gemini_schema_strips_what_the_api_rejects_and_inlines_local_refs() -> None:
    schema = {
        "type": "object",
        "$defs": {"Unit": {"type": "string", "enum": ["c", "f"], "$comment": "x"}},
        "properties": {
            "unit": {"$ref": "#/$defs/Unit"},
            "note": {"type": ["string", "null"], "format": "uri", "maxLength": 9},
            "mode": {"const": "fast"},
            "pick": {"oneOf": [{"type": "integer", "exclusiveMinimum": 0}, {"type": "boolean"}]},
            "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
            "level": {"type": "integer", "enum": [1, 2]},
        },
        "additionalProperties": {"type": "string"},
    }
    assert gemini_schema(schema) == {
        "type": "object",
        "properties": {
            "unit": {"type": "string", "enum": ["c", "f"]},
            "note": {"type": "string", "nullable": True, "maxLength": 9},
            "mode": {"type": "string", "enum": ["fast"]},
            "pick": {"anyOf": [{"type": "integer"}, {"type": "boolean"}]},
            "tags": {"type": "array", "items": {"type": "string"}},
            # Gemini: "enum: only allowed for STRING type"; as strings, "1" would come back.
            "level": {"type": "integer", "description": "One of: 1, 2."},
        },
    }


def test_gemini_schema_leaves_out_properties_gemini_refuses() -> None:
    # Gemini: "properties: should be non-empty for OBJECT type", and properties and
    # required "only allowed for OBJECT type" (MCP tools' schemas hold both).
    schema = {
        "type": "object",
        "properties": {
            "meta": {"type": "object", "properties": {}, "required": []},
            "name": {"type": "string", "properties": {"x": {}}, "required": ["x"]},
            "kind": {"enum": ["a", "b"]},
            "size": {"type": "number", "enum": [1.5, 2], "description": "Size"},
            "on": {"const": True},
            "code": {"type": "string", "enum": [7], "format": "enum"},
        },
        "required": ["meta", "gone"],
    }
    assert gemini_schema(schema) == {
        "type": "object",
        "properties": {
            "meta": {"type": "object"},
            "name": {"type": "string"},
            "kind": {"enum": ["a", "b"], "type": "string"},
            "size": {"type": "number", "description": "Size (one of: 1.5, 2)"},
            "on": {"description": "One of: true."},
            "code": {"type": "string", "enum": ["7"]},
        },
        "required": ["meta"],
    }


def test_recursive_refs_stop_at_a_fixed_depth() -> None:
    schema = {
        "type": "object",
        "properties": {"node": {"$ref": "#/definitions/Node"}},
        "definitions": {
            "Node": {"type": "object", "properties": {"next": {"$ref": "#/definitions/Node"}}}
        },
    }
    converted = orjson.dumps(gemini_schema(schema))
    assert b"$ref" not in converted
    assert converted.count(b'"next"') == 8


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        ("get_weather", {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}),
    ],
)
def test_tool_choice_maps_to_function_calling_config(choice: str, expected: dict[str, Any]) -> None:
    request = ChatRequest(model="x", messages=[user("hi")], tools=[Tool("f")], tool_choice=choice)
    assert body_for(request)["toolConfig"] == {"functionCallingConfig": expected}


# --- non-streamed answers ------------------------------------------------------------


def test_parse_chat_reads_a_text_answer() -> None:
    response = adapter.parse_chat(fixture("generate_text.json"))
    assert (response.id, response.model) == ("mT9pZ4bSB5GXmNAPz6uXgAs", "gemini-2.5-flash")
    assert response.message == Message(
        role="assistant", content=[TextPart("Hello! How can I help you today?")]
    )
    assert response.stop_reason == "stop"
    assert response.usage == Usage(prompt_tokens=8, completion_tokens=9)


def test_parse_chat_reads_function_calls_with_made_ids_and_thinking_usage() -> None:
    response = adapter.parse_chat(fixture("generate_function_call.json"))
    assert response.stop_reason == "tool_calls"
    assert response.message.text() == "I'll check the weather in both cities."
    assert made_ids_numbered(response.message.tool_calls) == [
        ToolCall(
            id="made_0",
            name="get_weather",
            arguments='{"location":"San Francisco, CA","unit":"celsius"}',
        ),
        ToolCall(id="made_1", name="get_weather", arguments='{"location":"Paris"}'),
    ]
    # promptTokenCount includes cached tokens; thinking tokens count as completion.
    assert response.usage == Usage(
        prompt_tokens=1404, completion_tokens=73, cached_tokens=1000, reasoning_tokens=32
    )


def test_tool_call_ids_the_gateway_makes_differ_from_answer_to_answer() -> None:
    first, second = (adapter.parse_chat(fixture("generate_function_call.json")) for _ in "12")
    ids = [call.id for call in first.message.tool_calls + second.message.tool_calls]
    assert len(set(ids)) == 4


@pytest.mark.parametrize(
    ("gemini", "canonical"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("OTHER", "stop"),
        ("MALFORMED_FUNCTION_CALL", "stop"),
    ],
)
def test_finish_reasons_map_to_canonical(gemini: str, canonical: str) -> None:
    data = orjson.loads(fixture("generate_text.json"))
    data["candidates"][0]["finishReason"] = gemini
    assert adapter.parse_chat(orjson.dumps(data)).stop_reason == canonical


@pytest.mark.parametrize(
    "reason", ["MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS", "OTHER"]
)
def test_a_failure_finish_reason_without_an_answer_is_an_upstream_error(reason: str) -> None:
    answer = {"candidates": [{"content": {"role": "model"}, "finishReason": reason}]}
    with pytest.raises(EmptyResponse, match=reason):
        adapter.parse_chat(orjson.dumps(answer))
    with pytest.raises(EmptyResponse, match=reason):
        decode([b"data: " + orjson.dumps(answer) + b"\n\n"])


def test_a_blocked_prompt_is_a_content_filter_stop_with_no_text() -> None:
    body = b'{"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}}'
    response = adapter.parse_chat(body)
    assert (response.stop_reason, response.message.content) == ("content_filter", [])


def test_a_body_that_is_not_json_is_undecodable_and_keeps_the_text() -> None:
    with pytest.raises(UndecodableResponse) as caught:
        adapter.parse_chat(b"<html>Bad gateway</html>")
    assert caught.value.raw == "<html>Bad gateway</html>"


def test_an_answer_of_the_wrong_shape_is_undecodable() -> None:
    with pytest.raises(UndecodableResponse):
        adapter.parse_chat(b'{"candidates": [{"content": {"parts": [{"functionCall": {}}]}}]}')


def test_an_empty_body_is_an_empty_response() -> None:
    with pytest.raises(EmptyResponse):
        adapter.parse_chat(b"  ")


def test_an_error_body_raises_with_its_http_status() -> None:
    with pytest.raises(UpstreamStatusError) as caught:
        adapter.parse_chat(fixture("error_invalid_argument.json"))
    assert (caught.value.upstream_status, caught.value.status) == (400, 400)
    assert not caught.value.retryable


def test_error_message_reads_error_message_or_falls_back_to_raw_text() -> None:
    assert adapter.error_message(fixture("error_invalid_argument.json")).startswith(
        "Invalid JSON payload received."
    )
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


def test_a_last_chunk_without_its_blank_line_still_finishes_the_stream() -> None:
    assert decode([fixture("stream_text.sse").rstrip(b"\n")]) == STREAM_TEXT_EVENTS


def test_stream_without_a_finish_reason_is_truncated() -> None:
    data = fixture("stream_text.sse")
    cut = data.rindex(b"data: ")
    with pytest.raises(StreamTruncated):
        decode([data[:cut]])


def test_stream_ending_mid_chunk_is_truncated() -> None:
    data = fixture("stream_function_call.sse")
    with pytest.raises(StreamTruncated):
        decode([data[: len(data) - 40]])


def test_an_empty_stream_is_truncated() -> None:
    with pytest.raises(StreamTruncated):
        decode([])


def test_corrupt_stream_data_is_undecodable_and_keeps_the_raw_text() -> None:
    decoder = adapter.stream_decoder()
    with pytest.raises(UndecodableResponse) as caught:
        decoder.feed(b'data: {"candidates": [{"content": \n\n')
    assert caught.value.raw == '{"candidates": [{"content": '


def test_stream_chunk_of_the_wrong_shape_is_undecodable() -> None:
    with pytest.raises(UndecodableResponse):
        decode([b'data: {"candidates": [{"content": {"parts": [{"functionCall": 1}]}}]}\n\n'])


def test_stream_error_chunk_raises_after_the_events_before_it() -> None:
    head, _, tail = fixture("stream_error.sse").partition(b'data: {"error"')
    decoder = adapter.stream_decoder()
    assert decoder.feed(head) == [
        MessageStart(id="cT9pZ9DVLq3bmNAP4_m2iAo", model="gemini-2.5-flash"),
        TextDelta("Once upon"),
    ]
    with pytest.raises(UpstreamStatusError) as caught:
        decoder.feed(b'data: {"error"' + tail)
    assert (caught.value.upstream_status, caught.value.retryable) == (503, True)
    assert b"overloaded" in caught.value.body


@pytest.mark.parametrize(
    ("status", "code"),
    [("RESOURCE_EXHAUSTED", 429), ("INTERNAL", 500), ("UNAUTHENTICATED", 401)],
)
def test_an_error_without_a_code_takes_the_status_of_its_name(status: str, code: int) -> None:
    decoder = adapter.stream_decoder()
    chunk = b'data: {"error": {"message": "m", "status": "' + status.encode() + b'"}}\n\n'
    with pytest.raises(UpstreamStatusError) as caught:
        decoder.feed(chunk)
    assert caught.value.upstream_status == code


def test_a_blocked_prompt_stream_ends_with_content_filter() -> None:
    assert decode([fixture("stream_prompt_blocked.sse")]) == [
        MessageStart(id="bL0ck3dPr0mpt", model="gemini-2.5-flash"),
        MessageEnd("content_filter"),
        UsageReport(Usage(prompt_tokens=12)),
    ]


def test_chunks_after_the_finish_are_ignored() -> None:
    data = fixture("stream_text.sse")
    assert decode([data + data.split(b"\n\n")[0] + b"\n\n"]) == STREAM_TEXT_EVENTS


# --- embeddings and models -----------------------------------------------------------


def test_embeddings_are_one_batch_request_per_text() -> None:
    request = EmbeddingRequest(model="x", input=["a", "b"], dimensions=64)
    http = adapter.embeddings_request(request, "text-embedding-004")
    assert (http.method, http.path) == (
        "POST",
        "/v1beta/models/text-embedding-004:batchEmbedContents",
    )
    assert http.body is not None
    assert orjson.loads(http.body) == {
        "requests": [
            {
                "model": "models/text-embedding-004",
                "content": {"parts": [{"text": text}]},
                "outputDimensionality": 64,
            }
            for text in ("a", "b")
        ]
    }
    vectors = adapter.parse_embeddings(fixture("batch_embed.json")).vectors
    assert vectors == [
        [0.013168523, -0.008711934, -0.046782676],
        [-0.0076223905, 0.03203221, 0.011095003],
    ]


def test_more_texts_than_a_gemini_batch_takes_are_refused_before_the_upstream() -> None:
    """Google refuses over 100 requests a batch; the gateway takes 2048 texts a call."""
    assert adapter.embeddings_request(EmbeddingRequest("x", ["t"] * 100), "e").body
    with pytest.raises(BadRequest, match="at most 100 texts a request, not 150"):
        adapter.embeddings_request(EmbeddingRequest("x", ["t"] * 150), "e")


def test_an_embeddings_answer_of_the_wrong_shape_is_undecodable() -> None:
    with pytest.raises(UndecodableResponse):
        adapter.parse_embeddings(b'{"embedding": {"values": [1]}}')


def test_models_are_listed_without_their_models_prefix() -> None:
    http = adapter.models_request()
    assert (http.method, http.path.split("?")[0]) == ("GET", "/v1beta/models")
    assert adapter.parse_models(fixture("models.json")) == [
        "gemini-2.5-flash",
        "text-embedding-004",
    ]


def test_usage_counts_cached_content_inside_the_prompt_and_reports_no_cache_writes() -> None:
    metadata = {
        "promptTokenCount": 1404,
        "candidatesTokenCount": 9,
        "cachedContentTokenCount": 1000,
    }
    assert parse_usage(metadata) == Usage(
        prompt_tokens=1404, completion_tokens=9, cached_tokens=1000, cache_write_tokens=0
    )


def test_refs_that_fan_out_are_refused_not_expanded_exponentially() -> None:
    # Six references a level, inlined at every use to the depth bound: 1.7 million nodes,
    # and a worker that froze and grew to 11 GB (found by fuzzing).
    props = {f"p{i}": {"$ref": "#/$defs/n"} for i in range(6)}
    schema = {"type": "object", "$defs": {"n": {"type": "object", "properties": props}}}
    with pytest.raises(BadRequest, match=r"^where: past 10,000 nodes"):
        gemini_schema({**schema, "properties": props}, "where")
    tools = [Tool(name="f", parameters={**schema, "properties": props})]
    with pytest.raises(BadRequest, match="tool 'f' parameters"):
        body_for(ChatRequest(model="x", messages=[user("hi")], tools=tools))


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": 1, "required": ["a"]},
        {"type": "object", "properties": {"a": {"type": "string"}}, "required": [{}]},
        {"$defs": []},
        {"definitions": "x", "$defs": {"n": 5}, "properties": {"a": {"$ref": "#/$defs/n"}}},
        {"format": []},
        {"format": {}},
        {"oneOf": None},
        {"oneOf": 3},
        {"anyOf": 3},
        {"type": 5},
        {"type": [None, {}]},
        {"enum": [2**70, True]},
    ],
)
def test_keywords_of_the_wrong_kind_are_left_out_not_a_crash(schema: dict[str, Any]) -> None:
    converted = gemini_schema(schema)
    assert isinstance(converted, dict)
    orjson.dumps(converted)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "type",
                    "properties",
                    "required",
                    "items",
                    "enum",
                    "const",
                    "$ref",
                    "$defs",
                    "anyOf",
                    "oneOf",
                    "format",
                    "description",
                    "nullable",
                    "x",
                ]
            ),
            inner,
            max_size=5,
        )
    ),
    max_leaves=30,
)


@given(schema=st.dictionaries(st.text(max_size=10), JSON_VALUES, max_size=6) | JSON_VALUES)
def test_any_json_schema_converts_or_is_a_bad_request(schema: Any) -> None:
    if not isinstance(schema, dict):
        schema = {"properties": {"a": schema}}
    try:
        converted = gemini_schema(schema)
    except BadRequest:
        return
    assert isinstance(converted, dict)
