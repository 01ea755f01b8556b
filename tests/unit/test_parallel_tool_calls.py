"""``parallel_tool_calls: false`` (one tool call an answer at most) in every dialect and to
every provider that has a word for it: OpenAI's ``parallel_tool_calls`` (Chat and
Responses), Anthropic's ``tool_choice.disable_parallel_tool_use``. Before, it reached an
OpenAI upstream only, and an agent that asked for one call at a time from Claude got
several."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from modelway.dialects.anthropic import AnthropicDialect
from modelway.dialects.openai import OpenAIDialect
from modelway.dialects.responses import ResponsesDialect
from modelway.errors import BadRequest
from modelway.providers.anthropic import AnthropicAdapter
from modelway.providers.openai import build_chat_body
from modelway.types import ChatRequest, Message, ResponseFormat, TextPart, Tool

TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}


def request(parallel: bool | None, *, tools: bool = True, choice: str | None = None) -> ChatRequest:
    return ChatRequest(
        model="m",
        messages=[Message(role="user", content=[TextPart("hi")])],
        tools=[Tool("f")] if tools else [],
        tool_choice=choice,
        parallel_tool_calls=parallel,
    )


def anthropic_body(chat: ChatRequest) -> dict[str, Any]:
    http = AnthropicAdapter().chat_request(chat, "claude-sonnet-4-5")
    assert http.body is not None
    body: dict[str, Any] = orjson.loads(http.body)
    return body


@pytest.mark.parametrize("value", [False, True])
def test_the_openai_dialects_read_it(value: bool) -> None:
    chat = OpenAIDialect().decode_chat(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": [TOOL],
         "parallel_tool_calls": value}
    )  # fmt: skip
    assert chat.parallel_tool_calls is value and "parallel_tool_calls" not in chat.extra
    responses = ResponsesDialect().decode_chat(
        {"model": "m", "input": "hi", "parallel_tool_calls": value,
         "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}]}
    )  # fmt: skip
    assert responses.parallel_tool_calls is value


def test_the_anthropic_dialect_reads_disable_parallel_tool_use() -> None:
    def decoded(choice: dict[str, Any]) -> bool | None:
        body = {"model": "m", "max_tokens": 9, "messages": [{"role": "user", "content": "hi"}],
                "tools": [{"name": "f", "input_schema": {"type": "object"}}],
                "tool_choice": choice}  # fmt: skip
        return AnthropicDialect().decode_chat(body).parallel_tool_calls

    assert decoded({"type": "auto", "disable_parallel_tool_use": True}) is False
    assert decoded({"type": "any", "disable_parallel_tool_use": False}) is True
    assert decoded({"type": "auto"}) is None


@pytest.mark.parametrize(
    ("decode", "body"),
    [
        (
            OpenAIDialect().decode_chat,
            {"model": "m", "messages": [{"role": "user", "content": "x"}],
             "parallel_tool_calls": "no"},
        ),
        (ResponsesDialect().decode_chat, {"model": "m", "input": "x", "parallel_tool_calls": 0}),
        (
            AnthropicDialect().decode_chat,
            {"model": "m", "max_tokens": 9, "messages": [{"role": "user", "content": "x"}],
             "tool_choice": {"type": "auto", "disable_parallel_tool_use": "yes"}},
        ),
    ],
)  # fmt: skip
def test_a_value_that_is_no_boolean_is_a_400(decode: Any, body: dict[str, Any]) -> None:
    with pytest.raises(BadRequest, match="parallel_tool"):
        decode(body)


def test_openai_gets_it_only_beside_tools() -> None:
    assert build_chat_body(request(False), "gpt-4.1")["parallel_tool_calls"] is False
    assert build_chat_body(request(True), "gpt-4.1")["parallel_tool_calls"] is True
    assert "parallel_tool_calls" not in build_chat_body(request(None), "gpt-4.1")
    # OpenAI refuses parallel_tool_calls without tools.
    assert "parallel_tool_calls" not in build_chat_body(request(False, tools=False), "gpt-4.1")


@pytest.mark.parametrize(
    ("choice", "sent"),
    [
        (None, {"type": "auto", "disable_parallel_tool_use": True}),
        ("auto", {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", {"type": "any", "disable_parallel_tool_use": True}),
        ("f", {"type": "tool", "name": "f", "disable_parallel_tool_use": True}),
        ("none", {"type": "none"}),
    ],
)
def test_anthropic_gets_it_on_the_tool_choice(choice: str | None, sent: dict[str, Any]) -> None:
    assert anthropic_body(request(False, choice=choice))["tool_choice"] == sent


def test_anthropic_gets_nothing_when_parallel_calls_are_allowed_or_no_tool_is_offered() -> None:
    assert "tool_choice" not in anthropic_body(request(True))
    assert "tool_choice" not in anthropic_body(request(None))
    assert "tool_choice" not in anthropic_body(request(False, tools=False))


def test_a_structured_answer_through_anthropic_keeps_it_too() -> None:
    chat = request(False)
    chat.response_format = ResponseFormat(type="json_object")
    assert anthropic_body(chat)["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
