"""The canonical request, response and stream-event model.

Every inbound dialect decodes into these structs and every provider adapter encodes
from them; translation never goes dialect-to-provider directly.

A streamed answer is a sequence of events::

    MessageStart, (ReasoningDelta | TextDelta | ToolCallStart | ToolCallDelta)*, MessageEnd,
    [UsageReport]

and a non-streamed answer is the fold of the same sequence (``ResponseBuilder``), so
both modes share one path.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from typing import Any, Literal

import msgspec

Role = Literal["system", "user", "assistant", "tool"]
StopReason = Literal["stop", "length", "tool_calls", "content_filter"]


class TextPart(msgspec.Struct, tag="text", frozen=True):
    """Plain text content."""

    text: str


class ImagePart(msgspec.Struct, tag="image", frozen=True):
    """An image given by URL, or inline as base64 ``data`` with its ``media_type``."""

    url: str | None = None
    data: str | None = None
    media_type: str | None = None

    def data_url(self) -> str:
        """The image as a URL, inline images as a ``data:`` URL."""
        if self.url is not None:
            return self.url
        return f"data:{self.media_type or 'image/png'};base64,{self.data or ''}"


Part = TextPart | ImagePart


class ToolCall(msgspec.Struct):
    """A call the model asks for; ``arguments`` is JSON text exactly as the model wrote it."""

    id: str
    name: str
    arguments: str = "{}"


def new_tool_call_id() -> str:
    """An id for a tool call the upstream gave none. Unique across answers, not only within
    one: a history holds every answer's calls, and Anthropic refuses one with two alike
    ("tool_use ids must be unique")."""
    return f"call_{uuid.uuid4().hex[:24]}"


class Message(msgspec.Struct):
    """One turn of a conversation.

    ``tool_call_id`` is set on ``role="tool"`` messages, which carry a tool's result.
    """

    role: Role
    content: list[Part] = msgspec.field(default_factory=list)
    tool_calls: list[ToolCall] = msgspec.field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None
    #: An assistant turn's visible thinking, when the model showed any.
    reasoning: str | None = None
    #: What the provider that thought needs to see that thinking again (Anthropic's
    #: ``signature``, Gemini's ``thoughtSignature``), as ``"<wire>:<its value>"``: only a
    #: provider of that wire reads it; callers get it back opaque and return it unchanged.
    reasoning_signature: str | None = None

    def text(self) -> str:
        """All text parts joined."""
        return "".join(part.text for part in self.content if isinstance(part, TextPart))

    def prompt_text(self) -> str:
        """The text parts of a message asked with, one per line: blocks a caller sent
        apart (an Anthropic system list, a tool result's lines) stay apart words for a
        format that takes one string."""
        return "\n".join(part.text for part in self.content if isinstance(part, TextPart))

    def images(self) -> list[ImagePart]:
        """The message's image parts."""
        return [part for part in self.content if isinstance(part, ImagePart)]


class Tool(msgspec.Struct):
    """A function the model may call; ``parameters`` is a JSON Schema object.

    ``namespace`` is set for a function the caller offered inside a group (the Responses
    API's ``namespace`` tools); ``name`` is then ``<namespace>__<its own name>``, the one
    name providers see. Only the caller's dialect reads ``namespace``.
    """

    name: str
    description: str = ""
    parameters: dict[str, Any] = msgspec.field(default_factory=dict)
    namespace: str | None = None


class ResponseFormat(msgspec.Struct):
    """The structured output a caller asked for.

    ``json_schema`` wants JSON valid against ``schema`` (named ``name``); ``json_object``
    wants any JSON object. Each adapter asks its upstream for it in its own terms.
    """

    type: Literal["json_schema", "json_object"]
    name: str = "output"
    schema: dict[str, Any] | None = None
    description: str | None = None
    strict: bool | None = None


#: Named thinking levels, least to most; each adapter maps them to its provider's terms.
Effort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]


class Reasoning(msgspec.Struct):
    """How much the model should think before answering.

    ``effort`` is a named level (OpenAI's ``reasoning_effort``, Anthropic's
    ``output_config.effort``); ``budget_tokens`` a token budget (Anthropic's
    ``thinking.budget_tokens``, Gemini's ``thinkingBudget``). Callers give either; each
    adapter derives the one its provider takes (``modelway.reasoning``).
    """

    effort: Effort | None = None
    budget_tokens: int | None = None


class ChatRequest(msgspec.Struct):
    """A chat request in canonical form.

    ``tool_choice`` is ``"auto"``, ``"none"``, ``"required"`` or the name of one tool.
    ``extra`` carries provider-specific fields the canonical form has no name for.
    """

    model: str
    messages: list[Message]
    tools: list[Tool] = msgspec.field(default_factory=list)
    tool_choice: str | None = None
    #: False: at most one tool call an answer (OpenAI's ``parallel_tool_calls: false``,
    #: Anthropic's ``disable_parallel_tool_use``); None leaves it to the provider.
    parallel_tool_calls: bool | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: list[str] = msgspec.field(default_factory=list)
    stream: bool = False
    #: The caller wants usage in the stream (OpenAI's ``stream_options.include_usage``).
    include_usage: bool = False
    user: str | None = None
    #: Structured output (OpenAI's ``response_format``); ``None`` is free text.
    response_format: ResponseFormat | None = None
    #: Thinking the caller asked for; ``None`` leaves it to the provider's default.
    reasoning: Reasoning | None = None
    extra: dict[str, Any] = msgspec.field(default_factory=dict)
    #: The Responses API's ``instructions`` as sent, for the response to echo; they are
    #: also the first system message, which is what providers get.
    instructions: str | None = None

    def system_text(self) -> str:
        """The text of every system message, joined by blank lines."""
        return "\n\n".join(m.text() for m in self.messages if m.role == "system")


