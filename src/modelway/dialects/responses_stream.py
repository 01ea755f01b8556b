"""The Responses API's ``response`` object and its streamed event sequence.

A stream is ``response.created``, ``response.in_progress``, then per output item
``response.output_item.added`` … deltas … ``response.output_item.done``, and finally
``response.completed`` (or ``response.incomplete``) carrying the whole response with
usage. Every event has a ``sequence_number``; the stream ends without ``[DONE]``.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from modelway.errors import ModelwayError
from modelway.types import (
    ChatRequest,
    ChatResponse,
    MessageEnd,
    MessageStart,
    ReasoningDelta,
    StopReason,
    StreamEvent,
    TextDelta,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolCallStart,
    Usage,
    UsageReport,
)

#: Joins a namespace and its function's name into the one canonical tool name.
NAMESPACE_SEPARATOR = "__"
#: Stop reasons that leave a response ``incomplete``, with the reason the API gives.
_INCOMPLETE_REASONS: dict[StopReason, str] = {
    "length": "max_output_tokens",
    "content_filter": "content_filter",
}


# --- the response object -------------------------------------------------------------


def response_object(response: ChatResponse, request: ChatRequest | None = None) -> dict[str, Any]:
    """The ``response`` object for a complete, non-streamed answer to ``request``."""
    namespaces = namespaced_names(request.tools) if request is not None else {}
    response_id = responses_id(response.id)
    status = _status(response.stop_reason)
    output: list[dict[str, Any]] = []
    message = response.message
    if message.reasoning is not None or message.reasoning_signature is not None:
        item = reasoning_item(_reasoning_id(response_id), message.reasoning or "")
        output.append(_signed(item, message.reasoning_signature))
    text = response.message.text()
    if text or not response.message.tool_calls:
        output.append(message_item(_message_id(response_id, len(output)), text, status))
    output.extend(
        function_call_item(call, status, namespaces) for call in response.message.tool_calls
    )
    body = _response(
        response_id,
        response.model,
        response.created or int(time.time()),
        status=status,
        output=output,
        usage=response.usage,
        request=request,
    )
    return _finished(body, response.stop_reason)


def responses_id(canonical_id: str) -> str:
    """A ``resp_`` id derived from the upstream's answer id (or a fresh one)."""
    if canonical_id.startswith("resp_"):
        return canonical_id
    return "resp_" + (canonical_id or uuid.uuid4().hex)


def message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    """An assistant ``message`` output item holding one ``output_text`` part."""
    content = [_text_part(text)] if status != "in_progress" else []
    return {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": content,
    }


def reasoning_item(item_id: str, text: str) -> dict[str, Any]:
    """A ``reasoning`` output item: the model's visible thinking as one summary part."""
    summary = [{"type": "summary_text", "text": text}] if text else []
    return {"id": item_id, "type": "reasoning", "summary": summary}


def _signed(item: dict[str, Any], signature: str | None) -> dict[str, Any]:
    # The signature rides in ``encrypted_content``, which clients send back unchanged.
    if signature is not None:
        item["encrypted_content"] = signature
    return item


def function_call_item(
    call: ToolCall, status: str, namespaces: dict[str, tuple[str, str]] | None = None
) -> dict[str, Any]:
    """A ``function_call`` output item; ``call_id`` is what the caller answers with.

    A call to a namespace's function (``namespaces``: from ``namespaced_names``) carries
    the function's own name and its ``namespace``, as the API reports it.
    """
    item: dict[str, Any] = {
        "id": "fc_" + call.id,
        "type": "function_call",
        "call_id": call.id,
        "name": call.name,
        "arguments": call.arguments,
        "status": status,
    }
    grouped = namespaces.get(call.name) if namespaces else None
    if grouped is not None:
        item["namespace"], item["name"] = grouped
    return item


