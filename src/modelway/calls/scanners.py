"""Stream scanners for the same-dialect relay, one per wire format.

A scanner passes the upstream's stream on event by event without re-encoding it,
checks each event is JSON, reads usage, and knows the wire's finish marker: a stream
that ends without it raises ``StreamTruncated``; the relay then ends the caller's
stream with an error event in the same format. From the events it parses anyway it
adds up the size of the answer's text (``text_size``), which the completion tokens are
estimated from when the stream ends without usage (``modelway.tokens``).
"""

from __future__ import annotations

from typing import Any, Protocol

import msgspec
import orjson

from modelway.dialects.anthropic_stream import error_object
from modelway.dialects.ollama import encode_error_body as ollama_error_body
from modelway.dialects.openai import encode_error_body as openai_error_body
from modelway.errors import ModelwayError, StreamTruncated, UndecodableResponse
from modelway.providers import anthropic, ollama, openai
from modelway.streams import NDJSONDecoder, ServerSentEvent, SSEDecoder
from modelway.tokens import BYTES_PER_TOKEN, text_size, utf8_size
from modelway.types import Usage

_DONE = b"data: [DONE]\n\n"


class StreamScanner(Protocol):
    """Relays one upstream stream of a given wire format."""

    @property
    def usage(self) -> Usage | None:
        """What the upstream reported so far (a stream cut short: with what it wrote)."""
        ...

    #: How the answer ended, as the upstream said (``stop``, ``end_turn``, ...), once known.
    finish_reason: str | None
    #: UTF-8 bytes of the answer's text so far: content, reasoning, tool names and
    #: arguments (``tokens.text_size`` of each delta), never the events around them.
    text_size: int

    def feed(self, chunk: bytes) -> bytes:
        """The bytes to pass on for this upstream chunk."""
        ...

    def close(self) -> bytes:
        """Bytes left at the end; ``StreamTruncated`` if the finish marker never came."""
        ...

    def error(self, error: ModelwayError) -> bytes:
        """A final error event in this wire format."""
        ...


