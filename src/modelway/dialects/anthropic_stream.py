"""Anthropic Messages API answers: the ``message`` object and its SSE event sequence.

A stream is ``message_start`` (then a ``ping``), per content block ``content_block_start``
… deltas … ``content_block_stop`` — a thinking block first when the model showed its
thinking, then text and ``tool_use`` blocks — then ``message_delta`` (stop reason and
usage) and ``message_stop``; errors after the start are an ``error`` event.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from modelway.errors import ModelwayError, UpstreamStatusError
from modelway.providers.anthropic import ERROR_STATUSES, REDACTED
from modelway.reasoning import signature_for
from modelway.types import (
    ChatResponse,
    Message,
    MessageEnd,
    MessageStart,
    ReasoningDelta,
    StopReason,
    StreamEvent,
    TextDelta,
    TextPart,
    ToolCall,
    ToolCallDelta,
    ToolCallStart,
    Usage,
    UsageReport,
)

#: Canonical stop reasons in Anthropic's words.
ANTHROPIC_STOP_REASONS: dict[StopReason, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}

_ERROR_TYPES = {status: kind for kind, status in ERROR_STATUSES.items()}


def message_object(response: ChatResponse) -> dict[str, Any]:
    """The Messages API ``message`` object for a complete answer."""
    message = response.message
    content = _thinking_blocks(message.reasoning, message.reasoning_signature)
    content.extend(
        {"type": "text", "text": part.text}
        for part in response.message.content
        if isinstance(part, TextPart)
    )
    content.extend(
        {"type": "tool_use", "id": call.id, "name": call.name, "input": _arguments(call)}
        for call in response.message.tool_calls
    )
    return {
        "id": _message_id(response.id),
        "type": "message",
        "role": "assistant",
        "model": response.model,
        "content": content,
        "stop_reason": _stop_reason(response.stop_reason, bool(response.message.tool_calls)),
        "stop_sequence": None,
        "usage": _usage(response.usage),
    }


def _thinking_blocks(reasoning: str | None, signature: str | None) -> list[dict[str, Any]]:
    """The thinking (or redacted thinking) block for a turn's reasoning, if it has any."""
    redacted = signature_for(REDACTED, signature)
    if redacted is not None:
        return [{"type": "redacted_thinking", "data": redacted}]
    if reasoning is None and signature is None:
        return []
    return [{"type": "thinking", "thinking": reasoning or "", "signature": _signed(signature)}]


def _signed(signature: str | None) -> str:
    """A signature as callers see it: Anthropic's own as Anthropic wrote it, others opaque."""
    if signature is None:
        return ""
    own = signature_for("anthropic", signature)
    return own if own is not None else signature


def error_object(error: ModelwayError) -> dict[str, Any]:
    """Anthropic's error body for ``error``."""
    return {"type": "error", "error": {"type": error_type(error), "message": error.message}}


def error_type(error: ModelwayError) -> str:
    """Anthropic's ``error.type`` for ``error``, chosen by its status."""
    if isinstance(error, UpstreamStatusError) and error.upstream_status in (503, 529):
        return "overloaded_error"
    kind = _ERROR_TYPES.get(error.status)
    if kind is None or kind == "overloaded_error":
        return "invalid_request_error" if 400 <= error.status < 500 else "api_error"
    return kind


def _arguments(call: ToolCall) -> Any:
    try:
        return orjson.loads(call.arguments or "{}")
    except orjson.JSONDecodeError:
        # Anthropic's input must be an object; arguments cut off mid-JSON (max_tokens) are not.
        return {}


def _stop_reason(reason: StopReason, has_tool_calls: bool) -> str:
    # Claude clients run tools only on stop_reason "tool_use"; some upstreams say "stop".
    if has_tool_calls and reason == "stop":
        return "tool_use"
    return ANTHROPIC_STOP_REASONS[reason]


def _usage(usage: Usage | None) -> dict[str, Any]:
    # Anthropic's input_tokens leaves out the cache reads and writes the canonical count holds.
    usage = usage or Usage()
    uncached = usage.prompt_tokens - usage.cached_tokens - usage.cache_write_tokens
    hour = min(usage.cache_write_1h_tokens, usage.cache_write_tokens)
    return {
        "input_tokens": max(0, uncached),
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": usage.cache_write_tokens - hour,
            "ephemeral_1h_input_tokens": hour,
        },
        "output_tokens": usage.completion_tokens,
    }


def _message_id(response_id: str) -> str:
    if response_id.startswith("msg_"):
        return response_id
    return "msg_" + (response_id or uuid.uuid4().hex)


def _sse(data: dict[str, Any]) -> bytes:
    # Anthropic names every SSE event after its data's "type".
    return b"event: " + str(data["type"]).encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


_PING = _sse({"type": "ping"})


