"""Thinking across providers: settings mapped to each provider's own, thinking returned.

A caller's effort or budget (Responses ``reasoning``, Chat ``reasoning_effort``, Anthropic
``thinking``/``output_config.effort``, Ollama ``think``) reaches Anthropic as a budget,
Gemini as ``thinkingConfig``, OpenAI-format reasoning models as ``reasoning_effort`` and
Ollama as ``think``; the thinking that comes back is a reasoning item, a thinking block,
``reasoning_content`` or ``thinking``, and its signature round-trips unchanged.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest

from modelway.dialects.anthropic import AnthropicDialect
from modelway.dialects.base import Dialect
from modelway.dialects.ollama import OllamaDialect
from modelway.dialects.ollama import decode_chat_request as decode_ollama
from modelway.dialects.openai import OpenAIDialect
from modelway.dialects.openai import decode_chat_request as decode_openai
from modelway.dialects.responses import ResponsesDialect, decode_responses_request
from modelway.errors import BadRequest
from modelway.mock.engine import mock_events, mock_signature
from modelway.mock.gemini_dialect import GeminiDialect
from modelway.providers import gemini_request, ollama
from modelway.providers import openai as openai_provider
from modelway.providers.anthropic import AnthropicAdapter, messages_body
from modelway.providers.gemini import GeminiAdapter
from modelway.providers.registry import adapter_for
from modelway.providers.transport import MockReply, MockTransport, UpstreamRequest
from modelway.providers.upstream import HttpProvider
from modelway.reasoning import budget, effort
from modelway.secrets import Secret
from modelway.types import (
    ChatRequest,
    ChatResponse,
    Message,
    Reasoning,
    ReasoningDelta,
    ResponseFormat,
    TextPart,
    Tool,
    ToolCall,
    Usage,
    fold_events,
)
from tests.polling import eventually
from tests.unit.gateways import MASTER, Setup, in_process_gateway
from tests.unit.wire import decode_stream

USER = Message(role="user", content=[TextPart("why?")])


def request(**fields: Any) -> ChatRequest:
    return ChatRequest(model="m", messages=fields.pop("messages", [USER]), **fields)


# --- one table ----------------------------------------------------------------------------


def test_levels_and_budgets_convert_both_ways() -> None:
    assert budget(Reasoning(effort="low")) == 2048
    assert budget(Reasoning(budget_tokens=5000)) == 5000
    assert effort(Reasoning(budget_tokens=5000)) == "medium"
    assert effort(Reasoning(budget_tokens=1024)) == "minimal"
    assert effort(Reasoning(budget_tokens=10**9)) == "max"
    assert effort(Reasoning(effort="high", budget_tokens=1)) == "high"


# --- what callers send ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "wanted"),
    [
        ({"thinking": {"type": "enabled", "budget_tokens": 31999}}, Reasoning(budget_tokens=31999)),
        # Anthropic's own default effort is high.
        ({"thinking": {"type": "adaptive"}}, Reasoning(effort="high")),
        (
            {"thinking": {"type": "adaptive"}, "output_config": {"effort": "high"}},
            Reasoning(effort="high"),
        ),
        ({"output_config": {"effort": "low"}}, Reasoning(effort="low")),
        ({"thinking": {"type": "disabled"}}, Reasoning(effort="none")),
        ({}, None),
    ],
)
def test_anthropic_callers_thinking_settings(fields: dict[str, Any], wanted: Any) -> None:
    body = {"model": "m", "max_tokens": 64000, "messages": [{"role": "user", "content": "x"}]}
    assert AnthropicDialect().decode_chat({**body, **fields}).reasoning == wanted


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"thinking": {"type": "enabled"}}, "thinking.budget_tokens"),
        ({"thinking": {"type": "on"}}, "thinking.type"),
        ({"thinking": "yes"}, "thinking"),
        ({"output_config": {"effort": "huge"}}, "output_config.effort"),
        ({"output_config": []}, "output_config"),
        ({"output_config": {"format": {"type": "json_schema"}}}, "output_config.format.schema"),
        ({"output_format": {"type": "xml"}}, "output_format"),
    ],
)
def test_anthropic_callers_bad_settings_are_named(fields: dict[str, Any], where: str) -> None:
    body = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}
    with pytest.raises(BadRequest) as caught:
        AnthropicDialect().decode_chat({**body, **fields})
    assert caught.value.message.startswith(where)


@pytest.mark.parametrize("key", ["output_config", "output_format"])
def test_anthropic_structured_output_becomes_the_canonical_format(key: str) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    spec = {"type": "json_schema", "schema": schema}
    body = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}
    body[key] = {"format": spec} if key == "output_config" else spec
    decoded = AnthropicDialect().decode_chat(body)
    assert decoded.response_format == ResponseFormat(type="json_schema", schema=schema)


def test_openai_and_ollama_callers_name_a_level() -> None:
    chat = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    assert decode_openai({**chat, "reasoning_effort": "high"}).reasoning == Reasoning("high")
    assert decode_openai({**chat, "reasoning_effort": "high"}).extra == {}
    with pytest.raises(BadRequest, match="reasoning_effort"):
        decode_openai({**chat, "reasoning_effort": 3})
    assert decode_ollama({**chat, "think": True}).reasoning == Reasoning("medium")
    assert decode_ollama({**chat, "think": "low"}).reasoning == Reasoning("low")
    assert decode_ollama({**chat, "think": False}).reasoning == Reasoning("none")
    with pytest.raises(BadRequest, match="think"):
        decode_ollama({**chat, "think": "lots"})


def test_responses_callers_reasoning_and_reasoning_items() -> None:
    body = {
        "model": "m",
        "reasoning": {"effort": "low", "summary": "auto"},
        "input": [
            {"role": "user", "content": "weather?"},
            {
                "type": "reasoning",
                "id": "rs_1",
                "summary": [{"type": "summary_text", "text": "Use the tool."}],
                "encrypted_content": "anthropic:sig1",
            },
            {"type": "function_call", "call_id": "c1", "name": "weather", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
        ],
    }
    decoded = decode_responses_request(body)
    assert decoded.reasoning == Reasoning(effort="low")
    assert decoded.messages[1] == Message(
        role="assistant",
        tool_calls=[ToolCall(id="c1", name="weather", arguments="{}")],
        reasoning="Use the tool.",
        reasoning_signature="anthropic:sig1",
    )
    with pytest.raises(BadRequest, match=r"reasoning\.effort"):
        decode_responses_request({**body, "reasoning": {"effort": "a lot"}})
    bad = {"type": "reasoning", "summary": [{"type": "summary_text", "text": 1}]}
    with pytest.raises(BadRequest, match=r"input.1.summary.0.text"):
        decode_responses_request({**body, "input": [body["input"][0], bad]})  # type: ignore[index]


def test_responses_text_format_becomes_the_canonical_format() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    spec = {"type": "json_schema", "name": "thing", "schema": schema, "strict": True}
    decoded = decode_responses_request({"model": "m", "input": "x", "text": {"format": spec}})
    assert decoded.response_format == ResponseFormat(
        type="json_schema", name="thing", schema=schema, strict=True
    )
    plain = decode_responses_request(
        {"model": "m", "input": "x", "text": {"format": {"type": "text"}}}
    )
    assert plain.response_format is None
    with pytest.raises(BadRequest, match=r"text\.format\.name"):
        decode_responses_request(
            {"model": "m", "input": "x", "text": {"format": {"type": "json_schema", "schema": {}}}}
        )


# --- what providers are sent ---------------------------------------------------------------


def test_anthropic_gets_a_budget_and_room_for_the_answer() -> None:
    body = messages_body(request(reasoning=Reasoning(effort="low")), "claude-sonnet-4-5")
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert body["max_tokens"] > 2048
    capped = messages_body(request(reasoning=Reasoning(effort="high"), max_tokens=3000), "claude-x")
    assert capped["thinking"] == {"type": "enabled", "budget_tokens": 2999}
    assert capped["max_tokens"] == 3000


@pytest.mark.parametrize(
    ("reasoning", "model", "thinking", "effort"),
    [
        (Reasoning(effort="low"), "claude-opus-4-7", {"type": "adaptive"}, "low"),
        (Reasoning(effort="minimal"), "claude-sonnet-4-6", {"type": "adaptive"}, "low"),
        (Reasoning(effort="xhigh"), "claude-sonnet-4-6", {"type": "adaptive"}, "high"),
        (Reasoning(effort="max"), "claude-opus-4-6-20260101", {"type": "adaptive"}, "max"),
        (Reasoning(effort="max"), "claude-sonnet-4-6", {"type": "adaptive"}, "high"),
        # A budget the caller gave still goes to a model that takes one, never to 4.7 on.
        (Reasoning(budget_tokens=4000), "claude-opus-4-6", {"type": "enabled"}, None),
        (Reasoning(budget_tokens=4000), "claude-opus-4-7", {"type": "adaptive"}, "medium"),
        (Reasoning(effort="high"), "claude-sonnet-4-5", {"type": "enabled"}, None),
        (Reasoning(effort="high"), "claude-haiku-4-5", {"type": "enabled"}, None),
    ],
)
def test_claude_4_6_and_later_think_adaptively_with_an_effort(
    reasoning: Reasoning, model: str, thinking: dict[str, str], effort: str | None
) -> None:
    body = messages_body(request(reasoning=reasoning, temperature=0.2), model)
    assert body["thinking"].items() >= thinking.items()
    assert body.get("output_config") == ({"effort": effort} if effort else None)
    assert "temperature" not in body  # thinking takes none but the default
    if effort is not None:
        assert "budget_tokens" not in body["thinking"]


@pytest.mark.parametrize(
    ("fields", "model"),
    [
        ({"reasoning": Reasoning(effort="high"), "max_tokens": 500}, "claude-sonnet-4-5"),
        ({"reasoning": Reasoning(effort="none")}, "claude-sonnet-4-5"),
        ({"reasoning": Reasoning(effort="high")}, "claude-3-5-haiku-latest"),
        ({"reasoning": Reasoning(effort="high"), "tool_choice": "required"}, "claude-opus-4-1"),
        (
            {
                "reasoning": Reasoning(effort="high"),
                "response_format": ResponseFormat(type="json_schema", schema={"type": "object"}),
            },
            "claude-opus-4-1",
        ),
    ],
    ids=["no-room", "off", "model-cannot", "forced-tool", "structured-output"],
)
def test_anthropic_is_sent_no_thinking_where_it_would_refuse(
    fields: dict[str, Any], model: str
) -> None:
    tools = [Tool(name="t", parameters={"type": "object"})]
    assert "thinking" not in messages_body(request(tools=tools, **fields), model)


def test_anthropic_tool_turns_continue_thinking_only_with_the_signed_block() -> None:
    call = ToolCall(id="c1", name="t", arguments="{}")
    result = Message(role="tool", content=[TextPart("ok")], tool_call_id="c1")
    tools = [Tool(name="t", parameters={"type": "object"})]
    unsigned = Message(role="assistant", tool_calls=[call], reasoning="hm")
    body = messages_body(
        request(messages=[USER, unsigned, result], tools=tools, reasoning=Reasoning("low")),
        "claude-x",
    )
    assert "thinking" not in body  # Anthropic refuses a tool turn whose thinking was lost
    signed = Message(
        role="assistant", tool_calls=[call], reasoning="hm", reasoning_signature="anthropic:s1"
    )
    body = messages_body(
        request(
            messages=[USER, signed, result],
            tools=tools,
            reasoning=Reasoning("low"),
            temperature=0.2,
        ),
        "claude-x",
    )
    assert body["thinking"]["type"] == "enabled"
    assert body["messages"][1]["content"][0] == {
        "type": "thinking",
        "thinking": "hm",
        "signature": "s1",
    }
    assert "temperature" not in body  # thinking takes only the default temperature


def test_other_providers_signatures_never_reach_anthropic() -> None:
    call = ToolCall(id="c1", name="t", arguments="{}")
    turn = Message(
        role="assistant", tool_calls=[call], reasoning="x", reasoning_signature="gemini:g"
    )
    body = messages_body(request(messages=[USER, turn], reasoning=Reasoning("low")), "claude-x")
    assert all(block["type"] != "thinking" for m in body["messages"] for block in m["content"])


def test_openai_format_reasoning_models_get_reasoning_effort() -> None:
    # A level derived from a budget stays within what every reasoning model takes.
    wanted = request(reasoning=Reasoning(budget_tokens=20000))
    assert openai_provider.build_chat_body(wanted, "o4-mini")["reasoning_effort"] == "high"
    assert openai_provider.build_chat_body(wanted, "gpt-5")["reasoning_effort"] == "high"
    small = request(reasoning=Reasoning(budget_tokens=1000))
    assert openai_provider.build_chat_body(small, "o3")["reasoning_effort"] == "low"
    # A level the caller named passes as named; "none" leaves the model's default.
    named = request(reasoning=Reasoning(effort="minimal", budget_tokens=31999))
    assert openai_provider.build_chat_body(named, "gpt-5")["reasoning_effort"] == "minimal"
    maximal = request(reasoning=Reasoning(effort="max"))
    assert openai_provider.build_chat_body(maximal, "gpt-5.2")["reasoning_effort"] == "xhigh"
    off = request(reasoning=Reasoning(effort="none"))
    assert "reasoning_effort" not in openai_provider.build_chat_body(off, "gpt-5")
    assert "reasoning_effort" not in openai_provider.build_chat_body(wanted, "gpt-4o")
    assert "reasoning_effort" not in openai_provider.build_chat_body(wanted, "deepseek-chat")


def test_gemini_gets_a_budget_or_a_level_and_shows_its_thoughts() -> None:
    body = gemini_request.generate_content_body(
        request(reasoning=Reasoning("low")), "gemini-2.5-flash"
    )
    assert body["generationConfig"]["thinkingConfig"] == {
        "includeThoughts": True,
        "thinkingBudget": 2048,
    }
    body = gemini_request.generate_content_body(
        request(reasoning=Reasoning("max")), "gemini-2.5-pro"
    )
    assert body["generationConfig"]["thinkingConfig"]["thinkingBudget"] == 32768
    body = gemini_request.generate_content_body(
        request(reasoning=Reasoning("high")), "gemini-3-pro-preview"
    )
    assert body["generationConfig"]["thinkingConfig"] == {
        "includeThoughts": True,
        "thinkingLevel": "high",
    }
    body = gemini_request.generate_content_body(
        request(reasoning=Reasoning("none")), "gemini-2.5-flash"
    )
    assert body["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 0}
    body = gemini_request.generate_content_body(
        request(reasoning=Reasoning("none")), "gemini-2.5-pro"
    )
    assert "generationConfig" not in body  # Pro always thinks
    body = gemini_request.generate_content_body(
        request(reasoning=Reasoning("high")), "gemini-2.0-flash"
    )
    assert "generationConfig" not in body


@pytest.mark.parametrize(
    ("model", "max_tokens", "sent"),
    [
        ("gemini-2.5-flash", 2000, 1999),  # thoughts count toward maxOutputTokens
        ("gemini-2.5-flash", 1, 0),
        ("gemini-2.5-pro", 50, 128),  # Pro's smallest budget
        ("gemini-2.5-flash", 100_000, 16384),
    ],
)
def test_gemini_25_thinking_budget_stays_below_max_tokens(
    model: str, max_tokens: int, sent: int
) -> None:
    wanted = request(reasoning=Reasoning("high"), max_tokens=max_tokens)
    config = gemini_request.generate_content_body(wanted, model)["generationConfig"]
    assert config["thinkingConfig"]["thinkingBudget"] == sent
    assert config["maxOutputTokens"] == max_tokens


def test_gemini_gets_its_own_signature_back_on_the_first_call() -> None:
    calls = [ToolCall(id="a", name="t", arguments="{}"), ToolCall(id="b", name="t", arguments="{}")]
    turn = Message(role="assistant", tool_calls=calls, reasoning_signature="gemini:g1")
    parts = gemini_request.generate_content_body(request(messages=[USER, turn]))["contents"][1][
        "parts"
    ]
    assert parts[0]["thoughtSignature"] == "g1" and "thoughtSignature" not in parts[1]
    foreign = Message(role="assistant", tool_calls=calls, reasoning_signature="anthropic:x")
    parts = gemini_request.generate_content_body(request(messages=[USER, foreign]))["contents"][1][
        "parts"
    ]
    assert parts[0]["thoughtSignature"] == gemini_request.SKIP_THOUGHT_SIGNATURE


def test_ollama_thinking_models_get_think() -> None:
    assert ollama.build_chat_body(request(reasoning=Reasoning("high")), "qwen3:8b")["think"] is True
    assert (
        ollama.build_chat_body(request(reasoning=Reasoning("none")), "deepseek-r1")["think"]
        is False
    )
    assert (
        ollama.build_chat_body(request(reasoning=Reasoning("low")), "gpt-oss:20b")["think"] == "low"
    )
    assert "think" not in ollama.build_chat_body(request(reasoning=Reasoning("high")), "llama3")


# --- what providers send back --------------------------------------------------------------


def test_anthropic_thinking_blocks_become_reasoning_whole_and_streamed() -> None:
    whole = {
        "id": "msg_1",
        "model": "claude-x",
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 1, "output_tokens": 2},
        "content": [
            {"type": "thinking", "thinking": "Let me see.", "signature": "sig-a"},
            {"type": "text", "text": "Yes."},
        ],
    }
    message = AnthropicAdapter().parse_chat(orjson.dumps(whole)).message
    assert (message.reasoning, message.reasoning_signature) == ("Let me see.", "anthropic:sig-a")
    redacted = {**whole, "content": [{"type": "redacted_thinking", "data": "opaque"}]}
    message = AnthropicAdapter().parse_chat(orjson.dumps(redacted)).message
    assert message.reasoning is None and message.reasoning_signature == "anthropic-redacted:opaque"
    events = mock_events(request(reasoning=Reasoning(budget_tokens=2048)), "claude-x", "anthropic")
    encoder = AnthropicDialect().stream_encoder(request())
    sse = b"".join(encoder.encode(e) for e in events) + encoder.finish()
    decoded = fold_events(decode_stream(AnthropicAdapter(), [sse]))
    thought = "Thinking with a budget of 2048 tokens."
    assert decoded.message.reasoning == thought
    assert decoded.message.reasoning_signature == f"anthropic:{mock_signature(thought)}"


def test_openai_format_and_ollama_thinking_fields_become_reasoning() -> None:
    answer = {
        "id": "c",
        "model": "deepseek-reasoner",
        "choices": [
            {
                "message": {"role": "assistant", "content": "4", "reasoning_content": "2+2"},
                "finish_reason": "stop",
            }
        ],
    }
    assert (
        openai_provider.OpenAIAdapter().parse_chat(orjson.dumps(answer)).message.reasoning == "2+2"
    )
    chunk = {
        "id": "c",
        "model": "m",
        "choices": [{"delta": {"reasoning": "hm"}, "finish_reason": None}],
    }
    sse = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode()
    assert ReasoningDelta("hm") in decode_stream(openai_provider.OpenAIAdapter(), [sse])
    line = {
        "model": "qwen3",
        "message": {"role": "assistant", "content": "", "thinking": "hmm"},
        "done": True,
    }
    assert ollama.OllamaAdapter().parse_chat(orjson.dumps(line)).message.reasoning == "hmm"


def test_gemini_thought_parts_and_signature_become_reasoning() -> None:
    events = mock_events(request(reasoning=Reasoning("low")), "gemini-2.5-flash", "gemini")
    body = GeminiDialect().encode_response(fold_events(events))
    message = GeminiAdapter().parse_chat(body).message
    assert message.reasoning == "Thinking at low effort."
    assert message.reasoning_signature == f"gemini:{mock_signature('Thinking at low effort.')}"


# --- what callers get back ------------------------------------------------------------------

THOUGHTFUL = ChatResponse(
    id="a1",
    model="m",
    message=Message(
        role="assistant",
        content=[TextPart("Yes.")],
        reasoning="Hm.",
        reasoning_signature="anthropic:s",
    ),
)


def stream_bytes(dialect: Dialect, response: ChatResponse) -> bytes:
    encoder = dialect.stream_encoder(request())
    from modelway.types import response_events

    return b"".join(encoder.encode(e) for e in response_events(response)) + encoder.finish()


def test_each_dialect_returns_thinking_whole() -> None:
    responses = orjson.loads(ResponsesDialect().encode_response(THOUGHTFUL))
    assert responses["output"][0] == {
        "id": "rs_a1",
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": "Hm."}],
        "encrypted_content": "anthropic:s",
    }
    assert responses["output"][1]["type"] == "message"
    anthropic = orjson.loads(AnthropicDialect().encode_response(THOUGHTFUL))
    assert anthropic["content"][0] == {"type": "thinking", "thinking": "Hm.", "signature": "s"}
    chat = orjson.loads(OpenAIDialect().encode_response(THOUGHTFUL))
    assert chat["choices"][0]["message"]["reasoning_content"] == "Hm."
    assert orjson.loads(OllamaDialect().encode_response(THOUGHTFUL))["message"]["thinking"] == "Hm."


def test_each_dialect_streams_thinking() -> None:
    sse = stream_bytes(ResponsesDialect(), THOUGHTFUL).decode()
    for kind in (
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
    ):
        assert f"event: {kind}\n" in sse
    completed = json.loads(sse.split("event: response.completed\ndata: ")[1])
    assert completed["response"]["output"][0]["encrypted_content"] == "anthropic:s"
    anthropic = stream_bytes(AnthropicDialect(), THOUGHTFUL).decode()
    assert '"type":"thinking_delta","thinking":"Hm."' in anthropic
    assert '"type":"signature_delta","signature":"s"' in anthropic
    assert '"reasoning_content":"Hm."' in stream_bytes(OpenAIDialect(), THOUGHTFUL).decode()
    assert '"thinking":"Hm."' in stream_bytes(OllamaDialect(), THOUGHTFUL).decode()


def test_an_anthropic_caller_gets_its_own_and_others_signatures_back_intact() -> None:
    dialect = AnthropicDialect()
    for signature in ("anthropic:s", "gemini:g"):
        answer = ChatResponse(
            id="a",
            model="m",
            message=Message(role="assistant", reasoning="r", reasoning_signature=signature),
        )
        block = orjson.loads(dialect.encode_response(answer))["content"][0]
        sent_back = {
            "model": "m",
            "max_tokens": 5,
            "messages": [
                {"role": "user", "content": "x"},
                {"role": "assistant", "content": [block]},
            ],
        }
        assert dialect.decode_chat(sent_back).messages[1].reasoning_signature == signature


# --- through the gateway ----------------------------------------------------------------


def mock_upstream(dialect: Dialect, wire: str) -> Callable[[UpstreamRequest], MockReply]:
    """An upstream of ``wire`` answered by the mock engine, as ``modelway mock`` does."""

    def answer(upstream: UpstreamRequest) -> MockReply:
        body = json.loads(upstream.body or b"{}")
        if wire == "gemini":
            body["model"] = upstream.url.split("/models/")[1].split(":")[0]
            body["stream"] = "stream" in upstream.url
        try:
            chat = dialect.decode_chat(body)
            events = mock_events(chat, chat.model, wire)
        except BadRequest as error:
            return MockReply(400, dialect.encode_error(error))
        if not chat.stream:
            return MockReply(200, dialect.encode_response(fold_events(events)))
        encoder = dialect.stream_encoder(chat)
        sse = b"".join(encoder.encode(event) for event in events) + encoder.finish()
        return MockReply(200, sse, {"content-type": dialect.stream_media_type})

    return answer


UPSTREAMS: dict[str, tuple[Dialect, str]] = {
    "anthropic": (AnthropicDialect(), "http://anthropic.test"),
    "gemini": (GeminiDialect(), "http://gemini.test"),
}


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    async with in_process_gateway(tmp_path) as setup:
        for wire, (dialect, url) in UPSTREAMS.items():
            setup.state.engine.router.backends[wire] = HttpProvider(
                wire,
                adapter_for(wire),
                url,
                Secret("sk-upstream"),
                transport=MockTransport(mock_upstream(dialect, wire)),
            )
        yield setup


def sdk(setup: Setup) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key=MASTER, base_url="http://gateway/v1", http_client=setup.http)


@pytest.mark.parametrize("model", ["anthropic/claude-sonnet-4-5", "gemini/gemini-2.5-flash"])
@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "streamed"])
async def test_a_responses_tool_turn_keeps_its_signed_thinking(
    setup: Setup, model: str, streamed: bool
) -> None:
    client = sdk(setup)
    tools: Any = [
        {"type": "function", "name": "weather", "parameters": {"type": "object", "properties": {}}}
    ]
    first = await _response(
        client, streamed, model=model, input="weather?", tools=tools, reasoning={"effort": "low"}
    )
    kinds = [item.type for item in first.output]
    assert kinds == ["reasoning", "function_call"], kinds
    thought = first.output[0]
    # Both providers take a budget: "low" is 2,048 tokens.
    assert thought.summary[0].text == "Thinking with a budget of 2048 tokens."  # type: ignore[union-attr]
    call = first.output[1]
    history: list[Any] = [
        {"role": "user", "content": "weather?"},
        thought.model_dump(exclude_none=True),
        call.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},  # type: ignore[union-attr]
    ]
    second = await _response(
        client, streamed, model=model, input=history, tools=tools, reasoning={"effort": "low"}
    )
    assert "sunny" in second.output_text
    # A tampered signature is refused by the provider that wrote it.
    history[1] = {**history[1], "encrypted_content": history[1]["encrypted_content"] + "x"}
    with pytest.raises(openai.BadRequestError, match="invalid thinking signature"):
        await client.responses.create(
            model=model, input=history, tools=tools, reasoning={"effort": "low"}
        )


async def _response(client: openai.AsyncOpenAI, streamed: bool, **fields: Any) -> Any:
    if not streamed:
        return await client.responses.create(**fields)
    async with client.responses.stream(**fields) as stream:
        return await stream.get_final_response()


async def test_chat_completions_callers_see_reasoning_content(setup: Setup) -> None:
    reply = await setup.http.post(
        "/v1/chat/completions",
        json={
            "model": "anthropic/claude-sonnet-4-5",
            "messages": [{"role": "user", "content": "x"}],
            "reasoning_effort": "medium",
        },
    )
    assert reply.status_code == 200, reply.text
    message = reply.json()["choices"][0]["message"]
    assert message["reasoning_content"] == "Thinking with a budget of 8192 tokens."


async def test_a_claude_caller_keeps_gemini_thinking_across_a_tool_turn(setup: Setup) -> None:
    body: dict[str, Any] = {
        "model": "gemini/gemini-2.5-flash",
        "max_tokens": 20000,
        "thinking": {"type": "enabled", "budget_tokens": 4096},
        "tools": [{"name": "weather", "input_schema": {"type": "object", "properties": {}}}],
        "messages": [{"role": "user", "content": "weather?"}],
    }
    first = await setup.http.post("/v1/messages", json=body)
    assert first.status_code == 200, first.text
    content = first.json()["content"]
    assert [block["type"] for block in content] == ["thinking", "tool_use"]
    body["messages"] += [
        {"role": "assistant", "content": content},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": content[1]["id"], "content": "sunny"}
            ],
        },
    ]
    second = await setup.http.post("/v1/messages", json=body)
    assert second.status_code == 200, second.text
    assert "sunny" in second.json()["content"][-1]["text"]
    content[0]["signature"] = "gemini:forged"
    third = await setup.http.post("/v1/messages", json=body)
    assert third.status_code == 400 and "invalid thinking signature" in third.text


# --- reasoning tokens -------------------------------------------------------------------


def test_reasoning_tokens_are_read_from_each_wire_that_reports_them() -> None:
    chat = {
        "prompt_tokens": 5,
        "completion_tokens": 40,
        "completion_tokens_details": {"reasoning_tokens": 30},
    }
    assert openai_provider.parse_usage(chat) == Usage(
        prompt_tokens=5, completion_tokens=40, reasoning_tokens=30
    )
    from modelway.providers.gemini import parse_usage as gemini_usage

    gemini = {"promptTokenCount": 5, "candidatesTokenCount": 10, "thoughtsTokenCount": 30}
    assert gemini_usage(gemini).reasoning_tokens == 30
    assert gemini_usage(gemini).completion_tokens == 40  # thinking is output


async def test_reasoning_tokens_reach_the_usage_record_the_metrics_and_every_dialect(
    setup: Setup,
) -> None:
    body = {
        "model": "gemini/gemini-2.5-flash",
        "messages": [{"role": "user", "content": "x"}],
        "reasoning_effort": "low",
    }
    reply = await setup.http.post("/v1/chat/completions", json=body)
    assert reply.status_code == 200, reply.text
    thought_words = 7  # "Thinking with a budget of 2048 tokens.": the mock counts words
    assert reply.json()["usage"]["completion_tokens_details"]["reasoning_tokens"] == thought_words
    responses = await sdk(setup).responses.create(
        model="gemini/gemini-2.5-flash", input="x", reasoning={"effort": "low"}
    )
    assert responses.usage is not None
    assert responses.usage.output_tokens_details.reasoning_tokens == thought_words

    async def recorded() -> list[Any] | None:
        found = await setup.state.store.usage.recent(limit=5)
        return found if len(found) == 2 else None

    records = await eventually(recorded, what="two usage records")
    assert {record.reasoning_tokens for record in records} == {thought_words}
    metrics = (await setup.http.get("/metrics")).text
    series = 'modelway_tokens_total{model="gemini-2.5-flash",provider="gemini",type="reasoning"}'
    assert f"{series} {2 * thought_words}.0" in metrics
