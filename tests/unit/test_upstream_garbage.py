"""An upstream's answer in its own format but with the wrong types in it (text that is a
list or null, a token count that is a string or a 100-bit number, a message that is null):
a 502 or an answer, in the caller's dialect, never a 500, and never a stream cut short
without an error event. Found by fuzzing the gateway with such an upstream."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modelway.providers.registry import adapter_for
from modelway.providers.transport import MockReply, MockTransport, UpstreamRequest
from modelway.providers.upstream import HttpProvider
from modelway.secrets import Secret
from tests.unit.gateways import in_process_gateway

HUGE = 99999999999999999999999
HELLO = [{"role": "user", "content": "hi"}]


def openai_answer(message: dict[str, Any], usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "c1",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": usage,
    }


def openai_stream(usage: dict[str, Any]) -> bytes:
    chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "m"}
    events = [
        {**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "hi"}}]},
        {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {**chunk, "choices": [], "usage": usage},
    ]
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + (
        b"data: [DONE]\n\n"
    )


OK_USAGE = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
OPENAI_WHOLE = {
    "content-a-list-of-numbers": openai_answer({"role": "assistant", "content": [1]}, OK_USAGE),
    "content-a-number": openai_answer({"role": "assistant", "content": 5}, OK_USAGE),
    "usage-a-string": openai_answer(
        {"role": "assistant", "content": "hi"}, {"prompt_tokens": "x", "completion_tokens": 1}
    ),
    "usage-past-64-bits": openai_answer(
        {"role": "assistant", "content": "hi"}, {"prompt_tokens": 1, "completion_tokens": HUGE}
    ),
    "arguments-an-object": openai_answer(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "t", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}
            ],
        },
        OK_USAGE,
    ),
}
OPENAI_STREAMS = {
    "usage-past-64-bits": openai_stream({"prompt_tokens": 1, "completion_tokens": HUGE}),
    "usage-a-string": openai_stream({"prompt_tokens": "x", "completion_tokens": "y"}),
}
ANTHROPIC_WHOLE = {
    "text-null": {
        "id": "m",
        "type": "message",
        "role": "assistant",
        "model": "c",
        "content": [{"type": "text", "text": None}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 1, "output_tokens": 1},
    },
    "text-a-list": {
        "id": "m",
        "type": "message",
        "role": "assistant",
        "model": "c",
        "content": [{"type": "text", "text": ["x"]}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 1, "output_tokens": 1},
    },
    "usage-a-string": {
        "id": "m",
        "type": "message",
        "role": "assistant",
        "model": "c",
        "content": [{"type": "text", "text": "hi"}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": "x", "output_tokens": HUGE},
    },
}
ANTHROPIC_STREAM_MESSAGE_NULL = (
    b'event: message_start\ndata: {"type": "message_start", "message": null}\n\n'
    b'event: content_block_start\ndata: {"type": "content_block_start", "index": 0, '
    b'"content_block": {"type": "text", "text": ""}}\n\n'
    b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, '
    b'"delta": {"type": "text_delta", "text": "hi"}}\n\n'
    b'event: message_stop\ndata: {"type": "message_stop"}\n\n'
)

PATHS: dict[str, Callable[[str, bool], dict[str, Any]]] = {
    "/v1/chat/completions": lambda model, stream: {
        "model": model, "messages": HELLO, "stream": stream
    },
    "/v1/messages": lambda model, stream: {
        "model": model, "messages": HELLO, "max_tokens": 5, "stream": stream
    },
    "/api/chat": lambda model, stream: {"model": model, "messages": HELLO, "stream": stream},
    "/v1/responses": lambda model, stream: {"model": model, "input": "hi", "stream": stream},
}  # fmt: skip


def ends_well_or_says_why(path: str, text: str) -> bool:
    """A stream ended with its format's end, or with an error event."""
    if "error" in text:
        return True
    ends = {
        "/v1/chat/completions": "[DONE]",
        "/v1/messages": "message_stop",
        "/api/chat": '"done":true',
        "/v1/responses": "response.completed",
    }
    return ends[path] in text.replace(" ", "")


async def answers(
    tmp_path: Path, provider: str, reply: MockReply, path: str, stream: bool
) -> tuple[int, str]:
    def upstream(request: UpstreamRequest) -> MockReply:
        return reply

    async with in_process_gateway(tmp_path, upstream=upstream) as setup:
        if provider == "anthropic":
            setup.state.engine.router.backends["anthropic"] = HttpProvider(
                "anthropic",
                adapter_for("anthropic"),
                "http://anthropic.test",
                Secret("k"),
                transport=MockTransport(upstream),
            )
        answer = await setup.http.post(path, json=PATHS[path](f"{provider}/m", stream))
        return answer.status_code, answer.text


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("case", list(OPENAI_WHOLE))
async def test_an_openai_answer_with_wrong_types_is_never_a_500(
    tmp_path: Path, path: str, case: str
) -> None:
    reply = MockReply(200, json.dumps(OPENAI_WHOLE[case]).encode())
    status, text = await answers(tmp_path, "openai", reply, path, stream=False)
    assert status in (200, 502), text


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("case", list(OPENAI_STREAMS))
async def test_an_openai_stream_with_wrong_usage_ends_as_a_stream_does(
    tmp_path: Path, path: str, case: str
) -> None:
    reply = MockReply(200, OPENAI_STREAMS[case], {"content-type": "text/event-stream"})
    status, text = await answers(tmp_path, "openai", reply, path, stream=True)
    if status == 502 and path == "/v1/responses":
        # Chat Completions chunks to a relayed Responses stream are garbage before its
        # first event: refused before anything was sent, in the caller's format.
        assert json.loads(text)["error"]["type"] == "upstream_error", text
        return
    assert status == 200, text
    assert ends_well_or_says_why(path, text), text


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("case", list(ANTHROPIC_WHOLE))
async def test_an_anthropic_answer_with_wrong_types_is_never_a_500(
    tmp_path: Path, path: str, case: str
) -> None:
    reply = MockReply(200, json.dumps(ANTHROPIC_WHOLE[case]).encode())
    status, text = await answers(tmp_path, "anthropic", reply, path, stream=False)
    assert status in (200, 502), text


@pytest.mark.parametrize("path", list(PATHS))
async def test_an_anthropic_stream_whose_message_is_null_is_never_a_500(
    tmp_path: Path, path: str
) -> None:
    reply = MockReply(200, ANTHROPIC_STREAM_MESSAGE_NULL, {"content-type": "text/event-stream"})
    status, text = await answers(tmp_path, "anthropic", reply, path, stream=True)
    assert status in (200, 502), text
    assert status == 502 or ends_well_or_says_why(path, text), text
