"""Reading OpenAI Chat Completions answers, whole (``parse_chat``) and streamed
(``ChunkDecoder``), and usage in both of OpenAI's shapes. Requests are ``openai``'s."""

from __future__ import annotations

from typing import Any

import orjson

from modelway.errors import EmptyResponse, StreamTruncated, UndecodableResponse, UpstreamStatusError
from modelway.providers.base import token_count
from modelway.streams import SSEDecoder
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
    new_tool_call_id,
)

STOP_REASONS: dict[str, StopReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


def parse_json(body: bytes) -> Any:
    """A JSON body, or ``EmptyResponse`` / ``UndecodableResponse``."""
    if not body.strip():
        raise EmptyResponse("the upstream sent an empty body")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UndecodableResponse(
            "the upstream sent a body that is not JSON", raw=body.decode("utf-8", "replace")
        ) from None


def parse_object(body: bytes) -> dict[str, Any]:
    """A JSON object body; any other JSON is ``UndecodableResponse``, not an ``AttributeError``."""
    data = parse_json(body)
    if not isinstance(data, dict):
        raise UndecodableResponse(
            "the upstream sent JSON that is not an object", raw=body.decode("utf-8", "replace")
        )
    return data


def parse_usage(raw: Any) -> Usage | None:
    """Canonical usage from an OpenAI ``usage`` object.

    ``prompt_tokens`` counts the cached tokens too, as the canonical form does. OpenAI
    reports no cache writes; ``cache_write_tokens`` in the details is read where an
    OpenAI-compatible upstream (OpenRouter) sends it.
    """
    if not isinstance(raw, dict):
        return None
    details = raw.get("prompt_tokens_details")
    details = details if isinstance(details, dict) else {}
    output = raw.get("completion_tokens_details")
    output = output if isinstance(output, dict) else {}
    return Usage(
        prompt_tokens=token_count(raw.get("prompt_tokens")),
        completion_tokens=token_count(raw.get("completion_tokens")),
        cached_tokens=token_count(details.get("cached_tokens")),
        cache_write_tokens=token_count(details.get("cache_write_tokens")),
        reasoning_tokens=token_count(output.get("reasoning_tokens")),
    )


def parse_responses_usage(raw: Any) -> Usage | None:
    """Canonical usage from a Responses API ``usage`` object (``input_tokens`` counts cached ones).

    Reasoning tokens are part of ``output_tokens`` there, so they are counted and priced.
    """
    if not isinstance(raw, dict):
        return None
    details = raw.get("input_tokens_details")
    details = details if isinstance(details, dict) else {}
    output = raw.get("output_tokens_details")
    output = output if isinstance(output, dict) else {}
    return Usage(
        prompt_tokens=token_count(raw.get("input_tokens")),
        completion_tokens=token_count(raw.get("output_tokens")),
        cached_tokens=token_count(details.get("cached_tokens")),
        cache_write_tokens=token_count(details.get("cache_write_tokens")),
        reasoning_tokens=token_count(output.get("reasoning_tokens")),
    )


def reasoning_text(raw: dict[str, Any]) -> str | None:
    """Visible thinking in an OpenAI-format message or delta: DeepSeek's
    ``reasoning_content`` or the ``reasoning`` OpenRouter, Groq and vLLM send."""
    for key in ("reasoning_content", "reasoning"):
        value = raw.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _text(content: Any, body: bytes) -> str | None:
    """A message's text: a string, or a list of text parts (as some OpenAI-compatible
    upstreams answer); anything else is an answer not in the format (502, not a crash
    further on)."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [part.get("text") for part in content if isinstance(part, dict)]
        if all(isinstance(text, str) for text in texts):
            return "".join(texts)  # type: ignore[arg-type]
    raise UndecodableResponse(
        "the upstream answer's message content is not text",
        raw=body.decode(errors="replace"),
    )


def parse_chat(body: bytes) -> ChatResponse:
    """A non-streamed ``chat.completion``."""
    data = parse_json(body)
    choices = data.get("choices") if isinstance(data, dict) else None
    if not choices:
        raise EmptyResponse("the upstream answer has no choices")
    raw = choices[0].get("message") or {}
    message = Message(role="assistant", reasoning=reasoning_text(raw))
    # A model that declines says why in ``refusal``, not ``content``; other dialects have
    # no such field, so it is the answer's text.
    text = _text(raw.get("content") or raw.get("refusal"), body)
    if text:
        message.content = [TextPart(text)]
    for call in raw.get("tool_calls") or ():
        function = call.get("function") or {}
        arguments = function.get("arguments") or "{}"
        if not isinstance(arguments, str):  # some upstreams send the object, not its JSON
            arguments = orjson.dumps(arguments).decode()
        message.tool_calls.append(
            ToolCall(
                id=str(call.get("id") or new_tool_call_id()),
                name=str(function.get("name") or ""),
                arguments=arguments,
            )
        )
    return ChatResponse(
        id=str(data.get("id") or ""),
        model=str(data.get("model") or ""),
        message=message,
        stop_reason=STOP_REASONS.get(choices[0].get("finish_reason") or "stop", "stop"),
        usage=parse_usage(data.get("usage")),
        created=int(data.get("created") or 0),
    )


class ChunkDecoder:
    """``chat.completion.chunk`` events to canonical events; ``data: [DONE]`` ends the stream."""

    def __init__(self) -> None:
        self._sse = SSEDecoder()
        self._started = False
        self._done = False
        self._tool_calls = StreamedToolCalls()

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        for sse in self._sse.feed(chunk):
            self._event(sse.data, events)
        return events

    def close(self) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        for sse in self._sse.close():
            self._event(sse.data, events)
        if not self._done:
            # Said in no wire's terms: a caller of any dialect may read it.
            raise StreamTruncated("the upstream stream was cut off before its end")
        return events

    def _event(self, data: str, events: list[StreamEvent]) -> None:
        if data == "[DONE]":
            self._done = True
            return
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise UndecodableResponse(
                "the upstream sent a stream chunk that is not JSON", raw=data
            ) from None
        if not isinstance(chunk, dict):
            raise UndecodableResponse(
                "the upstream sent a stream chunk that is not an object", raw=data
            )
        if chunk.get("error"):
            raise upstream_stream_error(chunk["error"])
        if not self._started and (chunk.get("choices") or chunk.get("id") or chunk.get("model")):
            # Azure's first chunk (prompt_filter_results, no choices) has id and model "":
            # the answer starts with the first chunk that says which.
            self._started = True
            events.append(
                MessageStart(id=str(chunk.get("id") or ""), model=str(chunk.get("model") or ""))
            )
        try:
            for choice in chunk.get("choices") or ():
                self._choice(choice, events)
        except (AttributeError, TypeError) as exc:
            raise UndecodableResponse(
                "the upstream sent a stream chunk of an unexpected shape", raw=data
            ) from exc
        usage = parse_usage(chunk.get("usage"))
        if usage is not None:
            events.append(UsageReport(usage))

    def _choice(self, choice: dict[str, Any], events: list[StreamEvent]) -> None:
        delta = choice.get("delta") or {}
        thought = reasoning_text(delta)
        if thought is not None:
            events.append(ReasoningDelta(thought))
        text = delta.get("content") or delta.get("refusal")  # a refusal is the text (parse_chat)
        if text:
            events.append(TextDelta(text))
        for call in delta.get("tool_calls") or ():
            events += self._tool_calls.read(call)
        reason = choice.get("finish_reason")
        if reason:
            events.append(MessageEnd(STOP_REASONS.get(reason, "stop")))


class StreamedToolCalls:
    """Which tool call each streamed ``tool_calls[]`` delta starts or continues.

    OpenAI numbers calls by ``index`` and gives a call's ``id`` in its first delta. Servers
    that copy it differ: some give parallel calls one index, each with its own id (a new id
    is a new call); vLLM and LM Studio may send ``index: null`` (the id then says which
    call, and without one a delta continues the latest). Canonical indexes count from 0.
    """

    def __init__(self) -> None:
        self._ids: list[str] = []  # canonical index -> the call's id
        self._known: dict[int | str, int] = {}  # upstream index or id -> canonical index

    def read(self, call: dict[str, Any]) -> list[StreamEvent]:
        """The events one ``tool_calls[]`` delta adds."""
        function = call.get("function") or {}
        arguments = function.get("arguments")
        if arguments is not None and not isinstance(arguments, str):
            raise TypeError("tool call arguments are not a string")
        given = str(call["id"]) if call.get("id") else None
        index = call.get("index")
        index = index if isinstance(index, int) and not isinstance(index, bool) else None
        events: list[StreamEvent] = []
        position = self._continued(index, given)
        if position is None:
            position = len(self._ids)
            self._ids.append(given or new_tool_call_id())
            name = str(function.get("name") or "")
            events.append(ToolCallStart(index=position, id=self._ids[position], name=name))
        for key in (index, given):
            if key is not None:
                self._known[key] = position
        if arguments:
            events.append(ToolCallDelta(index=position, arguments=arguments))
        return events

    def _continued(self, index: int | None, given: str | None) -> int | None:
        """The canonical index of the call a delta continues; None when it starts one."""
        if index is not None:
            position = self._known.get(index)
        elif given is not None:
            position = self._known.get(given)
        else:
            position = len(self._ids) - 1 if self._ids else None
        if position is not None and given is not None and given != self._ids[position]:
            return None
        return position


def upstream_stream_error(error: Any) -> UpstreamStatusError:
    """An error object sent inside a stream, as an error with a fitting status."""
    message = error.get("message") if isinstance(error, dict) else str(error)
    code = error.get("code") if isinstance(error, dict) else None
    status = code if isinstance(code, int) else 500
    return UpstreamStatusError(f"upstream error in stream: {message}", upstream_status=status)
