"""The mock provider's answers: deterministic stream events for any chat request, no I/O.

``echo`` repeats the last user message verbatim; any other model says a fixed sentence
naming itself. Offered tools are called with arguments built from their JSON Schema, and
a tool result is answered in text that quotes it.
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from modelway.types import (
    ChatRequest,
    ChatResponse,
    MessageEnd,
    MessageStart,
    StopReason,
    StreamEvent,
    TextDelta,
    Tool,
    ToolCallDelta,
    ToolCallStart,
    Usage,
    UsageReport,
    fold_events,
)

ECHO_MODEL = "echo"
#: The models ``modelway mock`` lists; any other name answers too.
MOCK_MODELS = ("echo", "mock-1")

# A word with the whitespace after it, or a whitespace run with no word before it (the
# start of the text), so the pieces always concatenate back to the exact text.
_WORD_PIECE = re.compile(r"\S+\s*|\s+")


def mock_events(request: ChatRequest, model: str) -> list[StreamEvent]:
    """The stream events of the mock's answer to ``request`` as ``model``."""
    events: list[StreamEvent] = [MessageStart(id=f"mock-{uuid.uuid4().hex}", model=model)]
    stop_reason: StopReason = "stop"
    tool = _tool_to_call(request)
    if tool is not None:
        arguments = orjson.dumps(schema_example(tool.parameters)).decode()
        events.append(ToolCallStart(index=0, id=f"call_{uuid.uuid4().hex[:24]}", name=tool.name))
        events.append(ToolCallDelta(index=0, arguments=arguments))
        completion_tokens = count_words(arguments)
        stop_reason = "tool_calls"
    else:
        text = _answer_text(request, model)
        events.extend(TextDelta(piece) for piece in split_words(text))
        completion_tokens = count_words(text)
    events.append(MessageEnd(stop_reason))
    usage = Usage(prompt_tokens=_prompt_tokens(request), completion_tokens=completion_tokens)
    events.append(UsageReport(usage))
    return events


def mock_response(request: ChatRequest, model: str) -> ChatResponse:
    """The mock's complete answer: the fold of ``mock_events``."""
    return fold_events(mock_events(request, model))


def mock_embedding(text: str, dimensions: int = 8) -> list[float]:
    """A deterministic unit vector derived from a hash of ``text``."""
    values: list[float] = []
    block = 0
    while len(values) < dimensions:
        digest = hashlib.sha256(f"{block}:{text}".encode()).digest()
        for (word,) in struct.iter_unpack("<I", digest):
            values.append(word / 2**31 - 1.0)
        block += 1
    del values[dimensions:]
    norm = math.sqrt(sum(v * v for v in values))
    if norm == 0.0:
        return [1.0] + [0.0] * (dimensions - 1) if dimensions else []
    return [v / norm for v in values]


def split_words(text: str) -> list[str]:
    """``text`` as word-plus-following-whitespace pieces that concatenate to it exactly."""
    return _WORD_PIECE.findall(text)


def count_words(text: str) -> int:
    """The mock's token count: whitespace-separated pieces."""
    return len(text.split())


def mock_answer_text(model: str) -> str:
    """The fixed answer of a non-echo model."""
    return (
        f"Hello from the {model} mock model. "
        "This answer is fixed and deterministic, so tests can rely on it."
    )


def schema_example(schema: Mapping[str, Any], root: Mapping[str, Any] | None = None) -> Any:
    """A value that satisfies a JSON Schema (the common subset tools use)."""
    root = schema if root is None else root
    if "$ref" in schema:
        return schema_example(_resolve_ref(root, schema["$ref"]), root)
    if "const" in schema:
        return schema["const"]
    if "default" in schema:
        return schema["default"]
    if schema.get("enum"):
        return schema["enum"][0]
    for combinator in ("anyOf", "oneOf", "allOf"):
        options = [o for o in schema.get(combinator, []) if o.get("type") != "null"]
        if options:
            return schema_example(options[0], root)
    kind = _schema_type(schema)
    if kind == "object":
        return _object_example(schema, root)
    if kind == "array":
        items = schema.get("items")
        item = schema_example(items, root) if isinstance(items, Mapping) else "mock"
        return [item] * max(1, int(schema.get("minItems", 1)))
    if kind in ("integer", "number"):
        return _number_example(schema, integer=kind == "integer")
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _string_example(schema)


def _tool_to_call(request: ChatRequest) -> Tool | None:
    if not request.tools or request.tool_choice == "none":
        return None
    if not request.messages or request.messages[-1].role != "user":
        return None
    for tool in request.tools:
        if tool.name == request.tool_choice:
            return tool
    return request.tools[0]


def _answer_text(request: ChatRequest, model: str) -> str:
    messages = request.messages
    if messages and messages[-1].role == "tool":
        return _tool_result_text(request)
    if model.rsplit("/", 1)[-1] == ECHO_MODEL:
        for message in reversed(messages):
            if message.role == "user":
                return message.text()
        return ""
    return mock_answer_text(model)


def _tool_result_text(request: ChatRequest) -> str:
    names = {
        call.id: call.name
        for message in request.messages
        for call in message.tool_calls
        if message.role == "assistant"
    }
    results: list[str] = []
    for message in reversed(request.messages):
        if message.role != "tool":
            break
        name = names.get(message.tool_call_id or "") or message.name or "tool"
        results.append(f"The {name} tool returned: {message.text()}")
    return "\n".join(reversed(results))


def _prompt_tokens(request: ChatRequest) -> int:
    total = 0
    for message in request.messages:
        total += count_words(message.text())
        total += sum(count_words(call.arguments) for call in message.tool_calls)
    return total


def _schema_type(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if isinstance(kind, str):
        return kind
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return "string"


def _object_example(schema: Mapping[str, Any], root: Mapping[str, Any]) -> dict[str, Any]:
    properties: Mapping[str, Any] = schema.get("properties", {})
    names = schema.get("required") or list(properties)
    return {name: schema_example(properties.get(name, {}), root) for name in names}


def _number_example(schema: Mapping[str, Any], *, integer: bool) -> int | float:
    value: float = 1 if integer else 1.5
    if "minimum" in schema:
        value = max(value, schema["minimum"])
    if "exclusiveMinimum" in schema:
        value = max(value, schema["exclusiveMinimum"] + (1 if integer else 0.5))
    if "maximum" in schema:
        value = min(value, schema["maximum"])
    if "exclusiveMaximum" in schema:
        value = min(value, schema["exclusiveMaximum"] - (1 if integer else 0.5))
    return math.ceil(value) if integer else value


_FORMAT_EXAMPLES = {
    "date": "2024-01-01",
    "date-time": "2024-01-01T00:00:00Z",
    "time": "00:00:00",
    "email": "mock@example.com",
    "uri": "https://example.com",
    "url": "https://example.com",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


def _string_example(schema: Mapping[str, Any]) -> str:
    text = _FORMAT_EXAMPLES.get(str(schema.get("format")), "mock")
    min_length = int(schema.get("minLength", 0))
    if len(text) < min_length:
        text = text + "x" * (min_length - len(text))
    if "maxLength" in schema:
        text = text[: int(schema["maxLength"])]
    return text


def _resolve_ref(root: Mapping[str, Any], ref: str) -> Mapping[str, Any]:
    # Only local references ("#/$defs/Name"), which is what tool schemas use.
    node: Any = root
    for part in ref.removeprefix("#/").split("/"):
        if not part:
            continue
        node = node.get(part, {}) if isinstance(node, Mapping) else {}
    return node if isinstance(node, Mapping) else {}