def _json(data: str | bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        raw = data if isinstance(data, str) else data.decode("utf-8", "replace")
        raise UndecodableResponse(
            "the upstream sent a stream chunk that is not JSON", raw=raw
        ) from None


def _sse(event: ServerSentEvent) -> bytes:
    # Data that came on several ``data:`` lines goes out on as many.
    data = b"data: " + event.data.encode().replace(b"\n", b"\ndata: ") + b"\n\n"
    return data if event.event == "message" else f"event: {event.event}\n".encode() + data


class OpenAIScanner:
    """Chat Completions chunks; ``[DONE]`` ends them. Drops the usage-only chunk unless asked."""

    def __init__(self, caller_wants_usage: bool) -> None:
        self._sse = SSEDecoder()
        self._wants_usage = caller_wants_usage
        self.done = False
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.text_size = 0

    def feed(self, chunk: bytes) -> bytes:
        # The common case, whole ``data: <json>`` events with nothing buffered, is checked
        # and passed on as the upstream's own bytes: no text decoding, no re-encoding.
        if chunk.endswith(b"\n\n") and b"\r" not in chunk and self._sse.between_events:
            if chunk.startswith(b"data: ") and chunk.find(b"\n") == len(chunk) - 2:
                self._sse.skipped()  # one event, as most reads bring
                return chunk if self._passes(chunk[6:-2]) else b""
            frames = chunk[:-2].split(b"\n\n")
            if all(frame.startswith(b"data: ") and b"\n" not in frame for frame in frames):
                self._sse.skipped()
                return self._relay_frames(chunk, frames)
        return self._relay(self._sse.feed(chunk))

    def close(self) -> bytes:
        out = self._relay(self._sse.close())
        if not self.done:
            raise StreamTruncated("the upstream stream ended before [DONE]")
        return out

    def error(self, error: ModelwayError) -> bytes:
        return b"data: " + openai_error_body(error) + b"\n\n"

    def _relay(self, events: list[ServerSentEvent]) -> bytes:
        out: list[bytes] = []
        for event in events:
            if self._passes(event.data):
                out.append(_DONE if event.data == "[DONE]" else _sse(event))
        return b"".join(out)

    def _relay_frames(self, chunk: bytes, frames: list[bytes]) -> bytes:
        kept = [frame for frame in frames if self._passes(frame[6:])]
        if len(kept) == len(frames):
            return chunk
        return b"".join(frame + b"\n\n" for frame in kept)

    def _passes(self, data: str | bytes) -> bool:
        """Whether a chunk goes on to the caller (``[DONE]`` does, and ends the stream);
        reads its usage (it must be JSON)."""
        if data == b"[DONE]" or data == "[DONE]":
            self.done = True
            return True
        parsed = _json(data)
        if type(parsed) is not dict:
            return True
        choices = parsed.get("choices")
        if choices and type(choices) is list and type(choices[0]) is dict:
            choice = choices[0]  # one choice a chunk, even with ``n`` > 1
            delta = choice.get("delta")
            if type(delta) is dict:
                content = delta.get("content")
                if type(content) is str and len(delta) == 1:  # most chunks: a piece of text
                    self.text_size += utf8_size(content)
                elif delta:  # reasoning, tool calls, the role
                    self.text_size += text_size(delta)
            reason = choice.get("finish_reason")
            if type(reason) is str:
                self.finish_reason = reason
        usage = parsed.get("usage")
        if usage:
            self.usage = openai.parse_usage(usage)
            if not self._wants_usage and not choices:
                return False  # the usage-only chunk the caller did not ask for
        return True


class AnthropicScanner:
    """Messages API events; ``message_stop`` ends them. Usage from start and delta events."""

    def __init__(self) -> None:
        self._sse = SSEDecoder()
        self.done = False
        self._usage: Usage | None = None
        self._output_counted = False  # message_delta's output count came
        self.finish_reason: str | None = None
        self.text_size = 0
        self._reported: dict[str, Any] = {}  # input counts at the start, output at the end

    @property
    def usage(self) -> Usage | None:
        """The reported usage; before ``message_delta`` (a stream cut short) its output is
        what was written, estimated: ``message_start`` counts one or two tokens of it."""
        usage = self._usage
        if usage is None or self._output_counted:
            return usage
        written = self.text_size // BYTES_PER_TOKEN
        if written <= usage.completion_tokens:
            return usage
        return msgspec.structs.replace(usage, completion_tokens=written, estimated=True)

    def feed(self, chunk: bytes) -> bytes:
        return self._relay(self._sse.feed(chunk))

    def close(self) -> bytes:
        out = self._relay(self._sse.close())
        if not self.done:
            raise StreamTruncated("the upstream stream ended before message_stop")
        return out

    def error(self, error: ModelwayError) -> bytes:
        return b"event: error\ndata: " + orjson.dumps(error_object(error)) + b"\n\n"

    def _relay(self, events: list[ServerSentEvent]) -> bytes:
        out: list[bytes] = []
        for event in events:
            parsed = _json(event.data)
            kind = parsed.get("type") if isinstance(parsed, dict) else None
            if kind == "content_block_delta":
                delta = parsed.get("delta")
                text = delta.get("text") if type(delta) is dict else None
                # Most are text; the others thinking, a tool's input JSON, a signature.
                self.text_size += utf8_size(text) if type(text) is str else text_size(delta)
            elif kind == "message_start":
                message = parsed.get("message")
                self._count(message.get("usage") if type(message) is dict else None)
            elif kind == "message_delta":
                usage = parsed.get("usage")
                self._count(usage)
                self._output_counted |= type(usage) is dict and "output_tokens" in usage
                reason = _field(parsed.get("delta"), "stop_reason")
                if reason is not None:
                    self.finish_reason = reason
            elif kind in ("message_stop", "error"):
                self.done = True
            out.append(_sse(event))
        return b"".join(out)

    def _count(self, raw: Any) -> None:
        if isinstance(raw, dict):
            self._reported.update((k, v) for k, v in raw.items() if v is not None)
            self._usage = anthropic.parse_usage(self._reported)


#: The Responses API events that end a stream; each carries the final ``response``.
_RESPONSES_ENDS = frozenset({"response.completed", "response.incomplete", "response.failed"})
#: The Responses API events whose ``delta`` is a piece of text the model wrote (not
#: ``response.audio.delta``: base64 audio).
_RESPONSES_TEXT_DELTAS = frozenset(
    {
        "response.output_text.delta",
        "response.refusal.delta",
        "response.reasoning_text.delta",
        "response.reasoning_summary_text.delta",
        "response.function_call_arguments.delta",
        "response.custom_tool_call_input.delta",
        "response.mcp_call_arguments.delta",
        "response.code_interpreter_call_code.delta",
        "response.audio.transcript.delta",
    }
)


class ResponsesScanner:
    """Responses API events; ``response.completed`` (``.incomplete``, ``.failed``) ends them.

    Usage is the final event's ``response.usage``.
    """

    def __init__(self) -> None:
        self._sse = SSEDecoder()
        self.done = False
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.text_size = 0
        self._sequence = -1  # the last ``sequence_number`` passed on
        #: The response's id, from the first event that carries the response object.
        self.response_id: str | None = None

    def feed(self, chunk: bytes) -> bytes:
        return self._relay(self._sse.feed(chunk))

    def close(self) -> bytes:
        out = self._relay(self._sse.close())
        if not self.done:
            raise StreamTruncated("the upstream stream ended before response.completed")
        return out

    def error(self, error: ModelwayError) -> bytes:
        # The API's own stream error event; the caller saw no final ``response`` object.
        event = {
            "type": "error",
            "code": error.code or error.kind,
            "message": error.message,
            "param": error.param,
            "sequence_number": self._sequence + 1,
        }
        return b"event: error\ndata: " + orjson.dumps(event) + b"\n\n"

    def _relay(self, events: list[ServerSentEvent]) -> bytes:
        out: list[bytes] = []
        for event in events:
            if event.data == "[DONE]":
                # Not the Responses API's own, but some compatible servers end with it:
                # no error after a whole answer, and the caller's SDK is not sent it.
                continue
            parsed = _json(event.data)
            if isinstance(parsed, dict):
                sequence = parsed.get("sequence_number")
                if isinstance(sequence, int):
                    self._sequence = sequence
                if self.response_id is None:
                    self.response_id = response_id(parsed.get("response"))
                kind = parsed.get("type")
                if kind in _RESPONSES_TEXT_DELTAS:
                    delta = parsed.get("delta")
                    if type(delta) is str:
                        self.text_size += utf8_size(delta)
                elif kind in _RESPONSES_ENDS:
                    self.done = True
                    response = parsed.get("response")
                    if isinstance(response, dict):
                        self.usage = openai.parse_responses_usage(response.get("usage"))
                        self.finish_reason = responses_finish_reason(response)
            out.append(_sse(event))
        return b"".join(out)


def response_id(response: Any) -> str | None:
    """A Responses API response object's ``id``, if it has a string one."""
    found = response.get("id") if isinstance(response, dict) else None
    return found if isinstance(found, str) else None


def answer_usage(wire: str, answer: Any) -> Usage | None:
    """The usage a whole (non-streamed) answer in ``wire``'s format reports, if any."""
    if not isinstance(answer, dict):
        return None
    if wire == "ollama":
        return ollama.parse_usage(answer) if answer.get("done") else None
    raw = answer.get("usage")
    if not isinstance(raw, dict):
        return None
    if wire == "responses":
        return openai.parse_responses_usage(raw)
    return anthropic.parse_usage(raw) if wire == "anthropic" else openai.parse_usage(raw)


def answer_finish_reason(wire: str, answer: Any) -> str | None:
    """How a whole answer in ``wire``'s format says it ended, if it does."""
    if not isinstance(answer, dict):
        return None
    if wire == "ollama":
        return _field(answer, "done_reason")
    if wire == "anthropic":
        return _field(answer, "stop_reason")
    if wire == "responses":
        return responses_finish_reason(answer)
    choices = answer.get("choices")
    if choices and isinstance(choices, list):
        return _field(choices[0], "finish_reason")
    return None


def responses_finish_reason(response: dict[str, Any]) -> str | None:
    """A Responses API answer's end: why it is incomplete, else its status."""
    reason = _field(response.get("incomplete_details"), "reason")
    return reason if reason is not None else _field(response, "status")


def _field(value: Any, name: str) -> str | None:
    """``value[name]`` when ``value`` is an object and that is a string."""
    found = value.get(name) if isinstance(value, dict) else None
    return found if isinstance(found, str) else None


def scanner_for(wire: str, body: dict[str, Any]) -> StreamScanner:
    """The scanner for a stream in ``wire``'s format that ``body`` asked for."""
    if wire == "anthropic":
        return AnthropicScanner()
    if wire == "ollama":
        return OllamaScanner()
    if wire == "responses":
        return ResponsesScanner()
    options = body.get("stream_options")
    return OpenAIScanner(isinstance(options, dict) and bool(options.get("include_usage")))


class OllamaScanner:
    """``/api/chat`` NDJSON lines; the ``done: true`` line ends them and carries the counts."""

    def __init__(self) -> None:
        self._lines = NDJSONDecoder()
        self.done = False
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.text_size = 0

    def feed(self, chunk: bytes) -> bytes:
        return self._relay(self._lines.feed(chunk))

    def close(self) -> bytes:
        out = self._relay(self._lines.close())
        if not self.done:
            raise StreamTruncated("the upstream stream ended before its done line")
        return out

    def error(self, error: ModelwayError) -> bytes:
        return ollama_error_body(error) + b"\n"

    def _relay(self, lines: list[bytes]) -> bytes:
        out: list[bytes] = []
        for line in lines:
            parsed = _json(line)
            if isinstance(parsed, dict):
                message = parsed.get("message")
                if type(message) is dict:
                    content = message.get("content")
                    if type(content) is str and len(message) == 2 and "role" in message:
                        self.text_size += utf8_size(content)  # most lines: a piece of text
                    else:  # thinking, tool calls
                        self.text_size += text_size(message)
                if parsed.get("done") or parsed.get("error"):
                    self.done = True
                    if parsed.get("done"):
                        self.usage = ollama.parse_usage(parsed)
                        self.finish_reason = _field(parsed, "done_reason")
            out.append(line + b"\n")
        return b"".join(out)
