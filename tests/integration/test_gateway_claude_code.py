"""Claude Code's requests against a real gateway (RSGI), translated to other providers.

Claude Code posts to ``/v1/messages?beta=true`` with an ``anthropic-beta`` header and a
body with mid-conversation system turns, ``cache_control``, thinking blocks and
``thinking`` / ``context_management`` / ``output_config`` (the fixture below).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

FIXTURE = Path(__file__).parent.parent / "fixtures" / "anthropic" / "claude_code_request.json"
HEADERS = {
    "x-api-key": "x",
    "anthropic-version": "2023-06-01",
    "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14,"
    "context-management-2025-06-27",
}
TRANSLATED = ["mock", "openai", "ollama", "gemini"]


def claude_code_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(FIXTURE.read_text())
    body.update(overrides)
    return body


@pytest.mark.parametrize("provider", TRANSLATED)
def test_a_claude_code_message_is_answered_through_each_provider(
    gateway_url: str, provider: str
) -> None:
    body = claude_code_body(model=f"{provider}/echo")
    response = httpx.post(f"{gateway_url}/v1/messages?beta=true", json=body, headers=HEADERS)
    assert response.status_code == 200, response.text
    message = response.json()
    assert message["type"] == "message"
    # The mock calls the first tool offered: the answer Claude Code acts on. Providers that
    # think (the built-in mock does when asked, as Claude Code asks) show it first.
    *thinking, tool_use = message["content"]
    assert [block["type"] for block in thinking] == (["thinking"] if provider == "mock" else [])
    assert tool_use["type"] == "tool_use" and tool_use["name"] == "Bash"
    assert isinstance(tool_use["input"]["command"], str)
    assert message["stop_reason"] == "tool_use"


@pytest.mark.parametrize("provider", TRANSLATED)
def test_a_claude_code_stream_is_answered_through_each_provider(
    gateway_url: str, provider: str
) -> None:
    body = claude_code_body(model=f"{provider}/echo", stream=True)
    url = f"{gateway_url}/v1/messages?beta=true"
    with httpx.stream("POST", url, json=body, headers=HEADERS) as response:
        assert response.status_code == 200, response.read()
        events = [
            json.loads(line.removeprefix("data: "))
            for line in response.iter_lines()
            if line.startswith("data: ")
        ]
    assert events[0]["type"] == "message_start"
    assert [event["type"] for event in events[-2:]] == ["message_delta", "message_stop"]
    blocks = [event["content_block"] for event in events if event["type"] == "content_block_start"]
    thinking = [{"type": "thinking", "thinking": "", "signature": ""}] if provider == "mock" else []
    assert blocks[:-1] == thinking
    assert (blocks[-1]["type"], blocks[-1]["name"]) == ("tool_use", "Bash")
    arguments = "".join(
        event["delta"]["partial_json"]
        for event in events
        if event["type"] == "content_block_delta" and event["delta"]["type"] == "input_json_delta"
    )
    assert isinstance(json.loads(arguments)["command"], str)
    assert events[-2]["delta"]["stop_reason"] == "tool_use"


@pytest.mark.parametrize("provider", ["mock", "openai"])
def test_count_tokens_takes_a_claude_code_body_with_the_beta_query(
    gateway_url: str, provider: str
) -> None:
    body = claude_code_body(model=f"{provider}/echo")
    del body["max_tokens"], body["stream"]
    url = f"{gateway_url}/v1/messages/count_tokens?beta=true"
    response = httpx.post(url, json=body, headers=HEADERS)
    assert response.status_code == 200, response.text
    assert response.json()["input_tokens"] > 0
