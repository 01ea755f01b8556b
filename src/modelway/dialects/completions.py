"""OpenAI's legacy Completions API (``POST /v1/completions``) as an inbound dialect.

A prompt becomes one user message, so a chat model answers it; the model sees the prompt
as a question, not as text to continue. Only one prompt and one choice per request.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from modelway.dialects.openai import encode_error_body
from modelway.errors import BadRequest, ModelwayError
from modelway.types import (
    ChatRequest,
    ChatResponse,
    Message,
    MessageEnd,
    MessageStart,
    StopReason,
    StreamEvent,
    TextDelta,
    TextPart,
    Usage,
    UsageReport,
)

#: Completions has no ``tool_calls`` finish reason (a prompt carries no tools).
_FINISH_REASONS: dict[StopReason, str] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "stop",
    "content_filter": "content_filter",
}


class CompletionsDialect:
    """Callers using the legacy Completions API (``client.completions.create``)."""

    name = "completions"
    stream_media_type = "text/event-stream"

    def decode_chat(self, body: Any) -> ChatRequest:
        """The canonical request for a Completions body; ``BadRequest`` names the bad field."""
        return decode_completion_request(body)

    def encode_response(self, response: ChatResponse, request: ChatRequest | None = None) -> bytes:
        """A ``text_completion`` object."""
        body = _completion(
            response.id,
            response.model,
            response.created or int(time.time()),
            response.message.text(),
            _FINISH_REASONS[response.stop_reason],
        )
        if response.usage is not None:
            body["usage"] = completion_usage(response.usage)
        return orjson.dumps(body)

    def stream_encoder(self, request: ChatRequest) -> CompletionChunkEncoder:
        """A fresh encoder for one streamed answer to ``request``."""
        return CompletionChunkEncoder(request.model, include_usage=request.include_usage)

    def encode_error(self, error: ModelwayError) -> bytes:
        """OpenAI's ``{"error": {...}}`` envelope."""
        return encode_error_body(error)


#: Completions fields Chat Completions takes as they are (sent to OpenAI-format providers
#: only, as a chat body's own extras are); dropped, a seeded call would not be one.
_PASSED_ON = ("seed", "presence_penalty", "frequency_penalty", "logit_bias", "service_tier")


def decode_completion_request(body: Any) -> ChatRequest:
    """The canonical request for a parsed ``POST /v1/completions`` body."""
    if not isinstance(body, dict):
        raise BadRequest("body: expected a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("model: required, a non-empty string")
    _refuse(body)
    max_tokens = body.get("max_tokens")
    if max_tokens is not None and (type(max_tokens) is not int or max_tokens < 1):
        raise BadRequest("max_tokens: expected a positive integer")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise BadRequest("stream: expected a boolean")
    options = body.get("stream_options")
    options = {} if options is None else options
    if not isinstance(options, dict):
        raise BadRequest("stream_options: expected an object")
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise BadRequest("user: expected a string")
    # OpenAI defaults max_tokens to 16; the gateway leaves an omitted limit to the provider.
    return ChatRequest(
        model=model,
        messages=[Message(role="user", content=[TextPart(_prompt(body.get("prompt")))])],
        temperature=_number(body, "temperature"),
        top_p=_number(body, "top_p"),
        max_tokens=max_tokens,
        stop=_stop(body.get("stop")),
        stream=stream,
        include_usage=bool(options.get("include_usage")),
        user=user,
        # Chat Completions takes these too: an OpenAI-format provider gets them as sent.
        extra={name: body[name] for name in _PASSED_ON if body.get(name) is not None},
    )


def _refuse(body: dict[str, Any]) -> None:
    """Refuse what a chat model cannot do, rather than answer something else."""
    if body.get("suffix") is not None:
        raise BadRequest("suffix: insertion (fill-in-the-middle) is not supported")
    if body.get("echo"):
        raise BadRequest("echo: echoing the prompt is not supported")
    if body.get("logprobs") is not None:
        raise BadRequest("logprobs: not supported")
    for field in ("n", "best_of"):
        if body.get(field) not in (None, 1):
            raise BadRequest(f"{field}: only one choice per request is supported")


def _prompt(raw: Any) -> str:
    if isinstance(raw, list):
        if len(raw) != 1:
            raise BadRequest("prompt: only one prompt per request is supported")
        raw = raw[0]
        if not isinstance(raw, str):
            raise BadRequest("prompt.0: expected a string (token arrays are not supported)")
    if not isinstance(raw, str) or not raw:
        raise BadRequest("prompt: required, a non-empty string")
    return raw


def _stop(raw: Any) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, str):
        return [raw]
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise BadRequest("stop: expected a string or a list of strings")
    return list(raw)


def _number(body: dict[str, Any], name: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise BadRequest(f"{name}: expected a number")
    return float(value)


def completion_usage(usage: Usage) -> dict[str, Any]:
    """The Completions ``usage`` object."""
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


def _completion(
    completion_id: str, model: str, created: int, text: str, finish_reason: str | None
) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}],
    }


class CompletionChunkEncoder:
    """Canonical stream events as ``text_completion`` server-sent events ending in ``[DONE]``."""

    def __init__(self, model: str, *, include_usage: bool) -> None:
        self._include_usage = include_usage
        self._id = ""
        self._model = model
        self._created = int(time.time())

    def encode(self, event: StreamEvent) -> bytes:
        """The chunk for one canonical event (tool calls have no place here)."""
        if isinstance(event, TextDelta):
            return self._chunk(self._body(event.text, None))
        if isinstance(event, MessageStart):
            self._id, self._model = event.id, event.model or self._model
        elif isinstance(event, MessageEnd):
            return self._chunk(self._body("", _FINISH_REASONS[event.stop_reason]))
        elif isinstance(event, UsageReport) and self._include_usage:
            body = {**self._body("", None), "choices": [], "usage": completion_usage(event.usage)}
            return self._chunk(body)
        return b""

    def finish(self) -> bytes:
        """``data: [DONE]``."""
        return b"data: [DONE]\n\n"

    def error(self, error: ModelwayError) -> bytes:
        """An error envelope as the last data line."""
        return b"data: " + encode_error_body(error) + b"\n\n"

    def _body(self, text: str, finish_reason: str | None) -> dict[str, Any]:
        return _completion(self._id, self._model, self._created, text, finish_reason)

    def _chunk(self, body: dict[str, Any]) -> bytes:
        return b"data: " + orjson.dumps(body) + b"\n\n"
