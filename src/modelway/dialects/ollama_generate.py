"""Ollama's ``/api/generate``: one prompt in, ``response`` text out (NDJSON when streamed)."""

from __future__ import annotations

import time
from typing import Any

import orjson

from modelway.dialects.ollama import (
    DURATIONS,
    OllamaDialect,
    created_at,
    done_reason,
    encode_error_body,
    encode_usage,
    model_load,
)
from modelway.errors import BadRequest, ModelwayError
from modelway.types import (
    ChatRequest,
    ChatResponse,
    MessageEnd,
    MessageStart,
    ReasoningDelta,
    StopReason,
    StreamEvent,
    TextDelta,
    Usage,
    UsageReport,
)

_CHAT = OllamaDialect()
#: Fields of a generate request with no chat counterpart that would change the answer.
_UNSUPPORTED = ("suffix", "raw", "context", "template")


def _as_chat_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    for name in _UNSUPPORTED:
        if body.get(name):
            raise BadRequest(f"{name}: not supported by this gateway's /api/generate")
    prompt = body.get("prompt", "")
    if not isinstance(prompt, str):
        raise BadRequest("prompt: expected a string")
    message: dict[str, Any] = {"role": "user", "content": prompt}
    if body.get("images"):
        message["images"] = body["images"]
    messages: list[dict[str, Any]] = []
    if body.get("system"):
        messages.append({"role": "system", "content": body["system"]})
    messages.append(message)
    keep = ("model", "stream", "options", "format", "keep_alive", "think")
    return {**{k: body[k] for k in keep if k in body}, "messages": messages}


class GenerateStreamEncoder:
    """Canonical events as ``/api/generate`` lines; the last one has ``done: true``."""

    def __init__(self, model: str) -> None:
        self._model = model
        self._stop: StopReason | None = None
        self._usage: Usage | None = None
        self._finished = False

    def _line(self, text: str, **extra: Any) -> bytes:
        line = {"model": self._model, "created_at": created_at(time.time()), "response": text}
        return orjson.dumps({**line, **extra}) + b"\n"

    def encode(self, event: StreamEvent) -> bytes:
        if isinstance(event, TextDelta):
            return self._line(event.text, done=False)
        if isinstance(event, ReasoningDelta):
            # Thinking goes in ``thinking``, as /api/chat's does; Ollama has no signatures.
            return self._line("", thinking=event.text, done=False) if event.text else b""
        if isinstance(event, MessageStart):
            self._model = event.model or self._model
        elif isinstance(event, MessageEnd):
            self._stop = event.stop_reason
        elif isinstance(event, UsageReport):
            self._usage = event.usage  # the last one counts: the done line ends the stream
        return b""

    def finish(self) -> bytes:
        if self._finished:
            return b""
        self._finished = True
        return self._line(
            "",
            done=True,
            done_reason=done_reason(self._stop),
            **DURATIONS,
            **encode_usage(self._usage),
        )

    def error(self, error: ModelwayError) -> bytes:
        return encode_error_body(error) + b"\n"


class OllamaGenerateDialect:
    """Callers of Ollama's ``/api/generate``."""

    # Not "ollama": a generate call is never relayed to an upstream /api/chat.
    name = "ollama-generate"
    stream_media_type = "application/x-ndjson"

    def decode_chat(self, body: Any) -> ChatRequest:
        return _CHAT.decode_chat(_as_chat_body(body))

    def model_load(self, body: dict[str, Any]) -> bytes | None:
        return model_load(body, generate=True)

    def encode_response(self, response: ChatResponse, request: ChatRequest | None = None) -> bytes:
        thinking = response.message.reasoning
        return orjson.dumps(
            {
                "model": response.model,
                "created_at": created_at(time.time()),
                "response": response.message.text(),
                **({"thinking": thinking} if thinking else {}),
                "done": True,
                "done_reason": done_reason(response.stop_reason),
                **DURATIONS,
                **encode_usage(response.usage),
            }
        )

    def stream_encoder(self, request: ChatRequest) -> GenerateStreamEncoder:
        return GenerateStreamEncoder(request.model)

    def encode_error(self, error: ModelwayError) -> bytes:
        return encode_error_body(error)