class Usage(msgspec.Struct):
    """Token counts; ``estimated`` is true when counted locally, not reported upstream.

    ``prompt_tokens`` is every input token, OpenAI's meaning: it *includes*
    ``cached_tokens`` (read from the provider's prompt cache) and ``cache_write_tokens``
    (written to it), which are parts of it, never added on top. Anthropic counts its
    ``input_tokens`` without either; its adapter and dialect convert.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    estimated: bool = False
    cache_write_tokens: int = 0
    #: Completion tokens the model spent thinking (part of ``completion_tokens``).
    reasoning_tokens: int = 0
    #: Of ``cache_write_tokens``, those written for an hour (Anthropic's ``ttl: "1h"``),
    #: which cost more than the default five-minute writes.
    cache_write_1h_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class ChatResponse(msgspec.Struct):
    """A complete answer."""

    id: str
    model: str
    message: Message
    stop_reason: StopReason = "stop"
    usage: Usage | None = None
    created: int = 0


# --- stream events -------------------------------------------------------------------


class MessageStart(msgspec.Struct, tag="message_start"):
    """First event of every stream."""

    id: str
    model: str


class TextDelta(msgspec.Struct, tag="text_delta"):
    """A piece of the answer's text."""

    text: str


class ReasoningDelta(msgspec.Struct, tag="reasoning_delta"):
    """A piece of the model's visible thinking, or its signature (see ``Message``)."""

    text: str = ""
    signature: str | None = None


class ToolCallStart(msgspec.Struct, tag="tool_call_start"):
    """A new tool call begins; ``index`` counts tool calls from 0 within one answer."""

    index: int
    id: str
    name: str


class ToolCallDelta(msgspec.Struct, tag="tool_call_delta"):
    """A piece of a tool call's JSON arguments."""

    index: int
    arguments: str


class MessageEnd(msgspec.Struct, tag="message_end"):
    """The answer is complete; usage may still follow."""

    stop_reason: StopReason


class UsageReport(msgspec.Struct, tag="usage"):
    """Token usage of the answer."""

    usage: Usage


StreamEvent = (
    MessageStart
    | ReasoningDelta
    | TextDelta
    | ToolCallStart
    | ToolCallDelta
    | MessageEnd
    | UsageReport
)


class ResponseBuilder:
    """Folds stream events into a ``ChatResponse``."""

    def __init__(self) -> None:
        self.id = ""
        self.model = ""
        self._text: list[str] = []
        self._tool_calls: list[ToolCall] = []
        self._reasoning: list[str] = []
        self.reasoning_signature: str | None = None
        self.stop_reason: StopReason | None = None
        self.usage: Usage | None = None

    def add(self, event: StreamEvent) -> None:
        if isinstance(event, TextDelta):
            self._text.append(event.text)
        elif isinstance(event, ToolCallDelta):
            self._tool_calls[event.index].arguments += event.arguments
        elif isinstance(event, ToolCallStart):
            while len(self._tool_calls) <= event.index:
                self._tool_calls.append(ToolCall(id="", name="", arguments=""))
            self._tool_calls[event.index] = ToolCall(id=event.id, name=event.name, arguments="")
        elif isinstance(event, ReasoningDelta):
            if event.text:
                self._reasoning.append(event.text)
            if event.signature is not None:
                self.reasoning_signature = event.signature
        elif isinstance(event, MessageStart):
            self.id, self.model = event.id, event.model
        elif isinstance(event, MessageEnd):
            self.stop_reason = event.stop_reason
        else:
            self.usage = event.usage

    def result(self) -> ChatResponse:
        text = "".join(self._text)
        for call in self._tool_calls:
            if not call.arguments:
                call.arguments = "{}"
        message = Message(
            role="assistant",
            content=[TextPart(text)] if text else [],
            tool_calls=self._tool_calls,
            reasoning="".join(self._reasoning) if self._reasoning else None,
            reasoning_signature=self.reasoning_signature,
        )
        return ChatResponse(
            id=self.id,
            model=self.model,
            message=message,
            stop_reason=self.stop_reason or "stop",
            usage=self.usage,
            created=int(time.time()),
        )


def fold_events(events: Iterable[StreamEvent]) -> ChatResponse:
    """The complete answer a sequence of stream events describes."""
    builder = ResponseBuilder()
    for event in events:
        builder.add(event)
    return builder.result()


def response_events(response: ChatResponse) -> list[StreamEvent]:
    """The stream events that describe a complete answer (the inverse of ``fold_events``)."""
    events: list[StreamEvent] = [MessageStart(id=response.id, model=response.model)]
    message = response.message
    if message.reasoning is not None or message.reasoning_signature is not None:
        events.append(ReasoningDelta(message.reasoning or "", message.reasoning_signature))
    text = response.message.text()
    if text:
        events.append(TextDelta(text))
    for index, call in enumerate(response.message.tool_calls):
        events.append(ToolCallStart(index=index, id=call.id, name=call.name))
        events.append(ToolCallDelta(index=index, arguments=call.arguments))
    events.append(MessageEnd(response.stop_reason))
    if response.usage is not None:
        events.append(UsageReport(response.usage))
    return events


# --- embeddings and models -----------------------------------------------------------


class EmbeddingRequest(msgspec.Struct):
    """Texts to embed."""

    model: str
    input: list[str]
    dimensions: int | None = None


class EmbeddingResponse(msgspec.Struct):
    """One vector per input text, in order."""

    model: str
    vectors: list[list[float]]
    usage: Usage = msgspec.field(default_factory=Usage)


class ModelInfo(msgspec.Struct, frozen=True):
    """A model a client may name; ``id`` is what it sends as ``model``."""

    id: str
    owned_by: str