class AnthropicStreamEncoder:
    """Encodes canonical stream events as the Messages API's SSE event sequence."""

    def __init__(self, model: str) -> None:
        self._model = model
        self._started = False
        self._done = False
        self._blocks = 0  # content blocks opened so far
        self._open_kind: str | None = None  # "text" or "tool_use" while a block is open
        self._tool_blocks: dict[int, int] = {}  # tool call index -> content block index
        self._open_tool: int | None = None  # the tool call whose block is open
        # Calls begun while another call's block is open: id, name and arguments so far.
        # Anthropic's blocks never overlap, and an OpenAI-format upstream may interleave
        # parallel calls' argument deltas; these are sent whole once the open block closes.
        self._held: dict[int, tuple[str, str, list[str]]] = {}
        self._stop: StopReason | None = None
        self._usage: Usage | None = None

    def encode(self, event: StreamEvent) -> bytes:
        """The SSE events for one canonical event (empty while the message_delta waits)."""
        if self._done:
            return b""
        if isinstance(event, MessageStart):
            return self._start(event.id, event.model or self._model)
        out = b"" if self._started else self._start("", self._model)
        if isinstance(event, ReasoningDelta):
            out += self._reasoning(event)
        elif isinstance(event, TextDelta):
            if self._open_kind != "text":
                out += self._open({"type": "text", "text": ""}, "text")
            delta = {"type": "text_delta", "text": event.text}
            out += self._delta(self._blocks - 1, delta)
        elif isinstance(event, ToolCallStart):
            if self._open_kind == "tool_use" and self._open_tool != event.index:
                self._held[event.index] = (event.id, event.name, [])
            else:
                block = {"type": "tool_use", "id": event.id, "name": event.name, "input": {}}
                out += self._open(block, "tool_use")
                self._tool_blocks[event.index] = self._blocks - 1
                self._open_tool = event.index
        elif isinstance(event, ToolCallDelta):
            held = self._held.get(event.index)
            if held is not None:
                held[2].append(event.arguments)
            else:
                # The open block's, or (text came between) a closed one's: clients index
                # the pieces by block, so it still names that call's block.
                index = self._tool_blocks.get(event.index)
                if index is not None:
                    delta = {"type": "input_json_delta", "partial_json": event.arguments}
                    out += self._delta(index, delta)
        elif isinstance(event, MessageEnd):
            out += self._close()
            self._stop = event.stop_reason
            if self._usage is not None:
                out += self._end()
        elif isinstance(event, UsageReport):
            # Anthropic puts usage in message_delta, so that event waits for the usage.
            self._usage = event.usage
            if self._stop is not None:
                out += self._end()
        return out

    def finish(self) -> bytes:
        """The held ``message_delta`` (if usage never came) and ``message_stop``."""
        if self._done:
            return b""
        out = b"" if self._started else self._start("", self._model)
        return out + self._close() + self._end()

    def error(self, error: ModelwayError) -> bytes:
        """An ``error`` event, Anthropic's way to fail a stream that already began."""
        self._done = True
        return _sse(error_object(error))

    def _start(self, message_id: str, model: str) -> bytes:
        self._started = True
        empty = ChatResponse(id=message_id, model=model, message=Message(role="assistant"))
        message = {**message_object(empty), "stop_reason": None}
        # Anthropic follows message_start with a ping; clients expect and skip it.
        return _sse({"type": "message_start", "message": message}) + _PING

    def _reasoning(self, event: ReasoningDelta) -> bytes:
        if signature_for(REDACTED, event.signature) is not None:
            (block,) = _thinking_blocks(None, event.signature)
            return self._open(block, "redacted_thinking") + self._close()
        out = b""
        if self._open_kind != "thinking":
            out += self._open({"type": "thinking", "thinking": "", "signature": ""}, "thinking")
        if event.text:
            out += self._delta(self._blocks - 1, {"type": "thinking_delta", "thinking": event.text})
        if event.signature is not None:
            delta = {"type": "signature_delta", "signature": _signed(event.signature)}
            out += self._delta(self._blocks - 1, delta)
        return out

    def _open(self, block: dict[str, Any], kind: str) -> bytes:
        out = self._close()
        start = {"type": "content_block_start", "index": self._blocks, "content_block": block}
        self._blocks += 1
        self._open_kind = kind
        return out + _sse(start)

    def _delta(self, index: int, delta: dict[str, Any]) -> bytes:
        return _sse({"type": "content_block_delta", "index": index, "delta": delta})

    def _close(self) -> bytes:
        if self._open_kind is None:
            return b""
        self._open_kind = None
        self._open_tool = None
        out = _sse({"type": "content_block_stop", "index": self._blocks - 1})
        held, self._held = self._held, {}
        for call_index, (call_id, name, arguments) in held.items():
            block = {"type": "tool_use", "id": call_id, "name": name, "input": {}}
            out += _sse(
                {"type": "content_block_start", "index": self._blocks, "content_block": block}
            )
            self._tool_blocks[call_index] = self._blocks
            if arguments:
                delta = {"type": "input_json_delta", "partial_json": "".join(arguments)}
                out += self._delta(self._blocks, delta)
            out += _sse({"type": "content_block_stop", "index": self._blocks})
            self._blocks += 1
        return out

    def _end(self) -> bytes:
        self._done = True
        delta = {
            "stop_reason": _stop_reason(self._stop or "stop", bool(self._tool_blocks)),
            "stop_sequence": None,
        }
        usage = _usage(self._usage)
        end = {"type": "message_delta", "delta": delta, "usage": usage}
        return _sse(end) + _sse({"type": "message_stop"})
