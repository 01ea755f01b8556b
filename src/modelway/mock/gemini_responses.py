"""Canonical answers as Gemini ``GenerateContentResponse`` bodies, SSE chunks and errors."""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from modelway.errors import ModelwayError
from modelway.reasoning import signature_for
from modelway.types import (
    ChatResponse,
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

#: Canonical stop reasons in Gemini's words; Gemini ends function calls with STOP.
GEMINI_FINISH_REASONS: dict[StopReason, str] = {
    "stop": "STOP",
    "length": "MAX_TOKENS",
    "tool_calls": "STOP",
    "content_filter": "SAFETY",
}
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def response_object(response: ChatResponse) -> dict[str, Any]:
    """The ``GenerateContentResponse`` for a complete answer."""
    message = response.message
    parts = _thought_parts(message.reasoning or "", message.reasoning_signature)
    parts += [{"text": p.text} for p in message.content if isinstance(p, TextPart)]
    parts += [_function_call(call) for call in message.tool_calls]
    chunk = _chunk(response.id, response.model, parts)
    chunk["candidates"][0]["finishReason"] = GEMINI_FINISH_REASONS[response.stop_reason]
    chunk["usageMetadata"] = usage_metadata(response.usage or Usage())
    return chunk


def error_object(error: ModelwayError) -> dict[str, Any]:
    """Google's error body for ``error``: the HTTP status and its ``google.rpc.Code`` name."""
    status = error.status
    name = _STATUS_NAMES.get(status) or ("INVALID_ARGUMENT" if status < 500 else "INTERNAL")
    return {"error": {"code": status, "message": error.message, "status": name}}


def usage_metadata(usage: Usage) -> dict[str, int]:
    """Gemini's ``usageMetadata``; its ``promptTokenCount`` includes cached tokens too."""
    metadata = {
        "promptTokenCount": usage.prompt_tokens,
        # Gemini counts thinking apart from the answer's tokens.
        "candidatesTokenCount": usage.completion_tokens - usage.reasoning_tokens,
        "totalTokenCount": usage.total_tokens,
    }
    if usage.reasoning_tokens:
        metadata["thoughtsTokenCount"] = usage.reasoning_tokens
    if usage.cached_tokens:
        metadata["cachedContentTokenCount"] = usage.cached_tokens
    return metadata


def _function_call(call: ToolCall) -> dict[str, Any]:
    try:
        args = orjson.loads(call.arguments or "{}")
    except orjson.JSONDecodeError:
        args = {}  # arguments cut off mid-JSON (max tokens) are not an object
    if not isinstance(args, dict):
        args = {}
    return {"functionCall": {"id": call.id, "name": call.name, "args": args}}


def _thought_parts(text: str, signature: str | None) -> list[dict[str, Any]]:
    """Thinking as Gemini shows it: a ``thought`` part, signed with ``thoughtSignature``."""
    if not text and signature is None:
        return []
    part: dict[str, Any] = {"thought": True, "text": text}
    own = signature_for("gemini", signature)
    if own is not None:
        part["thoughtSignature"] = own
    return [part]


def _chunk(response_id: str, model: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "candidates": [{"content": {"role": "model", "parts": parts}, "index": 0}],
        "modelVersion": model,
        "responseId": response_id or uuid.uuid4().hex,
    }


def _sse(data: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


class GeminiStreamEncoder:
    """Encodes canonical stream events as ``streamGenerateContent?alt=sse`` chunks.

    Gemini sends each function call whole, so a call's argument pieces are held until
    the call is complete; the final chunk (finishReason and usage) waits for the usage.
    """

    def __init__(self, model: str) -> None:
        self._model = model
        self._id = uuid.uuid4().hex
        self._calls: dict[int, ToolCall] = {}  # started, not yet sent
        self._stop: StopReason | None = None
        self._usage: Usage | None = None
        self._done = False

    def encode(self, event: StreamEvent) -> bytes:
        """The chunks for one canonical event (empty while a call or the end is held)."""
        if self._done:
            return b""
        if isinstance(event, MessageStart):
            self._id, self._model = event.id or self._id, event.model or self._model
            return b""
        if isinstance(event, ToolCallStart):
            # Calls in a row go out together, as Gemini sends parallel calls.
            self._calls[event.index] = ToolCall(id=event.id, name=event.name, arguments="")
            return b""
        if isinstance(event, ToolCallDelta):
            call = self._calls.get(event.index)
            if call is not None:
                call.arguments += event.arguments
            return b""
        out = self._flush_calls()
        if isinstance(event, ReasoningDelta):
            parts = _thought_parts(event.text, event.signature)
            out += _sse(_chunk(self._id, self._model, parts)) if parts else b""
        elif isinstance(event, TextDelta):
            out += _sse(_chunk(self._id, self._model, [{"text": event.text}]))
        elif isinstance(event, MessageEnd):
            self._stop = event.stop_reason
            if self._usage is not None:
                out += self._end()
        elif isinstance(event, UsageReport):
            self._usage = event.usage
            if self._stop is not None:
                out += self._end()
        return out

    def finish(self) -> bytes:
        """Held function calls and the final chunk, if usage never came."""
        if self._done:
            return b""
        return self._flush_calls() + self._end()

    def error(self, error: ModelwayError) -> bytes:
        """An ``{"error": ...}`` chunk, how Gemini fails a stream that already began."""
        self._done = True
        return _sse(error_object(error))

    def _flush_calls(self) -> bytes:
        if not self._calls:
            return b""
        parts = [_function_call(call) for _, call in sorted(self._calls.items())]
        self._calls.clear()
        return _sse(_chunk(self._id, self._model, parts))

    def _end(self) -> bytes:
        self._done = True
        chunk = _chunk(self._id, self._model, [])
        chunk["candidates"][0]["finishReason"] = GEMINI_FINISH_REASONS[self._stop or "stop"]
        chunk["usageMetadata"] = usage_metadata(self._usage or Usage())
        return _sse(chunk)
