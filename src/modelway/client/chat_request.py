"""Turn a client call's arguments into a canonical ``ChatRequest``.

Messages and tools may be OpenAI-style dicts, canonical structs, or a mix. Dicts go
through the OpenAI dialect's decoder (one way to read that format, with its error
messages); canonical structs are kept as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from modelway.dialects.openai import decode_chat_request
from modelway.errors import BadRequest
from modelway.types import ChatRequest, Message, Tool

MessageLike = Message | Mapping[str, Any]
ToolLike = Tool | Mapping[str, Any]

#: Keyword arguments of the openai SDK and LiteLLM that configure the client, not the
#: request: sent on, a provider would get them in its body (a per-call key too) and none
#: would take effect, so each is refused with what to do instead.
_CLIENT_OPTIONS = {
    "timeout": "set timeouts on the Client (Client(timeouts=...)) or the model alias",
    "request_timeout": "set timeouts on the Client (Client(timeouts=...)) or the model alias",
    "api_key": "keys come from the environment or modelway.yaml, per provider",
    "api_base": "base URLs come from the environment or modelway.yaml, per provider",
    "base_url": "base URLs come from the environment or modelway.yaml, per provider",
    "extra_headers": "headers go on a provider or deployment in modelway.yaml",
    "extra_query": "query parameters are not sent; configure the provider's base_url",
    "extra_body": "pass the body's fields as keyword arguments themselves",
    "num_retries": "use max_retries=",
}

# Stand-ins that keep the dicts' positions (and so their error paths) while the decoder
# reads them; the canonical structs take their places afterwards.
_MESSAGE_STAND_IN: dict[str, Any] = {"role": "user", "content": ""}


def _message_body(message: object) -> object:
    if isinstance(message, Message):
        return _MESSAGE_STAND_IN
    return dict(message) if isinstance(message, Mapping) else message


def _tool_stand_in(tool: Tool) -> dict[str, Any]:
    return {"type": "function", "function": {"name": tool.name}}


def build_chat_request(
    model: str,
    messages: Sequence[MessageLike],
    *,
    stream: bool,
    tools: Sequence[ToolLike] | None,
    tool_choice: str | Mapping[str, Any] | None,
    temperature: float | None,
    max_tokens: int | None,
    top_p: float | None,
    stop: str | Sequence[str] | None,
    extra: Mapping[str, Any],
) -> ChatRequest:
    """The canonical request; ``BadRequest`` names the offending field."""
    if isinstance(messages, str | bytes | Mapping) or not isinstance(messages, Sequence):
        raise BadRequest("messages: expected a list of messages")
    if tools is not None and isinstance(tools, str | bytes | Mapping):
        raise BadRequest("tools: expected a list of tools")
    options = sorted(extra.keys() & _CLIENT_OPTIONS.keys())
    if options:
        name = options[0]
        raise BadRequest(
            f"{name}: a client option, not part of the request: {_CLIENT_OPTIONS[name]}"
        )
    body: dict[str, Any] = {
        **extra,
        "model": model,
        "messages": [_message_body(m) for m in messages],
        "tool_choice": tool_choice,
        "temperature": temperature,
        "max_tokens": max_tokens,
        "top_p": top_p,
        "stop": stop if stop is None or isinstance(stop, str) else list(stop),
    }
    if tools:
        body["tools"] = [_tool_stand_in(t) if isinstance(t, Tool) else t for t in tools]
    request = decode_chat_request(body)
    decoded_messages = [
        given if isinstance(given, Message) else decoded
        for given, decoded in zip(messages, request.messages, strict=True)
    ]
    decoded_tools = [
        given if isinstance(given, Tool) else decoded
        for given, decoded in zip(tools or (), request.tools, strict=True)
    ]
    # The client always wants usage: it is what ``client.usage`` adds up.
    return msgspec.structs.replace(
        request,
        messages=decoded_messages,
        tools=decoded_tools,
        stream=stream,
        include_usage=True,
    )
