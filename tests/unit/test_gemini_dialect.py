"""The Gemini dialect: generateContent bodies in, responses, SSE chunks and errors out."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelway.errors import (
    AuthenticationError,
    BadRequest,
    ConnectError,
    ModelwayError,
    NotFound,
    PermissionDenied,
    RateLimited,
    StreamTruncated,
    Timeout,
    UpstreamStatusError,
)
from modelway.mock.gemini_dialect import GeminiDialect
from modelway.providers.gemini import GeminiAdapter
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

dialect = GeminiDialect()
adapter = GeminiAdapter()

WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}}


def request_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "gemini-2.5-flash",
        "contents": [{"role": "user", "parts": [{"text": "Hello"}]}],
    }
    body.update(overrides)
    return body


def encode_stream(events: list[StreamEvent], model: str = "gemini-2.5-flash") -> bytes:
    encoder = dialect.stream_encoder(ChatRequest(model=model, messages=[]))
    return b"".join(encoder.encode(event) for event in events) + encoder.finish()


def decode_stream(data: bytes) -> list[StreamEvent]:
    decoder = adapter.stream_decoder()
    return decoder.feed(data) + decoder.close()


def sse_chunks(data: bytes) -> list[dict[str, Any]]:
    assert data.endswith(b"\n\n")
    return [orjson.loads(item.removeprefix(b"data: ")) for item in data.split(b"\n\n") if item]


TEXT_ANSWER = ChatResponse(
    id="resp-1",
    model="gemini-2.5-flash",
    message=Message(role="assistant", content=[TextPart("Hello there!")]),
    stop_reason="stop",
    usage=Usage(prompt_tokens=30, completion_tokens=4, cached_tokens=10),
)

TOOL_ANSWER = ChatResponse(
    id="resp-2",
    model="gemini-2.5-flash",
    message=Message(
        role="assistant",
        content=[TextPart("Let me check.")],
        tool_calls=[
            ToolCall(id="call_0", name="get_weather", arguments='{"city":"Paris"}'),
            ToolCall(id="call_1", name="get_time", arguments='{"zone":"CET","utc":false}'),
        ],
    ),
    stop_reason="tool_calls",
    usage=Usage(prompt_tokens=120, completion_tokens=40),
)

TOOL_STREAM: list[StreamEvent] = [
    MessageStart(id="resp-3", model="gemini-2.5-flash"),
    TextDelta("Let me "),
    TextDelta("check."),
    ToolCallStart(index=0, id="call_0", name="get_weather"),
    ToolCallDelta(index=0, arguments='{"city": '),
    ToolCallDelta(index=0, arguments='"Paris"}'),
    ToolCallStart(index=1, id="call_1", name="get_time"),
    ToolCallDelta(index=1, arguments='{"zone": "CET"}'),
    MessageEnd("tool_calls"),
    UsageReport(Usage(prompt_tokens=120, completion_tokens=40, cached_tokens=100)),
]


# --- decoding requests ---------------------------------------------------------------


def test_a_minimal_request_decodes_to_canonical_form() -> None:
    request = dialect.decode_chat(request_body(model="models/gemini-2.5-flash"))
    assert request == ChatRequest(
        model="gemini-2.5-flash",
        messages=[Message(role="user", content=[TextPart("Hello")])],
        include_usage=True,
    )


def test_the_route_marks_streaming_requests() -> None:
    assert dialect.decode_chat(request_body(stream=True)).stream
    assert not dialect.decode_chat(request_body()).stream


def test_system_instruction_and_generation_config_decode() -> None:
    request = dialect.decode_chat(
        request_body(
            systemInstruction={"role": "user", "parts": [{"text": "Be "}, {"text": "terse."}]},
            generationConfig={
                "temperature": 0.3,
                "topP": 0.8,
                "maxOutputTokens": 99,
                "stopSequences": ["END"],
                "topK": 3,
            },
        )
    )
    assert request.messages[0] == Message(role="system", content=[TextPart("Be terse.")])
    assert (request.temperature, request.top_p, request.max_tokens) == (0.3, 0.8, 99)
    assert request.stop == ["END"]


def test_proto_style_snake_case_field_names_decode_too() -> None:
    request = dialect.decode_chat(
        request_body(
            system_instruction={"parts": [{"text": "sys"}]},
            contents=[
                {
                    "parts": [
                        {"text": "look"},
                        {"inline_data": {"mime_type": "image/png", "data": "iVBORw0KGgo="}},
                    ]
                }
            ],
            generation_config={"max_output_tokens": 5},
        )
    )
    assert request.system_text() == "sys"
    assert request.messages[1].content[1] == ImagePart(data="iVBORw0KGgo=", media_type="image/png")
    assert request.max_tokens == 5


def test_images_decode_from_inline_data_and_file_data() -> None:
    parts = [
        {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQ"}},
        {"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/a.png"}},
    ]
    request = dialect.decode_chat(request_body(contents=[{"role": "user", "parts": parts}]))
    assert request.messages[0].content == [
        ImagePart(data="/9j/4AAQ", media_type="image/jpeg"),
        ImagePart(url="https://example.com/a.png", media_type="image/png"),
    ]


def test_function_calls_and_responses_become_tool_calls_and_tool_messages() -> None:
    contents = [
        {"role": "user", "parts": [{"text": "Weather in Paris and the time?"}]},
        {
            "role": "model",
            "parts": [
                {"thought": True, "text": "planning"},
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                {"functionCall": {"id": "t-9", "name": "get_time", "args": {}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"id": "t-9", "name": "get_time", "response": {"t": 9}}},
                {"functionResponse": {"name": "get_weather", "response": {"result": "sunny"}}},
                {"text": "Thanks!"},
            ],
        },
    ]
    messages = dialect.decode_chat(request_body(contents=contents)).messages
    assert messages[1] == Message(
        role="assistant",
        tool_calls=[
            ToolCall(id="call_1_0", name="get_weather", arguments='{"city":"Paris"}'),
            ToolCall(id="t-9", name="get_time", arguments="{}"),
        ],
    )
    assert messages[2:] == [
        Message(role="tool", content=[TextPart('{"t":9}')], tool_call_id="t-9", name="get_time"),
        Message(
            role="tool", content=[TextPart("sunny")], tool_call_id="call_1_0", name="get_weather"
        ),
        Message(role="user", content=[TextPart("Thanks!")]),
    ]


def test_a_decoded_tool_conversation_builds_the_same_gemini_contents() -> None:
    contents = [
        {"role": "user", "parts": [{"text": "Weather?"}]},
        {
            "role": "model",
            "parts": [{"functionCall": {"id": "fc_1", "name": "get_weather", "args": {"a": 1}}}],
        },
        {
            "role": "user",
            "parts": [
                {
                    "functionResponse": {
                        "id": "fc_1",
                        "name": "get_weather",
                        "response": {"temp": 21},
                    }
                }
            ],
        },
    ]
    request = dialect.decode_chat(request_body(contents=contents))
    http = adapter.chat_request(request, "gemini-2.5-flash")
    assert http.body is not None
    rebuilt = orjson.loads(http.body)["contents"]
    rebuilt[1]["parts"][0].pop("thoughtSignature")
    assert rebuilt == contents


def test_tools_and_tool_config_decode() -> None:
    tools = [
        {
            "functionDeclarations": [
                {"name": "get_weather", "description": "Weather.", "parameters": WEATHER_SCHEMA},
                {
                    "name": "upper",
                    "parameters": {"type": "OBJECT", "properties": {"s": {"type": "STRING"}}},
                },
                {"name": "raw", "parameters_json_schema": {"type": "object"}},
            ]
        }
    ]
    config = {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["upper"]}}
    request = dialect.decode_chat(request_body(tools=tools, toolConfig=config))
    assert request.tools == [
        Tool(name="get_weather", description="Weather.", parameters=WEATHER_SCHEMA),
        Tool(name="upper", parameters={"type": "object", "properties": {"s": {"type": "string"}}}),
        Tool(name="raw", parameters={"type": "object"}),
    ]
    assert request.tool_choice == "upper"


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"mode": "AUTO"}, "auto"),
        ({"mode": "NONE"}, "none"),
        ({"mode": "ANY"}, "required"),
        ({"mode": "ANY", "allowedFunctionNames": ["a", "b"]}, "required"),
        ({}, None),
    ],
)
def test_function_calling_modes_decode(config: dict[str, Any], expected: str | None) -> None:
    body = request_body(toolConfig={"functionCallingConfig": config})
    assert dialect.decode_chat(body).tool_choice == expected


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"model": None}, "model"),
        ({"contents": []}, "contents"),
        ({"contents": [{"role": "system", "parts": []}]}, r"contents\.0\.role"),
        ({"contents": [{"role": "user"}]}, r"contents\.0\.parts"),
        ({"contents": [{"parts": [{"video": 1}]}]}, r"contents\.0\.parts\.0: unsupported part"),
        (
            {"contents": [{"parts": [{"inlineData": {"mimeType": "audio/wav", "data": "AA"}}]}]},
            r"contents\.0\.parts\.0\.inlineData\.mimeType",
        ),
        (
            {"contents": [{"parts": [{"inlineData": {"mimeType": "image/png"}}]}]},
            r"contents\.0\.parts\.0\.inlineData\.data",
        ),
        (
            {"contents": [{"role": "model", "parts": [{"functionCall": {"args": {}}}]}]},
            r"contents\.0\.parts\.0\.functionCall\.name",
        ),
        (
            {
                "contents": [
                    {"role": "model", "parts": [{"functionCall": {"name": "f", "args": 1}}]}
                ]
            },
            r"contents\.0\.parts\.0\.functionCall\.args",
        ),
        (
            {"contents": [{"parts": [{"functionResponse": {"name": "f", "response": {}}}]}]},
            r"contents\.0\.parts\.0\.functionResponse\.name: no earlier functionCall",
        ),
        (
            {"contents": [{"parts": [{"functionCall": {"name": "f"}}]}]},
            r"contents\.0\.parts\.0\.functionCall: not allowed in a 'user' turn",
        ),
        ({"systemInstruction": {"parts": [{"inlineData": {}}]}}, r"systemInstruction\.parts\.0"),
        ({"tools": [{"googleSearch": {}}]}, r"tools\.0: only functionDeclarations"),
        ({"tools": [{"functionDeclarations": [{}]}]}, r"tools\.0\.functionDeclarations\.0\.name"),
        ({"toolConfig": {"functionCallingConfig": {"mode": "SOME"}}}, "mode"),
        ({"generationConfig": {"temperature": "hot"}}, r"generationConfig\.temperature"),
        ({"generationConfig": {"maxOutputTokens": 0}}, r"generationConfig\.maxOutputTokens"),
        ({"generationConfig": {"stopSequences": "END"}}, r"generationConfig\.stopSequences"),
        ({"generationConfig": {"candidateCount": 2}}, r"generationConfig\.candidateCount"),
        ({"generationConfig": []}, "generationConfig"),
    ],
)
def test_invalid_requests_are_bad_requests_naming_the_field(
    overrides: dict[str, Any], field: str
) -> None:
    with pytest.raises(BadRequest, match=field):
        dialect.decode_chat(request_body(**overrides))


def test_a_body_that_is_not_an_object_is_a_bad_request() -> None:
    with pytest.raises(BadRequest, match="body"):
        dialect.decode_chat([])


# --- encoding answers ----------------------------------------------------------------


@pytest.mark.parametrize("answer", [TEXT_ANSWER, TOOL_ANSWER], ids=["text", "tools"])
def test_encoded_response_parses_back_to_the_same_answer(answer: ChatResponse) -> None:
    parsed = adapter.parse_chat(dialect.encode_response(answer))
    parsed.created = answer.created
    assert parsed == answer


def test_encoded_response_has_gemini_shape() -> None:
    body = orjson.loads(dialect.encode_response(TOOL_ANSWER))
    candidate = body["candidates"][0]
    assert candidate["finishReason"] == "STOP"
    assert candidate["content"]["parts"][1] == {
        "functionCall": {"id": "call_0", "name": "get_weather", "args": {"city": "Paris"}}
    }
    assert body["usageMetadata"] == {
        "promptTokenCount": 120,
        "candidatesTokenCount": 40,
        "totalTokenCount": 160,
    }


@pytest.mark.parametrize(
    ("reason", "expected"),
    [("stop", "STOP"), ("length", "MAX_TOKENS"), ("content_filter", "SAFETY")],
)
def test_stop_reasons_encode_in_gemini_words(reason: Any, expected: str) -> None:
    answer = ChatResponse(id="r", model="m", message=Message(role="assistant"), stop_reason=reason)
    body = orjson.loads(dialect.encode_response(answer))
    assert body["candidates"][0]["finishReason"] == expected


def test_encoded_answers_are_valid_sdk_responses() -> None:
    from google.genai import types

    response = types.GenerateContentResponse.model_validate_json(
        dialect.encode_response(TOOL_ANSWER)
    )
    assert response.text == "Let me check."
    assert [call.name for call in response.function_calls or []] == ["get_weather", "get_time"]
    for chunk in sse_chunks(encode_stream(TOOL_STREAM)):
        types.GenerateContentResponse.model_validate(chunk)


def test_the_sdk_client_reads_encoded_answers_and_streams() -> None:
    from google import genai

    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if ":streamGenerateContent" in request.url.path:
            return httpx.Response(200, content=encode_stream(TOOL_STREAM))
        return httpx.Response(200, content=dialect.encode_response(TEXT_ANSWER))

    options = genai.types.HttpOptions(
        base_url="http://gateway.test",
        api_version="v1beta",
        httpx_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    client = genai.Client(api_key="mw-test", http_options=options)
    answer = client.models.generate_content(model="gemini-test", contents="Hi")
    assert answer.text == "Hello there!"
    assert answer.usage_metadata is not None
    assert answer.usage_metadata.cached_content_token_count == 10
    chunks = list(client.models.generate_content_stream(model="gemini-test", contents="Hi"))
    calls = [call for chunk in chunks for call in chunk.function_calls or []]
    assert [(c.id, c.name, c.args) for c in calls] == [
        ("call_0", "get_weather", {"city": "Paris"}),
        ("call_1", "get_time", {"zone": "CET"}),
    ]
    assert chunks[-1].candidates is not None
    assert chunks[-1].candidates[0].finish_reason == genai.types.FinishReason.STOP
    assert seen[0].url.path == "/v1beta/models/gemini-test:generateContent"
    assert seen[0].headers["x-goog-api-key"] == "mw-test"
    # What the SDK sends decodes, once the route adds the model from the path.
    assert dialect.decode_chat({**orjson.loads(seen[0].content), "model": "gemini-test"})


# --- streaming -----------------------------------------------------------------------


def test_stream_encoder_sends_whole_function_calls_and_a_final_chunk() -> None:
    chunks = sse_chunks(encode_stream(TOOL_STREAM))
    assert [c["candidates"][0]["content"]["parts"] for c in chunks] == [
        [{"text": "Let me "}],
        [{"text": "check."}],
        [
            {"functionCall": {"id": "call_0", "name": "get_weather", "args": {"city": "Paris"}}},
            {"functionCall": {"id": "call_1", "name": "get_time", "args": {"zone": "CET"}}},
        ],
        [],
    ]
    assert {c["responseId"] for c in chunks} == {"resp-3"}
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert chunks[-1]["usageMetadata"]["cachedContentTokenCount"] == 100


def test_encoded_stream_decodes_back_to_the_same_events() -> None:
    decoded = decode_stream(encode_stream(TOOL_STREAM))
    merged = [*TOOL_STREAM[:4], ToolCallDelta(index=0, arguments='{"city":"Paris"}')]
    merged += [TOOL_STREAM[6], ToolCallDelta(index=1, arguments='{"zone":"CET"}'), *TOOL_STREAM[8:]]
    assert decoded == merged


def test_the_final_chunk_waits_for_usage_that_follows_message_end() -> None:
    encoder = dialect.stream_encoder(ChatRequest(model="m", messages=[]))
    assert encoder.encode(MessageStart(id="r", model="m")) == b""
    assert encoder.encode(TextDelta("hi")).startswith(b"data: ")
    assert encoder.encode(MessageEnd("length")) == b""
    final = sse_chunks(encoder.encode(UsageReport(Usage(prompt_tokens=3, completion_tokens=1))))
    assert final[0]["candidates"][0]["finishReason"] == "MAX_TOKENS"
    assert final[0]["usageMetadata"]["totalTokenCount"] == 4
    assert encoder.finish() == b""


def test_finish_sends_the_final_chunk_when_usage_never_came() -> None:
    encoder = dialect.stream_encoder(ChatRequest(model="m", messages=[]))
    encoder.encode(TextDelta("hi"))
    encoder.encode(MessageEnd("stop"))
    [final] = sse_chunks(encoder.finish())
    assert final["candidates"][0]["finishReason"] == "STOP"
    assert final["modelVersion"] == "m"


def test_stream_error_is_an_error_chunk_the_adapter_raises() -> None:
    encoder = dialect.stream_encoder(ChatRequest(model="m", messages=[]))
    encoder.encode(TextDelta("hi"))
    data = encoder.error(UpstreamStatusError("Overloaded", upstream_status=503))
    assert sse_chunks(data) == [
        {"error": {"code": 502, "message": "Overloaded", "status": "UNAVAILABLE"}}
    ]
    assert encoder.finish() == b""
    with pytest.raises(UpstreamStatusError) as caught:
        adapter.stream_decoder().feed(data)
    assert caught.value.retryable


segments = st.lists(
    st.one_of(
        st.text(min_size=1, max_size=20),
        st.tuples(
            st.sampled_from(["get_weather", "search"]),
            st.dictionaries(
                st.text(max_size=5), st.integers(-(2**40), 2**40) | st.text(max_size=5), max_size=3
            ),
        ),
    ),
    max_size=6,
)


@given(
    segments=segments,
    stop=st.sampled_from(["stop", "length", "content_filter"]),
    cached=st.integers(min_value=0, max_value=1000),
    fresh=st.integers(min_value=0, max_value=1000),
    completion=st.integers(min_value=0, max_value=1000),
)
def test_any_canonical_stream_survives_the_gemini_wire(
    segments: list[Any], stop: Any, cached: int, fresh: int, completion: int
) -> None:
    events: list[StreamEvent] = [MessageStart(id="resp-x", model="gemini-x")]
    calls = 0
    for segment in segments:
        if isinstance(segment, str):
            events.append(TextDelta(segment))
            continue
        name, args = segment
        events.append(ToolCallStart(index=calls, id=f"call_{calls}", name=name))
        events.append(ToolCallDelta(index=calls, arguments=orjson.dumps(args).decode()))
        calls += 1
    usage = Usage(prompt_tokens=cached + fresh, completion_tokens=completion, cached_tokens=cached)
    events += [MessageEnd(stop), UsageReport(usage)]
    if calls and stop == "stop":
        events[-2] = MessageEnd("tool_calls")  # Gemini says STOP; calls make it tool_calls.
    decoded = decode_stream(encode_stream(events))
    # Adjacent text deltas may arrive as separate chunks or merged; compare the fold.
    assert [e for e in decoded if not isinstance(e, TextDelta)] == [
        e for e in events if not isinstance(e, TextDelta)
    ]
    assert "".join(e.text for e in decoded if isinstance(e, TextDelta)) == "".join(
        e.text for e in events if isinstance(e, TextDelta)
    )


# --- errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "code", "status"),
    [
        (BadRequest("bad"), 400, "INVALID_ARGUMENT"),
        (AuthenticationError("who"), 401, "UNAUTHENTICATED"),
        (PermissionDenied("no"), 403, "PERMISSION_DENIED"),
        (NotFound("gone"), 404, "NOT_FOUND"),
        (RateLimited("slow", retry_after=3), 429, "RESOURCE_EXHAUSTED"),
        (UpstreamStatusError("busy", upstream_status=503), 502, "UNAVAILABLE"),
        (UpstreamStatusError("nope", upstream_status=422), 422, "INVALID_ARGUMENT"),
        (Timeout("slow"), 504, "DEADLINE_EXCEEDED"),
        (ConnectError("down"), 502, "UNAVAILABLE"),
        (StreamTruncated("cut"), 502, "UNAVAILABLE"),
        (ModelwayError("oops"), 500, "INTERNAL"),
    ],
)
def test_errors_encode_in_google_shape(error: ModelwayError, code: int, status: str) -> None:
    body = orjson.loads(dialect.encode_error(error))
    assert body == {"error": {"code": code, "message": error.message, "status": status}}
    with pytest.raises(UpstreamStatusError) as caught:
        adapter.parse_chat(dialect.encode_error(error))
    assert caught.value.upstream_status == code