def namespaced_names(tools: list[Tool]) -> dict[str, tuple[str, str]]:
    """Each flattened tool name in ``tools`` -> its namespace and its own name."""
    return {
        tool.name: (tool.namespace, tool.name.removeprefix(tool.namespace + NAMESPACE_SEPARATOR))
        for tool in tools
        if tool.namespace is not None
    }


def usage_object(usage: Usage) -> dict[str, Any]:
    """The Responses API ``usage`` object (``input_tokens`` includes cached tokens)."""
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cached_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


def _response(
    response_id: str,
    model: str,
    created_at: int,
    *,
    status: str,
    output: list[dict[str, Any]],
    usage: Usage | None,
    request: ChatRequest | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "completed_at": int(time.time()) if status == "completed" else None,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": None,
        "store": False,
        "temperature": None,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": None,
        "truncation": "disabled",
        "usage": usage_object(usage) if usage is not None else None,
        "user": None,
        "metadata": {},
    }
    if request is not None:
        body.update(_request_echo(request))
    return body


def _request_echo(request: ChatRequest) -> dict[str, Any]:
    """The request settings a response repeats back."""
    choice: Any = request.tool_choice or "auto"
    if choice not in ("auto", "none", "required"):
        choice = {"type": "function", "name": choice}
    echo: dict[str, Any] = {
        "max_output_tokens": request.max_tokens,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "tool_choice": choice,
        "tools": [_tool_object(tool) for tool in request.tools],
        "user": request.user,
    }
    wanted = request.response_format
    if wanted is not None and wanted.type == "json_object":
        echo["text"] = {"format": {"type": "json_object"}}
    elif wanted is not None:
        spec = {"type": "json_schema", "name": wanted.name, "schema": wanted.schema}
        echo["text"] = {
            "format": {**spec, "description": wanted.description, "strict": wanted.strict}
        }
    if request.reasoning is not None and request.reasoning.effort is not None:
        echo["reasoning"] = {"effort": request.reasoning.effort, "summary": None}
    return echo


def _tool_object(tool: Tool) -> dict[str, Any]:
    return {
        "type": "function",
        "name": tool.name,
        "description": tool.description or None,
        "parameters": tool.parameters,
        "strict": False,
    }


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _reasoning_id(response_id: str) -> str:
    return "rs_" + response_id.removeprefix("resp_")


def _message_id(response_id: str, output_index: int) -> str:
    suffix = response_id.removeprefix("resp_")
    return f"msg_{suffix}" if output_index == 0 else f"msg_{suffix}_{output_index}"


def _status(stop_reason: StopReason) -> str:
    return "incomplete" if stop_reason in _INCOMPLETE_REASONS else "completed"


def _finished(body: dict[str, Any], stop_reason: StopReason) -> dict[str, Any]:
    reason = _INCOMPLETE_REASONS.get(stop_reason)
    if reason is not None:
        body["incomplete_details"] = {"reason": reason}
    return body


# --- the stream ----------------------------------------------------------------------


