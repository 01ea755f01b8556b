"""The Anthropic Messages API as an inbound dialect: ``POST /v1/messages`` in, messages out.

This module decodes requests; the answers it sends are ``anthropic_stream``'s.
"""

from __future__ import annotations

from typing import Any

import orjson

from modelway.dialects.anthropic_stream import (
    AnthropicStreamEncoder,
    error_object,
    error_type,
    message_object,
)
from modelway.dialects.base import arguments_text
from modelway.errors import BadRequest, ModelwayError
from modelway.providers.anthropic import REDACTED
from modelway.reasoning import EFFORTS, tagged
from modelway.types import (
    ChatRequest,
    ChatResponse,
    ImagePart,
    Message,
    Part,
    Reasoning,
    ResponseFormat,
    TextPart,
    Tool,
    ToolCall,
)

#: The answer side lives in ``anthropic_stream``; these are its names callers use here.
__all__ = [
    "AnthropicDialect",
    "AnthropicStreamEncoder",
    "error_object",
    "error_type",
    "message_object",
]

_TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}
_ROLE_BLOCKS = {"user": ("text", "image", "tool_result"), "assistant": ("text", "tool_use")}
#: Decoding reads only the keys it maps: ``cache_control`` (on system blocks, content
#: blocks and tools) and ``citations`` are prompt-caching and provenance details no
#: canonical field carries.
_KNOWN_BLOCKS = {"text", "image", "tool_use", "tool_result", "thinking", "redacted_thinking"}
#: Wire tags of signatures another provider wrote, passed to callers as they are.
_SIGNATURE_OWNERS = {"gemini", "openai", "ollama"}
#: Blocks Anthropic defines that the canonical form cannot carry.
_UNSUPPORTED_BLOCKS = {"document", "search_result", "server_tool_use", "web_search_tool_result"}


class AnthropicDialect:
    """Speaks Anthropic's Messages API to callers (the ``anthropic`` SDKs, Claude clients)."""

    name = "anthropic"
    stream_media_type = "text/event-stream"

    def decode_chat(self, body: Any) -> ChatRequest:
        """The canonical request for a Messages API body; ``BadRequest`` names the bad field."""
        if not isinstance(body, dict):
            raise BadRequest("body: expected a JSON object")
        max_tokens = body.get("max_tokens")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise BadRequest("max_tokens: required, a positive integer")
        raw_messages = body.get("messages")
        if not isinstance(raw_messages, list) or not raw_messages:
            raise BadRequest("messages: required, a non-empty list")
        system = body.get("system")
        messages = [] if system is None else _system(system, "system")
        for index, raw in enumerate(raw_messages):
            messages.extend(_messages(raw, f"messages.{index}"))
        metadata = body.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise BadRequest("metadata: must be an object")
        stream = body.get("stream", False)
        if not isinstance(stream, bool):
            raise BadRequest("stream: must be a boolean")
        # top_k, context_management, service_tier, container, mcp_servers and other
        # Anthropic-only fields have no canonical name and are dropped rather than put in
        # ``extra``, which any provider would receive. Claude Code sends several of them
        # on every call (docs/agents.md).
        output_config = body.get("output_config")
        if output_config is not None and not isinstance(output_config, dict):
            raise BadRequest("output_config: must be an object")
        output_config = output_config or {}
        return ChatRequest(
            model=_string(body.get("model"), "model"),
            messages=messages,
            tools=_tools(body.get("tools")),
            tool_choice=_tool_choice(body.get("tool_choice")),
            parallel_tool_calls=_parallel_tool_calls(body.get("tool_choice")),
            temperature=_number(body.get("temperature"), "temperature"),
            top_p=_number(body.get("top_p"), "top_p"),
            max_tokens=max_tokens,
            stop=_strings(body.get("stop_sequences"), "stop_sequences"),
            stream=stream,
            include_usage=True,  # Anthropic streams always carry usage.
            user=_optional_string((metadata or {}).get("user_id"), "metadata.user_id"),
            reasoning=_reasoning(body.get("thinking"), output_config.get("effort")),
            response_format=_output_format(body, output_config),
        )

    def encode_response(self, response: ChatResponse, request: ChatRequest | None = None) -> bytes:
        """A Messages API ``message`` object."""
        return orjson.dumps(message_object(response))

    def stream_encoder(self, request: ChatRequest) -> AnthropicStreamEncoder:
        """A fresh SSE encoder for one answer to ``request``."""
        return AnthropicStreamEncoder(request.model)

    def encode_error(self, error: ModelwayError) -> bytes:
        """``{"type": "error", "error": {...}}`` in Anthropic's error vocabulary."""
        return orjson.dumps(error_object(error))


# --- request decoding ----------------------------------------------------------------


