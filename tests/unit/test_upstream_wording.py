"""What a caller is told when an upstream fails: words every dialect's caller reads alike,
never another wire format's terms, never a sentence cut off where the upstream said nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from modelway.errors import StreamTruncated, UpstreamStatusError
from modelway.providers.base import HttpRequest
from modelway.providers.registry import adapter_for
from modelway.providers.transport import MockReply, MockTransport
from modelway.providers.upstream import Call, HttpProvider
from tests.unit.gateways import in_process_gateway

#: Each wire's own end of a stream, which a caller speaking another knows nothing of.
FINISH_MARKERS = ("[DONE]", "message_stop", "finishReason", "done: true")


@pytest.mark.parametrize("wire", ["openai", "anthropic", "gemini", "ollama"])
def test_a_stream_cut_short_is_told_without_its_wires_finish_marker(wire: str) -> None:
    decoder = adapter_for(wire).stream_decoder()
    decoder.feed(b"")
    with pytest.raises(StreamTruncated) as cut:
        decoder.close()
    assert "cut off before its end" in cut.value.message
    assert not [marker for marker in FINISH_MARKERS if marker in cut.value.message]


def _cut_openai_stream(request: Any) -> MockReply:
    chunk = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "gpt-x",
        "choices": [{"index": 0, "delta": {"content": "half an"}, "finish_reason": None}],
    }
    body = b"data: " + json.dumps(chunk).encode() + b"\n\n"
    return MockReply(200, body, {"content-type": "text/event-stream"})


async def test_an_anthropic_client_is_not_told_of_openais_done(tmp_path: Path) -> None:
    # It was told "the upstream stream ended before [DONE]".
    async with in_process_gateway(tmp_path, upstream=_cut_openai_stream) as gateway:
        body = {
            "model": "openai/gpt-x",
            "max_tokens": 10,
            "stream": True,
            "messages": [{"role": "user", "content": "hi"}],
        }
        answer = await gateway.http.post("/v1/messages", json=body)
    assert "event: error" in answer.text
    assert "cut off before its end" in answer.text and "[DONE]" not in answer.text


@pytest.mark.parametrize("body", [b"", b"  \n"])
async def test_an_error_status_with_an_empty_body_says_so(body: bytes) -> None:
    # It said "up answered 404: " and stopped.
    upstream = HttpProvider(
        "up",
        adapter_for("openai"),
        "http://u/v1",
        None,
        transport=MockTransport(lambda request: MockReply(404, body)),
    )
    with pytest.raises(UpstreamStatusError) as refused:
        await upstream.request(HttpRequest("POST", "/chat/completions", b"{}"), Call("r"))
    assert refused.value.message == "up answered 404 with an empty body"
