"""Anthropic Messages API answers, whole and streamed, in canonical terms.

The provider's request side is ``providers.anthropic``; this module reads what comes
back: a ``message`` (``parse_message``), its SSE events (``AnthropicStreamDecoder``), its
usage and its errors.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from modelway.errors import (
    EmptyResponse,
    StreamTruncated,
    UndecodableResponse,
    UpstreamStatusError,
)
from modelway.providers.base import STRUCTURED_OUTPUT_TOOL, token_count
from modelway.reasoning import tagged
from modelway.streams import ServerSentEvent, SSEDecoder
from modelway.types import (
    ChatResponse,
    Message,
    MessageEnd,
    MessageStart,
    Part,
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

PROVIDER = "anthropic"
#: The wire tag of a redacted thinking block's ``data`` in ``Message.reasoning_signature``.
REDACTED = "anthropic-redacted"

#: Anthropic's ``stop_reason`` in canonical terms.
STOP_REASONS: dict[str, StopReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

#: The HTTP status Anthropic documents for each ``error.type``; a stream's ``error``
#: event carries only the type, so the status is recovered from it.
ERROR_STATUSES: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


# --- response parsing ----------------------------------------------------------------


def load_object(body: bytes) -> dict[str, Any]:
    if not body.strip():
        raise EmptyResponse("anthropic answered with an empty body", provider=PROVIDER)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise undecodable("anthropic answered with a body that is not JSON", body) from exc
    if not isinstance(data, dict):
        raise undecodable("anthropic answered with JSON that is not an object", body)
    return data


def undecodable(message: str, raw: bytes | str) -> UndecodableResponse:
    text = raw if isinstance(raw, str) else raw.decode(errors="replace")
    return UndecodableResponse(message, raw=text, provider=PROVIDER)


def parse_message(data: dict[str, Any]) -> ChatResponse:
    parts: list[Part] = []
    calls: list[ToolCall] = []
    thoughts: list[str] = []
    signature: str | None = None
    for block in data["content"]:
        kind = block["type"]
        if kind in ("thinking", "text") and not isinstance(block.get(kind) or "", str):
            raise undecodable(f"a {kind} block's {kind} is not text", orjson.dumps(data))
        if kind == "thinking":
            thoughts.append(block.get("thinking") or "")
            if block.get("signature"):
                signature = signature or tagged(PROVIDER, block["signature"])
        elif kind == "redacted_thinking" and block.get("data"):
            signature = signature or tagged(REDACTED, block["data"])
        elif kind == "text":
            parts.append(TextPart(block.get("text") or ""))
        elif kind == "tool_use" and block["name"] == STRUCTURED_OUTPUT_TOOL:
            parts.append(TextPart(orjson.dumps(block.get("input") or {}).decode()))
        elif kind == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            calls.append(ToolCall(id=block["id"], name=block["name"], arguments=arguments))
        # server-tool blocks have no canonical form and are left out.
    usage = data.get("usage")
    stop = STOP_REASONS.get(data.get("stop_reason") or "", "stop")
    if stop == "tool_calls" and not calls and _calls_output_tool(data["content"]):
        stop = "stop"  # the only call was the structured-output tool: the answer is its text
    return ChatResponse(
        id=data.get("id") or "",
        model=data.get("model") or "",
        message=Message(
            role="assistant",
            content=parts,
            tool_calls=calls,
            reasoning="".join(thoughts) if thoughts else None,
            reasoning_signature=signature,
        ),
        stop_reason=stop,
        usage=parse_usage(usage) if isinstance(usage, dict) else None,
        created=int(time.time()),
    )


def _calls_output_tool(blocks: list[dict[str, Any]]) -> bool:
    return any(b["type"] == "tool_use" and b["name"] == STRUCTURED_OUTPUT_TOOL for b in blocks)


def parse_usage(usage: dict[str, Any]) -> Usage:
    """Canonical usage; Anthropic's ``input_tokens`` excludes cache reads and writes,
    the canonical ``prompt_tokens`` includes both. ``output_tokens`` includes thinking,
    counted apart in ``output_tokens_details.thinking_tokens`` when Anthropic reports it.
    ``cache_creation.ephemeral_1h_input_tokens`` says how many of the writes were for an
    hour (priced higher: ``pricing.priced_cost``)."""
    cached = token_count(usage.get("cache_read_input_tokens"))
    written = token_count(usage.get("cache_creation_input_tokens"))
    creation = usage.get("cache_creation")
    hour = creation.get("ephemeral_1h_input_tokens") if isinstance(creation, dict) else None
    output = usage.get("output_tokens_details")
    thinking = output.get("thinking_tokens") if isinstance(output, dict) else None
    return Usage(
        prompt_tokens=token_count(usage.get("input_tokens")) + cached + written,
        completion_tokens=token_count(usage.get("output_tokens")),
        cached_tokens=cached,
        cache_write_tokens=written,
        reasoning_tokens=token_count(thinking),
        cache_write_1h_tokens=min(token_count(hour), written),
    )


def upstream_error(data: Any, raw: bytes) -> UpstreamStatusError:
    """The error an Anthropic error object describes, with the status its type implies."""
    error = data.get("error") if isinstance(data, dict) else None
    error = error if isinstance(error, dict) else {}
    kind = str(error.get("type") or "api_error")
    message = str(error.get("message") or "no message")
    return UpstreamStatusError(
        f"anthropic {kind}: {message}",
        upstream_status=ERROR_STATUSES.get(kind, 500),
        body=raw,
        provider=PROVIDER,
    )


# --- streaming -----------------------------------------------------------------------


class AnthropicStreamDecoder:
    """Turns Messages API SSE bytes into canonical stream events."""

    def __init__(self) -> None:
        self._sse = SSEDecoder()
        self._input_usage: dict[str, Any] = {}
        # Content block index -> tool call index: text blocks share the block numbering.
        self._tool_index: dict[int, int] = {}
        # Content blocks calling the structured-output tool; their input is answer text.
        self._output_blocks: set[int] = set()
        self._finished = False

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        """Events completed by this chunk."""
        return self._decode_all(self._sse.feed(chunk))

    def close(self) -> list[StreamEvent]:
        """Events left at the end; ``StreamTruncated`` if ``message_stop`` never came."""
        truncated = StreamTruncated(
            "the anthropic stream was cut off before its end", provider=PROVIDER
        )
        try:
            events = self._decode_all(self._sse.close())
        except UndecodableResponse as exc:
            # A half-received last event is the stream being cut off, not a corrupt one.
            if self._finished:
                raise
            raise truncated from exc
        if not self._finished:
            raise truncated
        return events

    def _decode_all(self, items: list[ServerSentEvent]) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        for item in items:
            if item.event != "ping":
                events.extend(self._decode(item))
        return events

    def _decode(self, item: ServerSentEvent) -> list[StreamEvent]:
        try:
            data = orjson.loads(item.data)
        except orjson.JSONDecodeError as exc:
            raise undecodable(
                f"anthropic stream event {item.event!r} is not JSON", item.data
            ) from exc
        kind = data.get("type", item.event) if isinstance(data, dict) else None
        if kind == "error":
            raise upstream_error(data, item.data.encode())
        try:
            return self._event(kind, data)
        except (KeyError, TypeError, AttributeError) as exc:
            message = f"anthropic stream event {item.event!r} has an unexpected shape"
            raise undecodable(message, item.data) from exc

    def _event(self, kind: Any, data: Any) -> list[StreamEvent]:
        if kind == "message_start":
            message = data["message"]
            self._input_usage = message.get("usage") or {}
            return [MessageStart(id=message["id"], model=message["model"])]
        if kind == "content_block_start":
            return self._block_start(data["index"], data["content_block"])
        if kind == "content_block_delta":
            delta = data["delta"]
            if delta["type"] == "text_delta" and delta["text"]:
                return [TextDelta(delta["text"])]
            if delta["type"] == "input_json_delta" and data["index"] in self._output_blocks:
                return [TextDelta(delta["partial_json"])] if delta["partial_json"] else []
            if delta["type"] == "input_json_delta" and delta["partial_json"]:
                return [ToolCallDelta(self._tool_index[data["index"]], delta["partial_json"])]
            if delta["type"] == "thinking_delta" and delta["thinking"]:
                return [ReasoningDelta(delta["thinking"])]
            if delta["type"] == "signature_delta" and delta["signature"]:
                return [ReasoningDelta(signature=tagged(PROVIDER, delta["signature"]))]
            return []  # citation deltas have no canonical form
        if kind == "message_delta":
            # message_delta usage is cumulative and may repeat or update the input counts.
            late = {k: v for k, v in (data.get("usage") or {}).items() if v is not None}
            stop = STOP_REASONS.get(data["delta"].get("stop_reason") or "", "stop")
            if stop == "tool_calls" and self._output_blocks and not self._tool_index:
                stop = "stop"  # only the structured-output tool was called
            return [MessageEnd(stop), UsageReport(parse_usage({**self._input_usage, **late}))]
        if kind == "message_stop":
            self._finished = True
        elif not isinstance(data, dict):
            raise TypeError("stream event data is not an object")
        return []  # content_block_stop, and event types added after this was written

    def _block_start(self, index: int, block: dict[str, Any]) -> list[StreamEvent]:
        if block["type"] == "text" and block.get("text"):
            return [TextDelta(block["text"])]
        if block["type"] == "thinking" and (block.get("thinking") or block.get("signature")):
            signature = block.get("signature")
            return [
                ReasoningDelta(
                    block.get("thinking") or "", signature and tagged(PROVIDER, signature)
                )
            ]
        if block["type"] == "redacted_thinking" and block.get("data"):
            return [ReasoningDelta(signature=tagged(REDACTED, block["data"]))]
        if block["type"] != "tool_use":
            return []
        if block["name"] == STRUCTURED_OUTPUT_TOOL:
            self._output_blocks.add(index)
            return [TextDelta(orjson.dumps(block["input"]).decode())] if block.get("input") else []
        call = len(self._tool_index)
        self._tool_index[index] = call
        events: list[StreamEvent] = [ToolCallStart(index=call, id=block["id"], name=block["name"])]
        if block.get("input"):
            events.append(ToolCallDelta(call, orjson.dumps(block["input"]).decode()))
        return events
