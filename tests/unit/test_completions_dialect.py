"""The legacy Completions dialect: ``POST /v1/completions`` in, ``text_completion`` out."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import orjson
import pytest
from openai.types import Completion, ErrorObject

from modelway.dialects.completions import CompletionsDialect
from modelway.engine import Engine
from modelway.errors import BadRequest, UnknownModel
from modelway.providers.openai import build_chat_body
from modelway.routing.targets import Target
from modelway.types import (
    ChatRequest,
    ChatResponse,
    Message,
    MessageEnd,
    MessageStart,
    StreamEvent,
    TextDelta,
    TextPart,
    ToolCall,
    Usage,
    UsageReport,
    response_events,
)
from tests.unit.fakes import ScriptedBackend

dialect = CompletionsDialect()
MINIMAL: dict[str, Any] = {"model": "gpt-3.5-turbo-instruct", "prompt": "Say hi"}

ANSWER = ChatResponse(
    id="cmpl-123",
    model="gpt-3.5-turbo-instruct",
    message=Message(role="assistant", content=[TextPart("Hi there")]),
    usage=Usage(prompt_tokens=2, completion_tokens=2),
    created=1700000000,
)


def decode(**changes: Any) -> ChatRequest:
    return dialect.decode_chat({**MINIMAL, **changes})


def encode_stream(events: list[StreamEvent], include_usage: bool = True) -> bytes:
    request = ChatRequest(model="m", messages=[], include_usage=include_usage)
    encoder = dialect.stream_encoder(request)
    return b"".join(encoder.encode(event) for event in events) + encoder.finish()


def data_lines(stream: bytes) -> list[str]:
    return [line.removeprefix("data: ") for line in stream.decode().split("\n\n") if line]


def sdk_client(handler: Any) -> openai.OpenAI:
    """The official SDK, answered in-process by ``handler`` (no socket is opened)."""
    return openai.OpenAI(
        api_key="sk-test",
        base_url="http://gateway.test/v1",
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        max_retries=0,
    )


def gateway(seen: list[ChatRequest]) -> Any:
    def handler(http_request: httpx.Request) -> httpx.Response:
        assert http_request.url.path == "/v1/completions"
        request = dialect.decode_chat(orjson.loads(http_request.content))
        seen.append(request)
        if not request.stream:
            return httpx.Response(200, content=dialect.encode_response(ANSWER))
        encoder = dialect.stream_encoder(request)
        body = b"".join(encoder.encode(e) for e in response_events(ANSWER)) + encoder.finish()
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    return handler


# --- decoding --------------------------------------------------------------------------


def test_a_prompt_becomes_one_user_message() -> None:
    request = decode(max_tokens=20, temperature=0.5, top_p=0.9, stop="\n", user="u1")
    assert request == ChatRequest(
        model="gpt-3.5-turbo-instruct",
        messages=[Message(role="user", content=[TextPart("Say hi")])],
        temperature=0.5,
        top_p=0.9,
        max_tokens=20,
        stop=["\n"],
        user="u1",
    )


def test_seed_penalties_and_logit_bias_reach_an_openai_format_provider_only() -> None:
    """Dropped silently before: a seeded completion was not one."""
    sent = {"seed": 7, "presence_penalty": 0.5, "frequency_penalty": 0.2, "logit_bias": {"50": 1}}
    request = decode(**sent)
    assert request.extra == sent
    openai_target = Target(ScriptedBackend("openai"), "gpt-4o")
    for_openai = Engine._request_for(request, openai_target, "completions")
    assert {k: build_chat_body(for_openai, "gpt-4o")[k] for k in sent} == sent
    anthropic = ScriptedBackend("anthropic")
    anthropic.wire = "anthropic"
    assert Engine._request_for(request, Target(anthropic, "claude"), "completions").extra == {}


def test_a_list_of_one_prompt_is_accepted() -> None:
    assert decode(prompt=["Say hi"]) == decode()


def test_stream_options_include_usage_is_carried() -> None:
    request = decode(stream=True, stream_options={"include_usage": True})
    assert (request.stream, request.include_usage) == (True, True)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"model": ""}, "model"),
        ({"prompt": None}, "prompt"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": ["a", "b"]}, "prompt"),
        ({"prompt": [[1, 2, 3]]}, "prompt.0"),
        ({"suffix": "end"}, "suffix"),
        ({"echo": True}, "echo"),
        ({"n": 2}, "n"),
        ({"best_of": 3}, "best_of"),
        ({"logprobs": 2}, "logprobs"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"temperature": "x"}, "temperature"),
        ({"stop": [1]}, "stop"),
        ({"stream": 1}, "stream"),
        ({"stream_options": []}, "stream_options"),
        ({"user": 1}, "user"),
    ],
)
def test_invalid_or_unsupported_fields_are_named_in_the_error(
    changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(BadRequest) as caught:
        decode(**changes)
    assert caught.value.message.startswith(field + ":"), caught.value.message


def test_echo_false_and_n_one_are_accepted() -> None:
    assert decode(echo=False, n=1, best_of=1) == decode()


# --- encoding --------------------------------------------------------------------------


def test_an_answer_is_a_valid_text_completion() -> None:
    completion = Completion.model_validate_json(dialect.encode_response(ANSWER))
    assert completion.object == "text_completion"
    assert completion.choices[0].text == "Hi there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens == 4


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("stop", "stop"),
        ("length", "length"),
        ("content_filter", "content_filter"),
        ("tool_calls", "stop"),
    ],
)
def test_stop_reasons_map_to_completions_finish_reasons(
    stop_reason: Any, finish_reason: str
) -> None:
    answer = ChatResponse(id="c", model="m", message=ANSWER.message, stop_reason=stop_reason)
    completion = Completion.model_validate_json(dialect.encode_response(answer))
    assert completion.choices[0].finish_reason == finish_reason


def test_a_stream_is_text_completion_chunks_then_done() -> None:
    events: list[StreamEvent] = [
        MessageStart(id="cmpl-1", model="gpt-3.5-turbo-instruct"),
        TextDelta("Hi "),
        TextDelta("there"),
        MessageEnd("stop"),
        UsageReport(Usage(prompt_tokens=2, completion_tokens=2)),
    ]
    lines = data_lines(encode_stream(events))
    assert lines[-1] == "[DONE]"
    chunks = [orjson.loads(line) for line in lines[:-1]]
    assert [c["choices"][0]["text"] for c in chunks[:2]] == ["Hi ", "there"]
    assert all(c["object"] == "text_completion" and c["id"] == "cmpl-1" for c in chunks)
    final = Completion.model_validate(chunks[2])
    assert final.choices[0].finish_reason == "stop"
    assert Completion.model_validate(chunks[3]).usage is not None


def test_a_stream_without_include_usage_sends_no_usage_chunk() -> None:
    events: list[StreamEvent] = [
        MessageStart(id="c", model="m"),
        MessageEnd("stop"),
        UsageReport(Usage(1, 1)),
    ]
    assert len(data_lines(encode_stream(events, include_usage=False))) == 2


def test_tool_call_events_have_no_place_in_a_completion_stream() -> None:
    answer = ChatResponse(
        id="c",
        model="m",
        message=Message(role="assistant", tool_calls=[ToolCall(id="t", name="f")]),
        stop_reason="tool_calls",
    )
    lines = data_lines(encode_stream(response_events(answer)))
    assert len(lines) == 2 and orjson.loads(lines[0])["choices"][0]["finish_reason"] == "stop"


def test_errors_use_openais_envelope_in_bodies_and_streams() -> None:
    error = UnknownModel("no model gpt-9")
    body = orjson.loads(dialect.encode_error(error))
    assert ErrorObject.model_validate(body["error"]).code == "model_not_found"
    encoder = dialect.stream_encoder(ChatRequest(model="m", messages=[]))
    assert orjson.loads(data_lines(encoder.error(error))[0]) == body


# --- the official SDK reading our output ------------------------------------------------


def test_the_sdk_reads_a_completion() -> None:
    seen: list[ChatRequest] = []
    completion = sdk_client(gateway(seen)).completions.create(
        model="gpt-3.5-turbo-instruct", prompt="Say hi", max_tokens=5
    )
    assert completion.choices[0].text == "Hi there"
    assert completion.usage is not None and completion.usage.completion_tokens == 2
    assert seen[0].max_tokens == 5


def test_the_sdk_reads_a_streamed_completion() -> None:
    seen: list[ChatRequest] = []
    stream = sdk_client(gateway(seen)).completions.create(
        model="gpt-3.5-turbo-instruct",
        prompt="Say hi",
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "Hi there"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 4
    assert seen[0].stream


def test_the_sdk_raises_the_encoded_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, content=dialect.encode_error(BadRequest("suffix: no")))

    with pytest.raises(openai.BadRequestError, match="suffix: no"):
        sdk_client(handler).completions.create(model="m", prompt="x", suffix="y")