class ResponsesStreamEncoder:
    """Encodes canonical stream events as the Responses API's SSE event sequence."""

    def __init__(self, request: ChatRequest) -> None:
        self._request = request
        self._namespaces = namespaced_names(request.tools)
        self._id = ""
        self._model = request.model
        self._created_at = int(time.time())
        self._sequence = 0
        self._started = False
        self._done = False
        self._output: list[dict[str, Any]] = []
        self._text_index: int | None = None  # output index of the open message item
        self._text: list[str] = []
        self._reasoning_index: int | None = None  # output index of the open reasoning item
        self._reasoning: list[str] = []
        # Tool call items stay open until the answer ends: a canonical stream may send an
        # earlier call's argument deltas after a later call began.
        self._calls: dict[int, int] = {}  # canonical tool call index -> output index
        self._stop: StopReason | None = None
        self._usage: Usage | None = None
        #: Fields every ``response`` object of the stream repeats that the canonical
        #: request cannot say (``store``, ``previous_response_id``).
        self.echo: dict[str, Any] = {}

    def encode(self, event: StreamEvent) -> bytes:
        """The SSE events for one canonical event (empty while ``response.completed`` waits)."""
        if self._done:
            return b""
        if isinstance(event, MessageStart):
            return b"" if self._started else self._start(event.id, event.model)
        out = b"" if self._started else self._start("", self._model)
        if isinstance(event, ReasoningDelta):
            out += self._reasoning_delta(event)
        elif isinstance(event, TextDelta):
            out += self._close_reasoning() + self._text_delta(event.text)
        elif isinstance(event, ToolCallStart):
            out += self._close_reasoning() + self._close_text("completed") + self._open_call(event)
        elif isinstance(event, ToolCallDelta):
            out += self._call_delta(event)
        elif isinstance(event, MessageEnd):
            self._stop = event.stop_reason
            out += self._close_items()
            if self._usage is not None:
                out += self._end()
        elif isinstance(event, UsageReport):
            # response.completed carries usage, so it waits for the usage.
            self._usage = event.usage
            if self._stop is not None:
                out += self._end()
        return out

    def finish(self) -> bytes:
        """The held ``response.completed`` (without usage if none came); no ``[DONE]``."""
        if self._done:
            return b""
        out = b"" if self._started else self._start("", self._model)
        if self._stop is None:
            self._stop = "stop"
            out += self._close_items()
        return out + self._end()

    def error(self, error: ModelwayError) -> bytes:
        """An ``error`` event then ``response.failed``, as the API fails a begun stream."""
        if self._done:
            return b""
        out = b"" if self._started else self._start("", self._model)
        self._done = True
        out += self._event(
            {
                "type": "error",
                "code": error.code or error.kind,
                "message": error.message,
                "param": None,
            }
        )
        body = self._body("failed")
        # The response's error code is a closed vocabulary; these two are the retryable ones.
        code = "rate_limit_exceeded" if error.status == 429 else "server_error"
        body["error"] = {"code": code, "message": error.message}
        return out + self._event({"type": "response.failed", "response": body})

    # --- lifecycle ---

    def _start(self, answer_id: str, model: str) -> bytes:
        self._started = True
        self._id = responses_id(answer_id)
        self._model = model or self._model
        body = self._body("in_progress")
        return self._event({"type": "response.created", "response": body}) + self._event(
            {"type": "response.in_progress", "response": body}
        )

    def _end(self) -> bytes:
        self._done = True
        stop = self._stop or "stop"
        status = _status(stop)
        body = _finished(self._body(status, usage=self._usage), stop)
        return self._event({"type": f"response.{status}", "response": body})

    def _body(self, status: str, usage: Usage | None = None) -> dict[str, Any]:
        body = _response(
            self._id,
            self._model,
            self._created_at,
            status=status,
            output=self._output,
            usage=usage,
            request=self._request,
        )
        body.update(self.echo)
        return body

    # --- output items ---

    def _reasoning_delta(self, event: ReasoningDelta) -> bytes:
        out = b""
        if self._reasoning_index is None:
            self._reasoning_index = len(self._output)
            self._reasoning = []
            self._output.append(reasoning_item(_reasoning_id(self._id), ""))
            out += self._item_event("response.output_item.added", self._reasoning_index)
        item = self._output[self._reasoning_index]
        _signed(item, event.signature)
        if not event.text:
            return out
        position = {"item_id": item["id"], "output_index": self._reasoning_index}
        if not self._reasoning:
            part = {"type": "summary_text", "text": ""}
            added = {"type": "response.reasoning_summary_part.added", "summary_index": 0}
            out += self._event({**added, **position, "part": part})
        self._reasoning.append(event.text)
        delta = {"type": "response.reasoning_summary_text.delta", "summary_index": 0}
        return out + self._event({**delta, **position, "delta": event.text})

    def _close_reasoning(self) -> bytes:
        if self._reasoning_index is None:
            return b""
        index, text = self._reasoning_index, "".join(self._reasoning)
        self._reasoning_index = None
        item = self._output[index]
        out = b""
        if text:
            item["summary"] = [{"type": "summary_text", "text": text}]
            position = {"item_id": item["id"], "output_index": index, "summary_index": 0}
            done = {"type": "response.reasoning_summary_text.done", **position, "text": text}
            out += self._event(done)
            part = {"type": "summary_text", "text": text}
            out += self._event(
                {"type": "response.reasoning_summary_part.done", **position, "part": part}
            )
        return out + self._item_event("response.output_item.done", index)

    def _open_text(self) -> bytes:
        self._text_index = len(self._output)
        self._text = []
        item = message_item(_message_id(self._id, self._text_index), "", "in_progress")
        self._output.append(item)
        out = self._item_event("response.output_item.added", self._text_index)
        return out + self._part_event("response.content_part.added", "")

    def _text_delta(self, text: str) -> bytes:
        out = self._open_text() if self._text_index is None else b""
        self._text.append(text)
        return out + self._event(
            {
                "type": "response.output_text.delta",
                **self._text_position(),
                "delta": text,
                "logprobs": [],
            }
        )

    def _close_text(self, status: str) -> bytes:
        if self._text_index is None:
            return b""
        index, text = self._text_index, "".join(self._text)
        self._text_index = None
        self._output[index] = message_item(self._output[index]["id"], text, status)
        done = {"type": "response.output_text.done", "text": text, "logprobs": []}
        out = self._event({**done, **self._text_position(index)})
        out += self._part_event("response.content_part.done", text, index)
        return out + self._item_event("response.output_item.done", index)

    def _open_call(self, event: ToolCallStart) -> bytes:
        output_index = len(self._output)
        self._calls[event.index] = output_index
        call = ToolCall(id=event.id, name=event.name, arguments="")
        self._output.append(function_call_item(call, "in_progress", self._namespaces))
        return self._item_event("response.output_item.added", output_index)

    def _call_delta(self, event: ToolCallDelta) -> bytes:
        output_index = self._calls.get(event.index)
        if output_index is None:
            return b""
        item = self._output[output_index]
        item["arguments"] += event.arguments
        return self._event(
            {
                "type": "response.function_call_arguments.delta",
                "item_id": item["id"],
                "output_index": output_index,
                "delta": event.arguments,
            }
        )

    def _close_items(self) -> bytes:
        status = _status(self._stop or "stop")
        out = self._close_reasoning()
        # An answer with no output still has its (empty) message, as a whole response does.
        if not any(item["type"] != "reasoning" for item in self._output):
            out += self._open_text()
        out += self._close_text(status)
        for output_index in sorted(self._calls.values()):
            item = self._output[output_index]
            item["arguments"] = item["arguments"] or "{}"
            item["status"] = status
            out += self._event(
                {
                    "type": "response.function_call_arguments.done",
                    "item_id": item["id"],
                    "output_index": output_index,
                    "arguments": item["arguments"],
                }
            )
            out += self._item_event("response.output_item.done", output_index)
        self._calls = {}
        return out

    # --- framing ---

    def _text_position(self, index: int | None = None) -> dict[str, Any]:
        output_index = self._text_index if index is None else index
        assert output_index is not None
        item_id = self._output[output_index]["id"]
        return {"item_id": item_id, "output_index": output_index, "content_index": 0}

    def _part_event(self, kind: str, text: str, index: int | None = None) -> bytes:
        return self._event({"type": kind, **self._text_position(index), "part": _text_part(text)})

    def _item_event(self, kind: str, output_index: int) -> bytes:
        item = self._output[output_index]
        return self._event({"type": kind, "output_index": output_index, "item": item})

    def _event(self, data: dict[str, Any]) -> bytes:
        data["sequence_number"] = self._sequence
        self._sequence += 1
        kind = str(data["type"]).encode()
        return b"event: " + kind + b"\ndata: " + orjson.dumps(data) + b"\n\n"