def _system(raw: Any, where: str) -> list[Message]:
    """The system message for the top-level ``system`` or a ``role: "system"`` turn's content."""
    if isinstance(raw, str):
        return [Message(role="system", content=[TextPart(raw)])] if raw else []
    if not isinstance(raw, list):
        raise BadRequest(f"{where}: must be a string or a list of text blocks")
    parts: list[Part] = []
    for index, block in enumerate(raw):
        if _block_type(block, f"{where}.{index}") != "text":
            raise BadRequest(f"{where}.{index}.type: system blocks must be 'text'")
        parts.append(TextPart(_string(block.get("text"), f"{where}.{index}.text", empty=True)))
    return [Message(role="system", content=parts)] if parts else []


def _reasoning(thinking: Any, effort: Any) -> Reasoning | None:
    """``thinking`` (enabled with a budget, adaptive, disabled) and ``output_config.effort``."""
    if effort is not None and (not isinstance(effort, str) or effort not in EFFORTS):
        raise BadRequest(f"output_config.effort: must be one of {', '.join(EFFORTS)}")
    if thinking is None:
        return Reasoning(effort=effort) if effort else None
    if not isinstance(thinking, dict):
        raise BadRequest("thinking: must be an object")
    kind = thinking.get("type")
    if kind == "disabled":
        return Reasoning(effort="none")
    if kind == "adaptive":
        return Reasoning(effort=effort or "high")  # Anthropic's default effort
    if kind != "enabled":
        raise BadRequest("thinking.type: must be 'enabled', 'adaptive' or 'disabled'")
    tokens = thinking.get("budget_tokens")
    if type(tokens) is not int or tokens < 1:
        raise BadRequest("thinking.budget_tokens: required, a positive integer")
    return Reasoning(effort=effort, budget_tokens=tokens)


def _output_format(body: dict[str, Any], output_config: dict[str, Any]) -> ResponseFormat | None:
    """Structured output: ``output_config.format``, or the beta's top-level ``output_format``."""
    where = "output_config.format"
    raw = output_config.get("format")
    if raw is None:
        where, raw = "output_format", body.get("output_format")
    if raw is None:
        return None
    if not isinstance(raw, dict) or raw.get("type") != "json_schema":
        raise BadRequest(f"{where}: must be an object of type 'json_schema'")
    schema = raw.get("schema")
    if not isinstance(schema, dict):
        raise BadRequest(f"{where}.schema: required, a JSON Schema object")
    return ResponseFormat(type="json_schema", schema=schema)


def _signature(block: dict[str, Any], key: str, where: str) -> str | None:
    """A thinking block's signature in canonical form (see ``Message.reasoning_signature``)."""
    value = block.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{where}.{key}: must be a string")
    owner = value.partition(":")[0]
    if owner in _SIGNATURE_OWNERS:
        return value  # another provider's, handed out by this gateway: kept opaque
    return tagged(REDACTED if key == "data" else "anthropic", value)


def _messages(raw: Any, where: str) -> list[Message]:
    if not isinstance(raw, dict):
        raise BadRequest(f"{where}: expected an object")
    role = raw.get("role")
    content = raw.get("content")
    if role == "system":
        # Not in Anthropic's public API, but Claude Code sends such turns mid-conversation;
        # they stay where they are (providers with one system prompt join them into it).
        return _system(content, f"{where}.content")
    if role not in ("user", "assistant"):  # a tuple: a list or an object is no role, no TypeError
        raise BadRequest(f"{where}.role: must be 'user', 'assistant' or 'system', got {role!r}")
    if isinstance(content, str):
        return [Message(role=role, content=[TextPart(content)])]
    if not isinstance(content, list):
        raise BadRequest(f"{where}.content: must be a string or a list of content blocks")
    messages: list[Message] = []
    parts: list[Part] = []
    calls: list[ToolCall] = []
    thoughts: list[str] = []
    signature: str | None = None
    for index, block in enumerate(content):
        path = f"{where}.content.{index}"
        kind = _block_type(block, path)
        if role == "assistant" and kind == "thinking":
            # Earlier thinking, sent back so the provider that wrote it can check it.
            thoughts.append(_string(block.get("thinking"), f"{path}.thinking", empty=True))
            signature = signature or _signature(block, "signature", path)
            continue
        if role == "assistant" and kind == "redacted_thinking":
            signature = signature or _signature(block, "data", path)
            continue
        if kind not in _ROLE_BLOCKS[role]:
            raise _unexpected_block(kind, role, path)
        if kind == "tool_result":
            # A canonical tool result is its own message, so the user turn splits around it.
            if parts:
                messages.append(Message(role="user", content=parts))
                parts = []
            messages.append(_tool_result(block, path))
        elif kind == "tool_use":
            calls.append(_tool_use(block, path))
        else:
            parts.append(_part(block, kind, path))
    if parts or calls or thoughts or signature or not messages:
        message = Message(role=role, content=parts, tool_calls=calls)
        message.reasoning = "".join(thoughts) if thoughts else None
        message.reasoning_signature = signature
        messages.append(message)
    return messages


def _block_type(block: Any, where: str) -> str:
    if not isinstance(block, dict):
        raise BadRequest(f"{where}: expected a content block object")
    kind = block.get("type")
    if not isinstance(kind, str):
        raise BadRequest(f"{where}.type: required, a string")
    return kind


