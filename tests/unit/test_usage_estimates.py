"""Token estimates without usage: the text of a prompt or an answer, never its envelope."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from modelway.calls.tallies import EventTally
from modelway.tokens import (
    BYTES_PER_TOKEN,
    IMAGE_TOKENS,
    answer_text_size,
    prompt_tokens,
    text_size,
)
from modelway.types import (
    ChatRequest,
    ChatResponse,
    ImagePart,
    Message,
    MessageEnd,
    ReasoningDelta,
    TextDelta,
    TextPart,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolCallStart,
)

FIXTURES = Path(__file__).parent.parent / "fixtures"
#: A 12-word prompt: about 15 tokens (70 bytes) of text.
PROMPT = "Write a long story about a lighthouse keeper and his very patient cat."


def tokens_of(text: str) -> int:
    return len(text.encode()) // BYTES_PER_TOKEN


def test_text_is_measured_in_utf8_bytes_and_structure_is_left_out() -> None:
    assert text_size("café") == 5
    assert text_size({"role": "user", "type": "text", "id": "x1", "text": "日本"}) == 6
    assert text_size({"signature": "abc", "encrypted_content": "abc", "data": "abc"}) == 0
    assert text_size([{"content": "ab"}, "cd", None, 3, True]) == 4
    assert text_size(None) == 0


def test_media_counts_as_a_typical_image_however_large_its_data() -> None:
    image = BYTES_PER_TOKEN * IMAGE_TOKENS
    base64 = "iVBORw0KGgo" * 10_000
    url = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{base64}"}}
    assert text_size(url) == image  # OpenAI Chat
    assert text_size({"type": "input_image", "image_url": base64}) == image  # Responses
    source = {"type": "base64", "media_type": "image/png", "data": base64}
    assert text_size({"type": "image", "source": source}) == image  # Anthropic
    assert text_size({"role": "user", "content": "", "images": [base64, base64]}) == 2 * image
    assert text_size({"role": "assistant", "content": "hi", "images": None}) == 2


@pytest.mark.parametrize(
    "body",
    [
        {"model": "gpt-x", "stream": True, "messages": [{"role": "user", "content": PROMPT}]},
        {
            "model": "claude-x",
            "max_tokens": 1024,
            "messages": [{"role": "user", "content": [{"type": "text", "text": PROMPT}]}],
        },
        {"model": "gpt-x", "input": [{"role": "user", "content": PROMPT}], "store": False},
        {"model": "gpt-x", "input": PROMPT},
        {"model": "llama3.2", "messages": [{"role": "user", "content": PROMPT}], "stream": True},
    ],
    ids=["openai", "anthropic", "responses", "responses-text", "ollama"],
)
def test_a_relayed_bodys_prompt_is_estimated_from_its_text_not_its_json(
    body: dict[str, Any],
) -> None:
    assert prompt_tokens(body) == tokens_of(PROMPT)
    assert prompt_tokens(body) < len(orjson.dumps(body)) // BYTES_PER_TOKEN


def test_a_claude_code_body_counts_text_thinking_tools_and_an_image_not_signatures() -> None:
    body = orjson.loads((FIXTURES / "anthropic" / "claude_code_request.json").read_bytes())
    system = "You are Claude Code, Anthropic's official CLI for Claude."
    system += "You are an interactive CLI tool that helps users with software engineering tasks."
    turns = "<system-reminder>Today is Thursday.</system-reminder>" + "List the files here."
    turns += "The working directory is /repo." + "I should run ls." + "I'll list them."
    turns += "Bash" + "ls" + "List files" + "README.md\nsrc" + "Answer in one line."
    turns += "Which of them is a folder?"
    tools = "Bash" + "Executes a bash command." + "command"
    tools += "http://json-schema.org/draft-07/schema#" + "Read" + "Reads a file." + "file_path"
    assert prompt_tokens(body) == tokens_of(system + turns + tools) + IMAGE_TOKENS


def test_a_responses_body_counts_instructions_calls_outputs_and_tools() -> None:
    body = orjson.loads((FIXTURES / "responses" / "request_tool_round_trip.json").read_bytes())
    texts = ["You are a weather assistant.", "Weather in Paris and Rome?", "Checking both."]
    texts += ["get_weather", '{"city":"Paris"}', "get_weather", '{"city":"Rome"}']
    texts += ["18C, sunny", "21C, cloudy", "Summarise."]
    assert prompt_tokens(body) >= tokens_of("".join(texts))
    assert prompt_tokens(body) < len(orjson.dumps(body)) // BYTES_PER_TOKEN // 2


def test_a_canonical_requests_prompt_counts_text_tool_calls_tools_and_images() -> None:
    request = ChatRequest(
        model="m",
        messages=[
            Message(role="user", content=[TextPart(PROMPT), ImagePart(data="iVBOR" * 1000)]),
            Message(
                role="assistant",
                tool_calls=[ToolCall(id="call_1", name="look", arguments='{"at":"sea"}')],
                reasoning="Hm.",
            ),
        ],
        tools=[Tool(name="look", description="Looks.", parameters={"type": "object"})],
    )
    text = PROMPT + "look" + '{"at":"sea"}' + "Hm." + "look" + "Looks."
    assert prompt_tokens(request) == tokens_of(text) + IMAGE_TOKENS


@pytest.mark.parametrize(
    "fixture", ["openai/chat_text.json", "anthropic/message_tool_use.json", "ollama/chat.json"]
)
def test_a_whole_answers_size_is_its_text_not_its_json(fixture: str) -> None:
    raw = (FIXTURES / fixture).read_bytes()
    size = answer_text_size(orjson.loads(raw))
    assert 0 < size < len(raw) // 2


def test_a_whole_answers_text_counts_content_tool_calls_and_reasoning() -> None:
    anthropic = orjson.loads((FIXTURES / "anthropic" / "message_tool_use.json").read_bytes())
    expected = "I'll check the current weather in San Francisco for you."
    expected += "get_weather" + "San Francisco, CA" + "celsius"
    assert answer_text_size(anthropic) == len(expected)
    responses = {
        "id": "resp_1",
        "status": "completed",
        "output": [
            {"id": "rs_1", "type": "reasoning", "summary": [{"type": "summary_text", "text": "A"}]},
            {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": "Hi.", "annotations": []}],
            },
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        ],
    }
    assert answer_text_size(responses) == len("A" + "Hi." + "f" + "{}")
    message = Message(
        role="assistant",
        content=[TextPart("Hi.")],
        tool_calls=[ToolCall(id="c1", name="f", arguments="{}")],
        reasoning="A",
    )
    assert answer_text_size(ChatResponse(id="r1", model="m", message=message)) == 7
    assert answer_text_size(None) == 0


def test_a_translated_streams_tally_counts_text_reasoning_and_tool_calls() -> None:
    tally = EventTally()
    for event in (
        ReasoningDelta(text="Hm."),
        ReasoningDelta(signature="EqQBCkgIARAB"),
        TextDelta("café"),
        ToolCallStart(index=0, id="call_1", name="look"),
        ToolCallDelta(index=0, arguments='{"at":"sea"}'),
        MessageEnd("tool_calls"),
    ):
        tally.add(event)
    assert tally.size == len("Hm.") + len("café".encode()) + len("look" + '{"at":"sea"}')
    assert tally.finish_reason == "tool_calls" and tally.usage is None
