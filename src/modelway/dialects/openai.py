"""The OpenAI Chat Completions format, as callers speak it to the gateway."""

from __future__ import annotations

import time
from typing import Any

import orjson

from modelway.dialects.base import allowed_tools, arguments_text
from modelway.errors import BadRequest, ModelwayError
from modelway.reasoning import EFFORTS
from modelway.types import (
    ChatRequest,
    ChatResponse,
    ImagePart,
    Message,
    MessageEnd,
    MessageStart,
    Part,
    Reasoning,
    ReasoningDelta,
    ResponseFormat,
    StreamEvent,
    TextDelta,
    TextPart,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolCallStart,
    UsageReport,
)
from modelway.types import Usage as CanonicalUsage

#: Request fields the canonical form names; everything else travels in ``extra``.
_CANONICAL_FIELDS = frozenset(
    {
        "model",
        "messages",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "temperature",
        "top_p",
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "stream",
        "stream_options",
        "user",
        "response_format",
        "reasoning_effort",
        "functions",
        "function_call",
    }
)
_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise BadRequest(message)


def _flag(body: dict[str, Any], name: str) -> bool | None:
    value = body.get(name)
    _require(value is None or isinstance(value, bool), f"{name}: expected a boolean")
    return value


def _number(body: dict[str, Any], name: str) -> float | None:
    value = body.get(name)
    _require(
        value is None or (isinstance(value, int | float) and not isinstance(value, bool)),
        f"{name}: expected a number",
    )
    return value


def _image_part(url: str) -> ImagePart:
    """An image part; ``data:`` URLs become inline base64 so every provider can take them."""
    if url.startswith("data:") and ";base64," in url:
        header, _, data = url.partition(";base64,")
        return ImagePart(data=data, media_type=header[5:] or "image/png")
    return ImagePart(url=url)