def _unexpected_block(kind: str, role: str, where: str) -> BadRequest:
    if kind in _KNOWN_BLOCKS:
        return BadRequest(f"{where}.type: {kind!r} blocks are not allowed in {role} messages")
    if kind in _UNSUPPORTED_BLOCKS:
        return BadRequest(f"{where}.type: {kind!r} blocks are not supported by this gateway")
    return BadRequest(f"{where}.type: unknown block type {kind!r}")


def _part(block: dict[str, Any], kind: str, where: str) -> Part:
    if kind == "text":
        return TextPart(_string(block.get("text"), f"{where}.text", empty=True))
    source = block.get("source")
    if not isinstance(source, dict):
        raise BadRequest(f"{where}.source: required, an object")
    source_type = source.get("type")
    if source_type == "base64":
        return ImagePart(
            data=_string(source.get("data"), f"{where}.source.data"),
            media_type=_string(source.get("media_type"), f"{where}.source.media_type"),
        )
    if source_type == "url":
        return ImagePart(url=_string(source.get("url"), f"{where}.source.url"))
    raise BadRequest(f"{where}.source.type: must be 'base64' or 'url', got {source_type!r}")


def _tool_use(block: dict[str, Any], where: str) -> ToolCall:
    arguments = block.get("input", {})
    if not isinstance(arguments, dict):
        raise BadRequest(f"{where}.input: must be an object")
    return ToolCall(
        id=_string(block.get("id"), f"{where}.id"),
        name=_string(block.get("name"), f"{where}.name"),
        arguments=arguments_text(arguments, f"{where}.input"),
    )


def _tool_result(block: dict[str, Any], where: str) -> Message:
    content = block.get("content", "")
    if isinstance(content, str):
        parts: list[Part] = [TextPart(content)] if content else []
    elif isinstance(content, list):
        parts = []
        for index, item in enumerate(content):
            kind = _block_type(item, f"{where}.content.{index}")
            if kind not in ("text", "image"):
                raise BadRequest(f"{where}.content.{index}.type: must be 'text' or 'image'")
            parts.append(_part(item, kind, f"{where}.content.{index}"))
    else:
        raise BadRequest(f"{where}.content: must be a string or a list of blocks")
    is_error = block.get("is_error", False)
    if not isinstance(is_error, bool):
        raise BadRequest(f"{where}.is_error: must be a boolean")
    if is_error:
        # Canonical tool messages have no error flag; the model still reads the failure.
        first = parts[0] if parts else None
        if isinstance(first, TextPart):
            parts[0] = TextPart("Error: " + first.text)
        else:
            parts.insert(0, TextPart("Error:"))
    tool_use_id = _string(block.get("tool_use_id"), f"{where}.tool_use_id")
    return Message(role="tool", content=parts, tool_call_id=tool_use_id)


def _tools(raw: Any) -> list[Tool]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise BadRequest("tools: must be a list")
    tools: list[Tool] = []
    for index, spec in enumerate(raw):
        where = f"tools.{index}"
        if not isinstance(spec, dict):
            raise BadRequest(f"{where}: expected an object")
        if spec.get("type") not in (None, "custom"):
            raise BadRequest(f"{where}.type: server tool {spec['type']!r} is not supported")
        schema = spec.get("input_schema")
        if not isinstance(schema, dict):
            raise BadRequest(f"{where}.input_schema: required, a JSON Schema object")
        description = spec.get("description", "")
        if not isinstance(description, str):
            raise BadRequest(f"{where}.description: must be a string")
        name = _string(spec.get("name"), f"{where}.name")
        tools.append(Tool(name=name, description=description, parameters=schema))
    return tools


def _parallel_tool_calls(raw: Any) -> bool | None:
    """``tool_choice.disable_parallel_tool_use`` (checked by ``_tool_choice`` first)."""
    disabled = raw.get("disable_parallel_tool_use") if isinstance(raw, dict) else None
    if disabled is None:
        return None
    if not isinstance(disabled, bool):
        raise BadRequest("tool_choice.disable_parallel_tool_use: must be a boolean")
    return not disabled


def _tool_choice(raw: Any) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise BadRequest("tool_choice: must be an object")
    kind = raw.get("type")
    if kind == "tool":
        return _string(raw.get("name"), "tool_choice.name")
    if not isinstance(kind, str) or kind not in _TOOL_CHOICES:
        raise BadRequest(f"tool_choice.type: must be auto, any, tool or none, got {kind!r}")
    return _TOOL_CHOICES[kind]


def _string(value: Any, where: str, *, empty: bool = False) -> str:
    if not isinstance(value, str) or (not empty and not value):
        raise BadRequest(f"{where}: required, a {'string' if empty else 'non-empty string'}")
    return value


def _optional_string(value: Any, where: str) -> str | None:
    return None if value is None else _string(value, where, empty=True)


def _number(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise BadRequest(f"{where}: must be a number")
    return float(value)


def _strings(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise BadRequest(f"{where}: must be a list of strings")
    return list(value)
