"""Claude Code's Messages API requests, translated to providers of other formats.

Claude Code sends ``role: "system"`` turns mid-conversation, ``cache_control`` on most
blocks and tools, thinking blocks with signatures, and top-level fields (``thinking``,
``context_management``, ``output_config``) no canonical field carries; it posts to
``/v1/messages?beta=true`` with an ``anthropic-beta`` header. The body in
``tests/fixtures/anthropic/claude_code_request.json`` has that shape.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from modelway.dialects.anthropic import AnthropicDialect
from modelway.errors import BadRequest
from modelway.providers.anthropic import messages_body
from modelway.providers.gemini_request import generate_content_body
from modelway.providers.openai import build_chat_body
from modelway.providers.registry import adapter_for
from modelway.providers.transport import MockReply, MockTransport, UpstreamRequest
from modelway.providers.upstream import HttpProvider
from modelway.secrets import Secret
from modelway.types import ImagePart, Message, TextPart, Tool, ToolCall
from tests.unit.gateways import Setup, in_process_gateway, openai_upstream

FIXTURE = Path(__file__).parent.parent / "fixtures" / "anthropic" / "claude_code_request.json"
dialect = AnthropicDialect()
#: The headers Claude Code sends with every call (besides its key).
CLAUDE_CODE_HEADERS = {
    "anthropic-version": "2023-06-01",
    "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14,"
    "context-management-2025-06-27,fine-grained-tool-streaming-2025-05-14",
    "user-agent": "claude-cli/2.0.0 (external, cli)",
}
SYSTEM_BLOCKS = (
    "You are Claude Code, Anthropic's official CLI for Claude.",
    "You are an interactive CLI tool that helps users with software engineering tasks.",
)
SYSTEM_TEXT = "".join(SYSTEM_BLOCKS)  # Message.text() joins a message's parts as they are


def claude_code_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(FIXTURE.read_text())
    body.update(overrides)
    return body


def without(key: str, value: Any) -> Any:
    """``value`` with every ``key`` removed from every object, however deep."""
    if isinstance(value, dict):
        return {k: without(key, v) for k, v in value.items() if k != key}
    if isinstance(value, list):
        return [without(key, item) for item in value]
    return value


# --- decoding ------------------------------------------------------------------------


def test_a_claude_code_request_decodes_with_its_system_turns_in_place() -> None:
    request = dialect.decode_chat(claude_code_body())
    tool_id = "toolu_01A09q90qw90lq917835lq9"
    assert request.messages == [
        Message(role="system", content=[TextPart(text) for text in SYSTEM_BLOCKS]),
        Message(
            role="user",
            content=[
                TextPart("<system-reminder>Today is Thursday.</system-reminder>"),
                TextPart("List the files here."),
            ],
        ),
        Message(role="system", content=[TextPart("The working directory is /repo.")]),
        Message(
            role="assistant",
            content=[TextPart("I'll list them.")],
            tool_calls=[
                ToolCall(
                    id=tool_id, name="Bash", arguments='{"command":"ls","description":"List files"}'
                )
            ],
            reasoning="I should run ls.",
            reasoning_signature="anthropic:EqQBCkgIARABGAIiQL3Bz5yvLjsZ2Y",
        ),
        Message(role="tool", content=[TextPart("README.md\nsrc")], tool_call_id=tool_id),
        Message(role="user", content=[ImagePart(data="iVBORw0KGgo=", media_type="image/png")]),
        Message(role="system", content=[TextPart("Answer in one line.")]),
        Message(role="user", content=[TextPart("Which of them is a folder?")]),
    ]
    assert [tool.name for tool in request.tools] == ["Bash", "Read"]
    assert request.max_tokens == 32000 and request.stream is False
    assert request.user is not None and request.user.startswith("user_5b1f0c2e_account_")
    assert request.extra == {}


@pytest.mark.parametrize(
    "content",
    ["Stay in /repo.", [{"type": "text", "text": "Stay in /repo."}]],
    ids=["string", "text-blocks"],
)
def test_a_system_turn_becomes_a_system_message_at_its_position(content: Any) -> None:
    messages = [
        {"role": "user", "content": "a"},
        {"role": "system", "content": content},
        {"role": "user", "content": "b"},
    ]
    request = dialect.decode_chat(claude_code_body(messages=messages, system=None))
    assert [message.role for message in request.messages] == ["user", "system", "user"]
    assert request.messages[1] == Message(role="system", content=[TextPart("Stay in /repo.")])


@pytest.mark.parametrize("content", ["", []], ids=["empty-string", "no-blocks"])
def test_an_empty_system_turn_adds_no_message(content: Any) -> None:
    messages = [{"role": "system", "content": content}, {"role": "user", "content": "b"}]
    request = dialect.decode_chat(claude_code_body(messages=messages, system=None))
    assert [message.role for message in request.messages] == ["user"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "messages.0.content: must be a string or a list of text blocks"),
        ([{"type": "image"}], "messages.0.content.0.type: system blocks must be 'text'"),
        ([{"type": "text"}], "messages.0.content.0.text: required, a string"),
    ],
)
def test_a_malformed_system_turn_is_a_400_naming_the_field(content: Any, message: str) -> None:
    messages = [{"role": "system", "content": content}, {"role": "user", "content": "b"}]
    with pytest.raises(BadRequest) as caught:
        dialect.decode_chat(claude_code_body(messages=messages))
    assert caught.value.message.startswith(message)


def test_cache_control_changes_nothing_on_any_block_or_tool() -> None:
    body = claude_code_body()
    assert dialect.decode_chat(body) == dialect.decode_chat(without("cache_control", body))


def test_thinking_blocks_keep_their_text_and_signature_for_anthropic() -> None:
    assistant = [
        {"type": "thinking", "thinking": "hm", "signature": "EqQBCkgIARAB"},
        {"type": "redacted_thinking", "data": "EmwKAhgB"},
        {"type": "text", "text": "Done."},
    ]
    messages = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": assistant},
        {"role": "user", "content": "b"},
    ]
    request = dialect.decode_chat(claude_code_body(messages=messages, system=None))
    # The first signed block is kept (a turn's redacted block follows its thinking).
    assert request.messages[1] == Message(
        role="assistant",
        content=[TextPart("Done.")],
        reasoning="hm",
        reasoning_signature="anthropic:EqQBCkgIARAB",
    )


def test_claude_code_top_level_fields_are_accepted_and_dropped() -> None:
    body = claude_code_body(service_tier="auto", container="c1", mcp_servers=[], top_k=5)
    plain = {
        key: value
        for key, value in body.items()
        if key
        not in (
            "context_management",
            "service_tier",
            "container",
            "mcp_servers",
            "top_k",
        )
    }
    assert dialect.decode_chat(body) == dialect.decode_chat(plain)


def test_tools_keep_their_schemas_without_cache_control() -> None:
    tools = dialect.decode_chat(claude_code_body()).tools
    assert tools[1] == Tool(
        name="Read",
        description="Reads a file.",
        parameters={
            "type": "object",
            "properties": {"file_path": {"type": "string"}},
            "required": ["file_path"],
        },
    )


# --- system turns into each provider -------------------------------------------------


def test_system_turns_stay_in_place_for_an_openai_upstream() -> None:
    body = build_chat_body(dialect.decode_chat(claude_code_body()), "gpt-x")
    roles = [message["role"] for message in body["messages"]]
    assert roles == ["system", "user", "system", "assistant", "tool", "user", "system", "user"]
    assert body["messages"][2] == {"role": "system", "content": "The working directory is /repo."}


def test_system_turns_join_the_one_system_prompt_of_an_anthropic_upstream() -> None:
    body = messages_body(dialect.decode_chat(claude_code_body()), "claude-sonnet-4-5")
    joined = "\n\n".join([SYSTEM_TEXT, "The working directory is /repo.", "Answer in one line."])
    assert body["system"] == joined
    assert [turn["role"] for turn in body["messages"]] == ["user", "assistant", "user"]


def test_system_turns_join_the_system_instruction_of_a_gemini_upstream() -> None:
    body = generate_content_body(dialect.decode_chat(claude_code_body()))
    joined = "\n\n".join([SYSTEM_TEXT, "The working directory is /repo.", "Answer in one line."])
    assert body["systemInstruction"] == {"parts": [{"text": joined}]}
    assert {content["role"] for content in body["contents"]} <= {"user", "model"}


# --- over HTTP, to an OpenAI-format upstream ------------------------------------------


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[tuple[Setup, list[UpstreamRequest]]]:
    sent: list[UpstreamRequest] = []

    def upstream(request: UpstreamRequest) -> MockReply:
        sent.append(request)
        return openai_upstream(request)

    async with in_process_gateway(tmp_path, upstream=upstream) as setup:
        yield setup, sent


async def test_claude_code_gets_an_anthropic_message_from_an_openai_upstream(
    gateway: tuple[Setup, list[UpstreamRequest]],
) -> None:
    setup, sent = gateway
    response = await setup.http.post(
        "/v1/messages?beta=true",
        content=orjson.dumps(claude_code_body(model="openai/gpt-x")),
        headers=CLAUDE_CODE_HEADERS,
    )
    assert response.status_code == 200, response.text
    message = response.json()
    assert message["type"] == "message" and message["role"] == "assistant"
    assert message["content"] == [{"type": "text", "text": "hi"}]
    assert message["stop_reason"] == "end_turn"
    assert message["usage"]["input_tokens"] == 5 and message["usage"]["output_tokens"] == 1

    (upstream,) = sent
    assert upstream.url.endswith("/chat/completions")
    assert "anthropic-beta" not in {name.lower() for name in upstream.headers}
    upstream_body = json.loads(upstream.body or b"{}")
    roles = [turn["role"] for turn in upstream_body["messages"]]
    assert roles == ["system", "user", "system", "assistant", "tool", "user", "system", "user"]
    for dropped in (b"cache_control", b"thinking", b"context_management", b"output_config"):
        assert dropped not in (upstream.body or b"")


async def test_claude_code_streams_an_anthropic_message_from_an_openai_upstream(
    gateway: tuple[Setup, list[UpstreamRequest]],
) -> None:
    setup, _ = gateway
    body = claude_code_body(model="openai/gpt-x", stream=True)
    response = await setup.http.post(
        "/v1/messages?beta=true", content=orjson.dumps(body), headers=CLAUDE_CODE_HEADERS
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [
        json.loads(line.removeprefix("data: "))
        for line in response.text.splitlines()
        if line.startswith("data: ")
    ]
    kinds = [event["type"] for event in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    text = "".join(
        event["delta"]["text"] for event in events if event["type"] == "content_block_delta"
    )
    assert text == "hi"
    assert events[-2]["delta"]["stop_reason"] == "end_turn"


# bpe-openai (count_tokens' tokenizer) loads its data through a deprecated importlib call.
@pytest.mark.filterwarnings("ignore:open_binary is deprecated:DeprecationWarning")
@pytest.mark.parametrize("model", ["openai/gpt-x", "mock/echo"])
async def test_count_tokens_takes_a_claude_code_body_for_any_model(
    gateway: tuple[Setup, list[UpstreamRequest]], model: str
) -> None:
    setup, sent = gateway
    body = claude_code_body(model=model)
    del body["max_tokens"], body["stream"]  # count_tokens takes neither
    response = await setup.http.post(
        "/v1/messages/count_tokens?beta=true",
        content=orjson.dumps(body),
        headers=CLAUDE_CODE_HEADERS,
    )
    assert response.status_code == 200, response.text
    assert response.json()["input_tokens"] > 0
    assert sent == []  # an offline estimate


@pytest.mark.filterwarnings("ignore:open_binary is deprecated:DeprecationWarning")
@pytest.mark.parametrize(
    "text",
    ["a" * 1_000_000, "a " * 499_999, "é😀" * 400_000],
    ids=["a-million-letters", "500k-tokens", "wide-characters"],
)
async def test_count_tokens_counts_a_text_past_the_tokenizers_own_limits(
    gateway: tuple[Setup, list[UpstreamRequest]], text: str
) -> None:
    # The tokenizer refuses a million characters and 200,000 tokens: that was a 500.
    setup, _ = gateway
    body = {"model": "mock/echo", "messages": [{"role": "user", "content": text}]}
    response = await setup.http.post("/v1/messages/count_tokens", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["input_tokens"] >= len(text.encode()) // 8


async def test_an_anthropic_upstream_gets_the_beta_header_and_the_body_as_sent(
    gateway: tuple[Setup, list[UpstreamRequest]],
) -> None:
    # The same-dialect relay: nothing is translated, and Anthropic reads the beta header.
    setup, _ = gateway
    relayed: list[UpstreamRequest] = []

    def anthropic_upstream(request: UpstreamRequest) -> MockReply:
        relayed.append(request)
        return MockReply(200, (FIXTURE.parent / "message_text.json").read_bytes())

    setup.state.engine.router.backends["anthropic"] = HttpProvider(
        "anthropic",
        adapter_for("anthropic"),
        "http://anthropic.test",
        Secret("sk-ant-upstream"),
        transport=MockTransport(anthropic_upstream),
    )
    body = claude_code_body(model="anthropic/claude-sonnet-4-5")
    response = await setup.http.post(
        "/v1/messages?beta=true", content=orjson.dumps(body), headers=CLAUDE_CODE_HEADERS
    )
    assert response.status_code == 200, response.text
    (upstream,) = relayed
    assert upstream.headers["anthropic-beta"] == CLAUDE_CODE_HEADERS["anthropic-beta"]
    upstream_body = json.loads(upstream.body or b"{}")
    assert upstream_body["messages"] == body["messages"]
    assert upstream_body["context_management"] == body["context_management"]