def decode_content(content: Any, where: str) -> list[Part]:
    """Canonical parts for an OpenAI ``content`` (a string, null, or a list of parts)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [TextPart(content)] if content else []
    _require(isinstance(content, list), f"{where}: expected a string or a list of parts")
    parts: list[Part] = []
    for i, part in enumerate(content):
        _require(isinstance(part, dict), f"{where}.{i}: expected an object")
        kind = part.get("type")
        if kind in ("text", "input_text", "output_text"):
            _require(isinstance(part.get("text"), str), f"{where}.{i}.text: expected a string")
            parts.append(TextPart(part["text"]))
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            _require(isinstance(url, str), f"{where}.{i}.image_url.url: expected a string")
            parts.append(_image_part(str(url)))
        else:
            raise BadRequest(f"{where}.{i}.type: unsupported content part type {kind!r}")
    return parts


def _decode_tool_calls(calls: Any, where: str) -> list[ToolCall]:
    _require(isinstance(calls, list), f"{where}: expected a list")
    decoded: list[ToolCall] = []
    for i, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        _require(isinstance(function, dict), f"{where}.{i}.function: expected an object")
        assert isinstance(call, dict) and isinstance(function, dict)
        name, arguments = function.get("name"), function.get("arguments", "{}")
        _require(isinstance(name, str), f"{where}.{i}.function.name: expected a string")
        if not isinstance(arguments, str):
            arguments = arguments_text(arguments, f"{where}.{i}.function.arguments")
        decoded.append(
            ToolCall(id=str(call.get("id") or f"call_{i}"), name=str(name), arguments=arguments)
        )
    return decoded


def _decode_message(raw: Any, where: str) -> Message:
    _require(isinstance(raw, dict), f"{where}: expected an object")
    role = raw.get("role")
    if role == "tool":
        _require(isinstance(raw.get("tool_call_id"), str), f"{where}.tool_call_id: required")
        return Message(
            role="tool",
            content=decode_content(raw.get("content"), f"{where}.content"),
            tool_call_id=raw["tool_call_id"],
        )
    _require(isinstance(role, str) and role in _ROLES, f"{where}.role: unknown role {role!r}")
    message = Message(
        role=_ROLES[role],  # type: ignore[arg-type]
        content=decode_content(raw.get("content"), f"{where}.content"),
        name=raw.get("name"),
    )
    if role == "assistant" and raw.get("tool_calls"):
        message.tool_calls = _decode_tool_calls(raw["tool_calls"], f"{where}.tool_calls")
    return message


def _decode_tools(tools: Any) -> list[Tool]:
    _require(isinstance(tools, list), "tools: expected a list")
    decoded = []
    for i, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        _require(isinstance(function, dict), f"tools.{i}.function: expected an object")
        assert isinstance(function, dict)
        _require(isinstance(function.get("name"), str), f"tools.{i}.function.name: required")
        parameters = function.get("parameters") or {"type": "object", "properties": {}}
        _require(isinstance(parameters, dict), f"tools.{i}.function.parameters: expected object")
        decoded.append(Tool(function["name"], function.get("description") or "", parameters))
    return decoded


def _decode_tools_and_choice(body: dict[str, Any]) -> tuple[list[Tool], str | None]:
    """The tools the model may call and the canonical ``tool_choice``."""
    tools = _decode_tools(body["tools"]) if body.get("tools") else []
    choice = body.get("tool_choice")
    if not isinstance(choice, dict) or choice.get("type") != "allowed_tools":
        return tools, _decode_tool_choice(choice)
    allowed = choice.get("allowed_tools")
    _require(isinstance(allowed, dict), "tool_choice.allowed_tools: expected an object")
    assert isinstance(allowed, dict)
    listed = allowed.get("tools")
    _require(
        isinstance(listed, list) and len(listed) <= len(tools),
        "tool_choice.allowed_tools.tools: a list of the tools offered",
    )
    assert isinstance(listed, list)
    names = []
    for index, item in enumerate(listed):
        function = item.get("function") if isinstance(item, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        _require(
            isinstance(name, str),
            f"tool_choice.allowed_tools.tools.{index}.function.name: required",
        )
        names.append(str(name))
    return allowed_tools(tools, names, allowed.get("mode"), "tool_choice.allowed_tools")


def _decode_tool_choice(choice: Any) -> str | None:
    if choice is None or isinstance(choice, str):
        _require(choice in (None, "auto", "none", "required"), f"tool_choice: unknown {choice!r}")
        return choice
    function = choice.get("function") if isinstance(choice, dict) else None
    _require(
        isinstance(function, dict) and isinstance(function.get("name"), str),
        "tool_choice.function.name: required",
    )
    assert isinstance(function, dict)
    return str(function["name"])


def decode_response_format(raw: Any) -> ResponseFormat | None:
    """The canonical form of a Chat Completions ``response_format``; ``text`` is none."""
    if raw is None:
        return None
    _require(isinstance(raw, dict), "response_format: expected an object")
    kind = raw.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return ResponseFormat(type="json_object")
    _require(
        kind == "json_schema",
        "response_format.type: expected 'text', 'json_object' or 'json_schema'",
    )
    spec = raw.get("json_schema")
    _require(isinstance(spec, dict), "response_format.json_schema: expected an object")
    name = spec.get("name")
    _require(
        isinstance(name, str) and bool(name), "response_format.json_schema.name: required, a string"
    )
    schema = spec.get("schema")
    _require(
        schema is None or isinstance(schema, dict),
        "response_format.json_schema.schema: expected an object",
    )
    description = spec.get("description")
    strict = spec.get("strict")
    return ResponseFormat(
        type="json_schema",
        name=str(name),
        schema=schema,
        description=description if isinstance(description, str) else None,
        strict=strict if isinstance(strict, bool) else None,
    )


def _decode_reasoning_effort(raw: Any) -> Reasoning | None:
    if raw is None:
        return None
    _require(
        isinstance(raw, str) and raw in EFFORTS,
        f"reasoning_effort: must be one of {', '.join(EFFORTS)}",
    )
    return Reasoning(effort=raw)


def decode_chat_request(body: Any) -> ChatRequest:
    """The canonical request for a parsed Chat Completions body."""
    _require(isinstance(body, dict), "the request body must be a JSON object")
    model = body.get("model")
    _require(isinstance(model, str) and bool(model), "model: required, a non-empty string")
    _require(
        "functions" not in body and "function_call" not in body,
        "functions: the legacy functions API is not supported; send `tools` and `tool_choice`",
    )
    messages = body.get("messages")
    _require(isinstance(messages, list) and bool(messages), "messages: required, a non-empty list")
    # ``max_completion_tokens`` replaced ``max_tokens``; an explicit null defers to the old name.
    tokens_field = (
        "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    )
    max_tokens = body.get(tokens_field)
    _require(
        max_tokens is None or (type(max_tokens) is int and max_tokens > 0),  # bool is not a count
        f"{tokens_field}: expected a positive integer",
    )
    stop = body.get("stop")
    _require(
        stop is None
        or isinstance(stop, str)
        or (isinstance(stop, list) and all(isinstance(s, str) for s in stop)),
        "stop: expected a string or a list of strings",
    )
    stream = body.get("stream", False)
    _require(isinstance(stream, bool), "stream: expected a boolean")
    options = body.get("stream_options") or {}
    _require(isinstance(options, dict), "stream_options: expected an object")
    tools, tool_choice = _decode_tools_and_choice(body)
    return ChatRequest(
        model=str(model),
        messages=[_decode_message(m, f"messages.{i}") for i, m in enumerate(messages)],
        tools=tools,
        tool_choice=tool_choice,
        parallel_tool_calls=_flag(body, "parallel_tool_calls"),
        temperature=_number(body, "temperature"),
        top_p=_number(body, "top_p"),
        max_tokens=max_tokens,
        stop=[stop] if isinstance(stop, str) else list(stop or []),
        stream=stream,
        include_usage=bool(options.get("include_usage")),
        user=body.get("user"),
        response_format=decode_response_format(body.get("response_format")),
        reasoning=_decode_reasoning_effort(body.get("reasoning_effort")),
        extra={k: v for k, v in body.items() if k not in _CANONICAL_FIELDS},
    )


# --- encoding answers ------------------------------------------------------------------


def encode_usage(usage: CanonicalUsage) -> dict[str, Any]:
    """OpenAI's ``usage`` object."""
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def encode_tool_calls(calls: list[ToolCall]) -> list[dict[str, Any]]:
    """OpenAI's ``tool_calls`` list."""
    return [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
        for c in calls
    ]


