"""A conversation moved between providers carries thinking another provider signed (in the
gateway's tagged form, as a translated answer handed it out). Relayed as sent, the new
upstream would refuse a signature it did not write: such a call is translated instead, and
the provider is sent only its own; a conversation of the provider's own is still relayed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelway.calls.relay import signed_elsewhere
from modelway.providers.registry import adapter_for
from modelway.providers.transport import MockReply, MockTransport, UpstreamRequest
from modelway.providers.upstream import HttpProvider
from modelway.reasoning import gateway_tagged
from modelway.secrets import Secret
from tests.unit.gateways import Setup, in_process_gateway, openai_upstream

ANTHROPIC_OWN = "EqQBCkYIBxgCKkBtaGlzIGlzIGEgc2lnbmF0dXJl+/="  # base64: no tag, no colon
ANTHROPIC_ANSWER = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-x",
    "content": [{"type": "text", "text": "ok"}],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 3, "output_tokens": 1},
}


def thinking_turns(signature: str) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "think first"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": signature},
                {"type": "text", "text": "thought"},
            ],
        },
        {"role": "user", "content": "and now?"},
    ]


def reasoning_input(encrypted: str) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "think first"},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": encrypted},
        {"role": "assistant", "content": "thought"},
        {"role": "user", "content": "and now?"},
    ]


@pytest.mark.parametrize(
    ("signature", "tagged"),
    [
        ("gemini:c2ln", True),
        ("anthropic:EqQB", True),
        ("anthropic-redacted:abc", True),
        (ANTHROPIC_OWN, False),
        ("gAAAAABoZ2VuY3J5cHRlZA==", False),  # OpenAI's encrypted_content
        ("nobody:x", False),
        ("gemini", False),
        (None, False),
        (3, False),
    ],
)
def test_which_signatures_are_the_gateways_tagged_form(signature: object, tagged: bool) -> None:
    assert gateway_tagged(signature) is tagged


@given(
    st.recursive(
        st.none() | st.text() | st.integers(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
        max_leaves=30,
    )
)
def test_any_body_is_judged_without_error(body: object) -> None:
    for wire in ("anthropic", "responses", "openai", "ollama"):
        for shaped in (body, {"messages": body}, {"input": body}):
            if isinstance(shaped, dict):
                assert signed_elsewhere(wire, shaped) in (True, False)


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[tuple[Setup, list[UpstreamRequest]]]:
    asked: list[UpstreamRequest] = []

    def anthropic(request: UpstreamRequest) -> MockReply:
        asked.append(request)
        return MockReply(200, json.dumps(ANTHROPIC_ANSWER).encode())

    def openai(request: UpstreamRequest) -> MockReply:
        asked.append(request)
        return openai_upstream(request)

    async with in_process_gateway(tmp_path, upstream=openai) as setup:
        setup.state.engine.router.backends["anthropic"] = HttpProvider(
            "anthropic",
            adapter_for("anthropic"),
            "http://anthropic.test",
            Secret("sk-ant"),
            transport=MockTransport(anthropic),
        )
        yield setup, asked


@pytest.mark.parametrize(("signature", "relayed"), [("gemini:c2ln", False), (ANTHROPIC_OWN, True)])
async def test_anthropic_is_sent_only_its_own_thinking(
    gateway: tuple[Setup, list[UpstreamRequest]], signature: str, relayed: bool
) -> None:
    setup, asked = gateway
    body = {"model": "anthropic/claude-x", "max_tokens": 50, "messages": thinking_turns(signature)}
    answer = await setup.http.post("/v1/messages", json=body)
    assert answer.status_code == 200, answer.text
    (sent,) = asked
    upstream_body = json.loads(sent.body or b"{}")
    blocks = [
        b for m in upstream_body["messages"] for b in m["content"] if isinstance(m["content"], list)
    ]
    thinking = [b for b in blocks if b.get("type") == "thinking"]
    if relayed:  # its own: relayed as sent, the block untouched
        assert thinking == [{"type": "thinking", "thinking": "hmm", "signature": signature}]
    else:  # Gemini's: translated, and the block Anthropic could not check left out
        assert thinking == [] and "gemini:" not in (sent.body or b"").decode()


@pytest.mark.parametrize(
    ("encrypted", "relayed"), [("anthropic:EqQB", False), ("gAAAAABoZ2VuY3J5cHRlZA==", True)]
)
async def test_openai_is_sent_only_its_own_reasoning(
    gateway: tuple[Setup, list[UpstreamRequest]], encrypted: str, relayed: bool
) -> None:
    setup, asked = gateway
    body = {"model": "openai/gpt-5", "input": reasoning_input(encrypted)}
    await setup.http.post("/v1/responses", json=body)
    (sent,) = asked
    assert sent.url.endswith("/responses") is relayed
    assert (encrypted in (sent.body or b"").decode()) is relayed
