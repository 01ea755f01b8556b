"""The Responses API's streamed event sequence (its objects: ``responses_objects.py``).

A stream is ``response.created``, ``response.in_progress``, then per output item
``response.output_item.added`` … deltas … ``response.output_item.done``, and finally
``response.completed`` (or ``response.incomplete``) carrying the whole response with
usage. Every event has a ``sequence_number``; the stream ends without ``[DONE]``.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from modelway.dialects.responses_objects import (
    finished_body,
    function_call_item,
    message_id,
    message_item,
    namespaced_names,
    reasoning_id,
    reasoning_item,
    response_body,
    response_status,
    responses_id,
    signed_item,
    text_part,
)
from modelway.errors import ModelwayError
from modelway.types import (
    ChatRequest,
    MessageEnd,
    MessageStart,
    ReasoningDelta,
    StopReason,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallStart,
    Usage,
    UsageReport,
)

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
                "param": error.param,
            }
        )
        # What was streamed stays in the failed response: the open message holds its text so
        # far, and every item left open is incomplete (not "in_progress" for ever).
        if self._text_index is not None:
            item = self._output[self._text_index]
            text = "".join(self._text)
            self._output[self._text_index] = message_item(item["id"], text, "incomplete")
        for item in self._output:
            if item.get("status") == "in_progress":
                item["status"] = "incomplete"
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
        status = response_status(stop)
        body = finished_body(self._body(status, usage=self._usage), stop)
        return self._event({"type": f"response.{status}", "response": body})

    def _body(self, status: str, usage: Usage | None = None) -> dict[str, Any]:
        body = response_body(
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
            self._output.append(reasoning_item(reasoning_id(self._id), ""))
            out += self._item_event("response.output_item.added", self._reasoning_index)
        item = self._output[self._reasoning_index]
        signed_item(item, event.signature)
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
        item = message_item(message_id(self._id, self._text_index), "", "in_progress")
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
        status = response_status(self._stop or "stop")
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
                    "name": item["name"],
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
        return self._event({"type": kind, **self._text_position(index), "part": text_part(text)})

    def _item_event(self, kind: str, output_index: int) -> bytes:
        item = self._output[output_index]
        return self._event({"type": kind, "output_index": output_index, "item": item})

    def _event(self, data: dict[str, Any]) -> bytes:
        data["sequence_number"] = self._sequence
        self._sequence += 1
        kind = str(data["type"]).encode()
        return b"event: " + kind + b"\ndata: " + orjson.dumps(data) + b"\n\n"
