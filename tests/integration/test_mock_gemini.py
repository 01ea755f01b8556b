"""``modelway mock`` speaking the Gemini API, read back by the Gemini adapter and SDK."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from modelway.errors import StreamTruncated, UndecodableResponse
from modelway.providers.gemini import GeminiAdapter
from modelway.types import (
    ChatRequest,
    EmbeddingRequest,
    Message,
    StreamEvent,
    TextPart,
    Tool,
    ToolCall,
    fold_events,
)
from tests.integration.mockserver import running_mock

pytestmark = pytest.mark.integration

adapter = GeminiAdapter()
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["city", "unit"],
}
GENERATE = "/v1beta/models/echo:generateContent"
STREAM = "/v1beta/models/mock-1:streamGenerateContent?alt=sse"


@pytest.fixture(scope="module")
def root() -> Iterator[str]:
    with running_mock() as url:
        yield url


@pytest.fixture
def http(root: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=root, timeout=10) as client:
        yield client


def hello(text: str = "Hello,  mock world!") -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": text}]}]}


def send(http: httpx.Client, request: ChatRequest, model: str) -> httpx.Response:
    built = adapter.chat_request(request, model)
    return http.request(built.method, built.path, content=built.body, headers=built.headers)


def stream_events(body: bytes) -> list[StreamEvent]:
    decoder = adapter.stream_decoder()
    return decoder.feed(body) + decoder.close()


def test_generate_content_echoes_the_user_message(http: httpx.Client) -> None:
    response = http.post(GENERATE, json=hello())
    assert response.status_code == 200
    answer = adapter.parse_chat(response.content)
    assert answer.message.text() == "Hello,  mock world!"
    assert (answer.stop_reason, answer.model) == ("stop", "echo")
    assert answer.usage is not None and answer.usage.completion_tokens == 3


def test_stream_generate_content_streams_sse_chunks_ending_with_a_finish_reason(
    http: httpx.Client,
) -> None:
    response = http.post(STREAM, json=hello())
    assert response.headers["content-type"].startswith("text/event-stream")
    chunks = [line for line in response.text.split("\n\n") if line]
    assert len(chunks) > 2 and all(chunk.startswith("data: {") for chunk in chunks)
    assert orjson.loads(chunks[-1][6:])["candidates"][0]["finishReason"] == "STOP"
    events = stream_events(response.content)
    text = "".join(getattr(event, "text", "") for event in events)
    assert "mock-1" in text


def test_stream_generate_content_without_alt_sse_is_a_400_saying_so(http: httpx.Client) -> None:
    response = http.post("/v1beta/models/echo:streamGenerateContent", json=hello())
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT" and "alt=sse" in error["message"]


@pytest.mark.parametrize("stream", [False, True])
def test_function_call_then_function_response_through_the_adapter(
    http: httpx.Client, stream: bool
) -> None:
    tools = [Tool(name="get_weather", description="Weather", parameters=WEATHER_SCHEMA)]
    request = ChatRequest(
        model="x", messages=[Message(role="user", content=[TextPart("Hi")])], tools=tools
    )
    request.stream = stream
    response = send(http, request, "mock-1")
    assert response.status_code == 200
    if stream:
        answer = fold_events(stream_events(response.content))
    else:
        answer = adapter.parse_chat(response.content)
    assert answer.stop_reason == "tool_calls"
    [call] = answer.message.tool_calls
    assert call.name == "get_weather"
    assert orjson.loads(call.arguments) == {"city": "mock", "unit": "celsius"}
    request.stream = False
    request.messages += [
        Message(role="assistant", tool_calls=[ToolCall(call.id, call.name, call.arguments)]),
        Message(role="tool", content=[TextPart('{"temp": 21}')], tool_call_id=call.id),
    ]
    follow_up = adapter.parse_chat(send(http, request, "mock-1").content)
    assert follow_up.stop_reason == "stop"
    assert "21" in follow_up.message.text()


def test_models_lists_the_mock_models_with_their_prefix(http: httpx.Client) -> None:
    response = http.get("/v1beta/models")
    assert response.json()["models"][0]["name"] == "models/echo"
    assert adapter.parse_models(response.content) == ["echo", "mock-1"]


def test_batch_embed_contents_answers_unit_vectors_per_request(http: httpx.Client) -> None:
    built = adapter.embeddings_request(
        EmbeddingRequest(model="x", input=["a", "b"], dimensions=4), "echo"
    )
    response = http.post(built.path, content=built.body, headers=built.headers)
    vectors = adapter.parse_embeddings(response.content).vectors
    assert [len(vector) for vector in vectors] == [4, 4]
    assert all(math.isclose(sum(v * v for v in vector), 1.0) for vector in vectors)
    bad = http.post("/v1beta/models/echo:batchEmbedContents", json={"requests": [{}]})
    assert bad.status_code == 400
    assert "requests.0.content.parts" in bad.json()["error"]["message"]


@pytest.mark.parametrize("status", [429, 503, 401])
def test_error_faults_answer_in_google_error_shape(http: httpx.Client, status: int) -> None:
    response = http.post(GENERATE, json=hello(), headers={"x-mock-fault": f"error:{status}"})
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == status and error["message"] and error["status"]
    assert ("retry-after" in response.headers) == (status in (429, 503))


def test_truncated_stream_has_no_finish_reason_and_the_adapter_says_truncated(
    http: httpx.Client,
) -> None:
    response = http.post(STREAM, json=hello(), headers={"x-mock-fault": "truncate"})
    assert response.status_code == 200 and response.content
    assert b"finishReason" not in response.content
    with pytest.raises(StreamTruncated):
        stream_events(response.content)


def test_corrupt_stream_is_undecodable(http: httpx.Client) -> None:
    response = http.post(STREAM, json=hello(), headers={"x-mock-fault": "corrupt"})
    with pytest.raises(UndecodableResponse):
        stream_events(response.content)


def test_invalid_json_and_bad_bodies_are_400s_naming_the_field(http: httpx.Client) -> None:
    response = http.post(GENERATE, content=b"{not json")
    assert response.status_code == 400 and response.json()["error"]["status"] == "INVALID_ARGUMENT"
    response = http.post(GENERATE, json={"contents": [{"role": "robot", "parts": []}]})
    assert "contents.0.role" in response.json()["error"]["message"]


def test_the_google_genai_sdk_talks_to_the_mock(root: str) -> None:
    from google import genai

    options = genai.types.HttpOptions(base_url=root, api_version="v1beta")
    with genai.Client(api_key="test", http_options=options) as client:
        answer = client.models.generate_content(model="echo", contents="Hello,  mock world!")
        assert answer.text == "Hello,  mock world!"
        chunks = list(client.models.generate_content_stream(model="mock-1", contents="Hi"))
        assert "mock-1" in "".join(chunk.text or "" for chunk in chunks)
        weather = genai.types.FunctionDeclaration(
            name="get_weather", description="Weather", parameters_json_schema=WEATHER_SCHEMA
        )
        config = genai.types.GenerateContentConfig(
            tools=[genai.types.Tool(function_declarations=[weather])]
        )
        called = client.models.generate_content(model="mock-1", contents="Weather?", config=config)
        [call] = called.function_calls or []
        assert (call.name, call.args) == ("get_weather", {"city": "mock", "unit": "celsius"})
        embedded = client.models.embed_content(model="echo", contents=["a", "b"])
        assert len(embedded.embeddings or []) == 2
        assert [m.name for m in client.models.list()] == ["models/echo", "models/mock-1"]
