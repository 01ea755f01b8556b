"""Adapter for Anthropic's Messages API (``POST /v1/messages``), streaming included.

The base URL is the host root (``https://api.anthropic.com``), as in Anthropic's SDKs.
This module builds the requests; reading the answers is ``anthropic_answers``'s.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from modelway.errors import QUOTA_SPENT, BadRequest
from modelway.providers.anthropic_answers import (
    ERROR_STATUSES,
    PROVIDER,
    REDACTED,
    STOP_REASONS,
    AnthropicStreamDecoder,
    load_object,
    parse_message,
    parse_usage,
    undecodable,
    upstream_error,
)
from modelway.providers.base import (
    STRUCTURED_OUTPUT_TOOL,
    HttpRequest,
    context_too_long,
    listed_names,
)
from modelway.reasoning import (
    ANTHROPIC_MIN_BUDGET,
    anthropic_adaptive_effort,
    anthropic_thinks,
    budget,
    signature_for,
)
from modelway.types import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ImagePart,
    Message,
    Part,
    ResponseFormat,
    TextPart,
    Tool,
    ToolCall,
)

API_VERSION = "2023-06-01"
#: Anthropic requires ``max_tokens``; this is sent when the caller gave none.
DEFAULT_MAX_TOKENS = 4096
_TOOL_CHOICES = {"auto": "auto", "none": "none", "required": "any"}


class AnthropicAdapter:
    """Translates canonical requests and answers to and from the Messages API."""

    wire = "anthropic"

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        """``x-api-key`` plus the ``anthropic-version`` every call must name."""
        headers = {"anthropic-version": API_VERSION}
        if api_key:
            headers["x-api-key"] = api_key
        return headers

    def chat_request(self, request: ChatRequest, model: str) -> HttpRequest:
        """``POST /v1/messages`` for ``request`` addressed to ``model``."""
        body = orjson.dumps(messages_body(request, model))
        return HttpRequest("POST", "/v1/messages", body, {"content-type": "application/json"})

    def parse_chat(self, body: bytes) -> ChatResponse:
        """A non-streamed Messages API answer."""
        data = load_object(body)
        if data.get("type") == "error":
            raise upstream_error(data, body)
        try:
            return parse_message(data)
        except (KeyError, TypeError, AttributeError) as exc:
            raise undecodable("anthropic message has an unexpected shape", body) from exc

    def stream_decoder(self) -> AnthropicStreamDecoder:
        """A fresh decoder for one streamed answer."""
        return AnthropicStreamDecoder()

    def embeddings_request(self, request: EmbeddingRequest, model: str) -> HttpRequest:
        """Always ``BadRequest``: Anthropic has no embeddings API."""
        raise BadRequest(_NO_EMBEDDINGS)

    def parse_embeddings(self, body: bytes) -> EmbeddingResponse:
        """Always ``BadRequest``: Anthropic has no embeddings API."""
        raise BadRequest(_NO_EMBEDDINGS)

    def models_request(self) -> HttpRequest:
        """``GET /v1/models``; the listing pages at 20 unless asked for more."""
        return HttpRequest("GET", "/v1/models?limit=1000")

    def parse_models(self, body: bytes) -> list[str]:
        """The ``data[].id`` of a models listing."""
        data = load_object(body)
        models = data.get("data")
        if not isinstance(models, list):
            raise undecodable("anthropic models listing has no data list", body)
        return listed_names(models, "id")

    def error_code(self, body: bytes) -> str | None:
        """``insufficient_quota`` for an account out of credit, which Anthropic says with a
        402 ``billing_error`` or, as it long did, a 400 ``invalid_request_error`` whose
        message is about the credit balance or the workspace's usage limit; else None
        (Anthropic's ``error.type`` is a kind, not a code)."""
        error = _error_object(body)
        kind, message = error.get("type"), error.get("message")
        if kind == "billing_error":
            return QUOTA_SPENT
        if isinstance(message, str) and _QUOTA_WORDS.search(message):
            return QUOTA_SPENT
        return context_too_long(message)  # "prompt is too long: 210000 tokens > 200000"

    def error_retry_after(self, body: bytes) -> float | None:
        """None: Anthropic says when to come back in ``retry-after`` alone."""
        return None

    def error_message(self, body: bytes) -> str:
        """``error.message`` of an Anthropic error body, else the raw text."""
        message = _error_object(body).get("message")
        return message if isinstance(message, str) else body.decode(errors="replace")


#: What Anthropic's 400 says when the account, not the request, is at fault.
_QUOTA_WORDS = re.compile(
    r"credit balance is too low|reached your specified API usage limits", re.IGNORECASE
)


def _error_object(body: bytes) -> dict[str, Any]:
    """The ``error`` object of an Anthropic error body (empty when it has none)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    error = data.get("error") if isinstance(data, dict) else None
    return error if isinstance(error, dict) else {}


_NO_EMBEDDINGS = "the anthropic provider has no embeddings API; route embeddings elsewhere"


# --- request building ----------------------------------------------------------------


def messages_body(request: ChatRequest, model: str) -> dict[str, Any]:
    """The JSON body of a Messages API request; ``request.extra`` is merged last."""
    body: dict[str, Any] = {"model": model, "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS}
    system = request.system_text()
    if system:
        body["system"] = system
    if request.response_format is not None:
        body.update(_structured_output_tools(request, request.response_format))
    elif request.tools:
        body["tools"] = [_tool(tool) for tool in request.tools]
        if request.tool_choice:
            body["tool_choice"] = _tool_choice(request.tool_choice)
    _one_tool_call_at_most(request, body)
    thinking = _thinking(request, model, body)
    if thinking:
        body["thinking"] = thinking
        if thinking["type"] == "adaptive":
            body["output_config"] = {"effort": thinking.pop("effort")}
    body["messages"] = _turns(request.messages, with_thinking=bool(thinking))
    body.update(_sampling(request, thinking=bool(thinking)))
    if request.stop:
        body["stop_sequences"] = request.stop
    if request.stream:
        body["stream"] = True
    if request.user:
        body["metadata"] = {"user_id": request.user}
    body.update(request.extra)
    return body


def _thinking(request: ChatRequest, model: str, body: dict[str, Any]) -> dict[str, Any] | None:
    """The ``thinking`` setting for ``request``, raising ``max_tokens`` in ``body`` to fit it:
    a budget, or for Claude 4.6 and later adaptive thinking with its effort (which the
    caller puts in ``output_config``).

    None when the caller asked for none, the model cannot think, or Anthropic would refuse
    it: a forced tool call (``tool_choice`` any/tool, structured output) or a tool-use turn
    being continued whose thinking block the caller did not send back.
    """
    wanted = request.reasoning
    if wanted is None or wanted.effort == "none" or not anthropic_thinks(model):
        return None
    if body.get("tool_choice", {}).get("type") in ("any", "tool"):
        return None
    last = next((m for m in reversed(request.messages) if m.role == "assistant"), None)
    if last is not None and last.tool_calls and not _thinking_block(last):
        return None
    tokens = budget(wanted)
    if request.max_tokens is None:
        body["max_tokens"] = tokens + DEFAULT_MAX_TOKENS  # thinking counts toward max_tokens
    adaptive = anthropic_adaptive_effort(wanted, model)
    if adaptive is not None:  # the model keeps its thinking within max_tokens itself
        return {"type": "adaptive", "effort": adaptive}
    if request.max_tokens is not None:
        tokens = min(tokens, request.max_tokens - 1)
    if tokens < ANTHROPIC_MIN_BUDGET:
        return None
    return {"type": "enabled", "budget_tokens": tokens}


def _sampling(request: ChatRequest, *, thinking: bool) -> dict[str, float]:
    """``temperature`` or ``top_p``, never both: current Claude models answer 400
    "temperature and top_p cannot both be specified", so temperature wins. With thinking on
    Anthropic accepts no temperature but 1 and top_p of 0.95 or more. Anthropic's
    temperature goes up to 1 where OpenAI's goes to 2: more is sent as 1, its most random,
    rather than refused by Anthropic."""
    if request.temperature is not None and not thinking:
        return {"temperature": min(request.temperature, 1.0)}
    if request.top_p is not None and (not thinking or request.top_p >= 0.95):
        return {"top_p": request.top_p}
    return {}


def _thinking_block(message: Message) -> dict[str, Any] | None:
    """The thinking block Anthropic wrote for this turn, when the caller kept it."""
    signature = signature_for(PROVIDER, message.reasoning_signature)
    if signature is not None:
        return {"type": "thinking", "thinking": message.reasoning or "", "signature": signature}
    data = signature_for(REDACTED, message.reasoning_signature)
    return {"type": "redacted_thinking", "data": data} if data is not None else None


def _turns(messages: list[Message], *, with_thinking: bool = False) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        if message.role == "system":
            continue
        blocks = _blocks(message, f"messages.{index}")
        if with_thinking and message.role == "assistant":
            # Only Anthropic's own signed blocks go back, first in their turn.
            thought = _thinking_block(message)
            if thought is not None:
                blocks.insert(0, thought)
        if not blocks:
            # Anthropic rejects turns with no content; an empty turn carries nothing anyway.
            continue
        role = "assistant" if message.role == "assistant" else "user"
        # Anthropic requires user and assistant turns to alternate, so neighbours merge;
        # this is also how consecutive tool results become one user turn.
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        if turn["role"] == "user":
            # Anthropic wants a user turn's tool_result blocks before its other content.
            turn["content"].sort(key=lambda block: block["type"] != "tool_result")
    return turns


def _blocks(message: Message, where: str) -> list[dict[str, Any]]:
    blocks = _part_blocks(message.content, where)
    if message.role == "tool":
        if not message.tool_call_id:
            raise BadRequest(f"{where}.tool_call_id: a tool result needs the id of its call")
        result: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.tool_call_id}
        if blocks:
            result["content"] = blocks
        return [result]
    for number, call in enumerate(message.tool_calls):
        blocks.append(
            {
                "type": "tool_use",
                "id": call.id,
                "name": call.name,
                "input": _tool_input(call, f"{where}.tool_calls.{number}.arguments"),
            }
        )
    return blocks


def _part_blocks(parts: list[Part], where: str) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for number, part in enumerate(parts):
        if isinstance(part, TextPart):
            if part.text:  # Anthropic rejects empty text blocks.
                blocks.append({"type": "text", "text": part.text})
        else:
            blocks.append({"type": "image", "source": _image_source(part, f"{where}.{number}")})
    return blocks


def _image_source(part: ImagePart, where: str) -> dict[str, str]:
    if part.url is None:
        return {
            "type": "base64",
            "media_type": part.media_type or "image/png",
            "data": part.data or "",
        }
    if not part.url.startswith("data:"):
        return {"type": "url", "url": part.url}
    # Anthropic's url source must be fetchable, so a data: URL is sent as base64.
    header, _, data = part.url[5:].partition(",")
    media_type, _, encoding = header.partition(";")
    if encoding != "base64":
        raise BadRequest(f"{where}: image data URLs must be base64-encoded")
    return {"type": "base64", "media_type": media_type or "image/png", "data": data}


def _tool_input(call: ToolCall, where: str) -> dict[str, Any]:
    try:
        value = orjson.loads(call.arguments or "{}")
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"{where}: tool call {call.id!r} arguments are not valid JSON") from exc
    if not isinstance(value, dict):
        raise BadRequest(f"{where}: tool call {call.id!r} arguments must be a JSON object")
    return value


def _tool(tool: Tool) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": tool.name,
        "input_schema": tool.parameters or {"type": "object", "properties": {}},
    }
    if tool.description:
        spec["description"] = tool.description
    return spec


def _one_tool_call_at_most(request: ChatRequest, body: dict[str, Any]) -> None:
    """``parallel_tool_calls: false`` as Anthropic says it, on the tool choice it goes with
    (``auto`` when none was given); never beside ``none``, where no tool is called."""
    if request.parallel_tool_calls is not False or "tools" not in body:
        return
    choice = body.setdefault("tool_choice", {"type": "auto"})
    if choice["type"] != "none":
        choice["disable_parallel_tool_use"] = True


def _tool_choice(choice: str) -> dict[str, str]:
    kind = _TOOL_CHOICES.get(choice)
    return {"type": kind} if kind else {"type": "tool", "name": choice}


def _structured_output_tools(request: ChatRequest, wanted: ResponseFormat) -> dict[str, Any]:
    """``tools`` and ``tool_choice`` that make the answer a call of the output tool.

    With the caller's own tools on offer the model must call *some* tool ("any"): one
    of the caller's, or the output tool to answer; otherwise the output tool is forced.
    """
    schema = wanted.schema if wanted.schema is not None else {"type": "object"}
    if schema.get("type") != "object":
        # Anthropic's input_schema must describe an object.
        raise BadRequest(
            "response_format.json_schema.schema: the anthropic provider needs a schema "
            'of "type": "object" at the top level'
        )
    if any(tool.name == STRUCTURED_OUTPUT_TOOL for tool in request.tools):
        raise BadRequest(f"tools: the name {STRUCTURED_OUTPUT_TOOL!r} is reserved")
    about = f"Give your final answer by calling this tool; its input is the answer ({wanted.name})."
    if wanted.description:
        about = f"{about} {wanted.description}"
    output = {"name": STRUCTURED_OUTPUT_TOOL, "description": about, "input_schema": schema}
    offered = [] if request.tool_choice == "none" else [_tool(t) for t in request.tools]
    if not offered:
        choice = {"type": "tool", "name": STRUCTURED_OUTPUT_TOOL}
    elif request.tool_choice in (None, "auto", "required"):
        choice = {"type": "any"}
    else:
        choice = _tool_choice(request.tool_choice)
    return {"tools": [*offered, output], "tool_choice": choice}


#: The answer side lives in ``anthropic_answers``; these are its names callers use here.
__all__ = [
    "ERROR_STATUSES",
    "PROVIDER",
    "REDACTED",
    "STOP_REASONS",
    "STRUCTURED_OUTPUT_TOOL",
    "AnthropicAdapter",
    "AnthropicStreamDecoder",
    "messages_body",
    "parse_usage",
    "upstream_error",
]