def encode_error_body(error: ModelwayError) -> bytes:
    """OpenAI's error envelope."""
    return orjson.dumps(
        {
            "error": {
                "message": error.message,
                "type": error.kind,
                "param": error.param,
                "code": error.code,
            }
        }
    )


class ChunkEncoder:
    """Canonical stream events as ``chat.completion.chunk`` server-sent events."""

    def __init__(self, include_usage: bool) -> None:
        self._include_usage = include_usage
        self._id = ""
        self._model = ""
        self._created = int(time.time())

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        chunk = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    def encode(self, event: StreamEvent) -> bytes:
        if isinstance(event, TextDelta):
            return self._chunk({"content": event.text})
        if isinstance(event, ReasoningDelta):
            # DeepSeek's field, which OpenAI-format clients that show thinking read.
            return self._chunk({"reasoning_content": event.text}) if event.text else b""
        if isinstance(event, ToolCallDelta):
            return self._chunk(
                {"tool_calls": [{"index": event.index, "function": {"arguments": event.arguments}}]}
            )
        if isinstance(event, ToolCallStart):
            call = {
                "index": event.index,
                "id": event.id,
                "type": "function",
                "function": {"name": event.name, "arguments": ""},
            }
            return self._chunk({"tool_calls": [call]})
        if isinstance(event, MessageStart):
            self._id, self._model = event.id, event.model
            return self._chunk({"role": "assistant", "content": ""})
        if isinstance(event, MessageEnd):
            return self._chunk({}, event.stop_reason)
        if isinstance(event, UsageReport) and self._include_usage:
            chunk = {
                "id": self._id,
                "object": "chat.completion.chunk",
                "created": self._created,
                "model": self._model,
                "choices": [],
                "usage": encode_usage(event.usage),
            }
            return b"data: " + orjson.dumps(chunk) + b"\n\n"
        return b""

    def finish(self) -> bytes:
        return b"data: [DONE]\n\n"

    def error(self, error: ModelwayError) -> bytes:
        return b"data: " + encode_error_body(error) + b"\n\n"


class OpenAIDialect:
    """Callers using the OpenAI Chat Completions API."""

    name = "openai"
    stream_media_type = "text/event-stream"

    def decode_chat(self, body: Any) -> ChatRequest:
        return decode_chat_request(body)

    def encode_response(self, response: ChatResponse, request: ChatRequest | None = None) -> bytes:
        message = response.message
        encoded: dict[str, Any] = {"role": "assistant", "content": message.text() or None}
        if message.reasoning:
            encoded["reasoning_content"] = message.reasoning
        if message.tool_calls:
            encoded["tool_calls"] = encode_tool_calls(message.tool_calls)
        body: dict[str, Any] = {
            "id": response.id,
            "object": "chat.completion",
            "created": response.created or int(time.time()),
            "model": response.model,
            "choices": [
                {
                    "index": 0,
                    "message": encoded,
                    "finish_reason": response.stop_reason,
                    "logprobs": None,
                }
            ],
        }
        if response.usage is not None:
            body["usage"] = encode_usage(response.usage)
        return orjson.dumps(body)

    def stream_encoder(self, request: ChatRequest) -> ChunkEncoder:
        return ChunkEncoder(include_usage=request.include_usage)

    def encode_error(self, error: ModelwayError) -> bytes:
        return encode_error_body(error)
