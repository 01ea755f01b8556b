"""The OpenAI Chat Completions and Embeddings API, and every server that copies it."""

from __future__ import annotations

from typing import Any

import orjson

from modelway.errors import EmptyResponse, StreamTruncated, UndecodableResponse, UpstreamStatusError
from modelway.providers.base import HttpRequest
from modelway.reasoning import openai_effort
from modelway.streams import SSEDecoder
from modelway.types import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ImagePart,
    Message,
    MessageEnd,
    MessageStart,
    ReasoningDelta,
    ResponseFormat,
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

_STOP_REASONS: dict[str, StopReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}
#: OpenAI's reasoning models: they refuse ``max_tokens`` (they want
#: ``max_completion_tokens``) and any ``temperature`` or ``top_p`` but the default.
_REASONING_MODELS = ("o1", "o3", "o4", "gpt-5")
_JSON = {"content-type": "application/json"}


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


def _parse_object(body: bytes) -> dict[str, Any]:
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
        prompt_tokens=int(raw.get("prompt_tokens") or 0),
        completion_tokens=int(raw.get("completion_tokens") or 0),
        cached_tokens=int(details.get("cached_tokens") or 0),
        cache_write_tokens=int(details.get("cache_write_tokens") or 0),
        reasoning_tokens=int(output.get("reasoning_tokens") or 0),
    )


def parse_responses_usage(raw: Any) -> Usage | None:
    """Canonical usage from a Responses API ``usage`` object (``input_tokens`` counts cached ones).

    Reasoning tokens are part of ``output_tokens`` there, so they are counted and priced.
    """
    if not isinstance(raw, dict):
        return None
    details = raw.get("input_tokens_details") or {}
    output = raw.get("output_tokens_details") or {}
    return Usage(
        prompt_tokens=int(raw.get("input_tokens") or 0),
        completion_tokens=int(raw.get("output_tokens") or 0),
        cached_tokens=int(details.get("cached_tokens") or 0),
        cache_write_tokens=int(details.get("cache_write_tokens") or 0),
        reasoning_tokens=int(output.get("reasoning_tokens") or 0)
        if isinstance(output, dict)
        else 0,
    )


def _encode_messages(messages: list[Message], *, replay_reasoning: bool) -> list[dict[str, Any]]:
    """Chat Completions messages. A tool message holds text only, so images a tool
    returned follow the run of tool results as a user message (the results must come right
    after the call that asked for them)."""
    encoded: list[dict[str, Any]] = []
    images: list[ImagePart] = []
    for message in messages:
        if message.role != "tool" and images:
            encoded.append(_tool_images(images))
            images = []
        encoded.append(_encode_message(message, replay_reasoning=replay_reasoning))
        if message.role == "tool":
            images += message.images()
    if images:
        encoded.append(_tool_images(images))
    return encoded


def _tool_images(images: list[ImagePart]) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "text", "text": "The tool results' images:"}]
    content += [{"type": "image_url", "image_url": {"url": image.data_url()}} for image in images]
    return {"role": "user", "content": content}


def _encode_message(message: Message, *, replay_reasoning: bool) -> dict[str, Any]:
    if message.role == "tool":
        return {
            "role": "tool",
            "tool_call_id": message.tool_call_id,
            "content": message.prompt_text(),
        }
    content: Any
    if all(isinstance(part, TextPart) for part in message.content):
        content = message.prompt_text()
    else:
        content = [
            {"type": "text", "text": part.text}
            if isinstance(part, TextPart)
            else {"type": "image_url", "image_url": {"url": part.data_url()}}
            for part in message.content
            if isinstance(part, TextPart | ImagePart)
        ]
    encoded: dict[str, Any] = {"role": message.role, "content": content}
    if message.name:
        encoded["name"] = message.name
    if replay_reasoning and message.role == "assistant" and message.reasoning:
        encoded["reasoning_content"] = message.reasoning
    if message.tool_calls:
        encoded["content"] = content or None
        encoded["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
    return encoded


def build_chat_body(
    request: ChatRequest, model: str, *, replay_reasoning: bool = False
) -> dict[str, Any]:
    """The Chat Completions body for a canonical request; ``replay_reasoning`` sends an
    assistant turn's thinking back as ``reasoning_content`` (see ``OpenAIAdapter``)."""
    body: dict[str, Any] = {
        "model": model,
        "messages": _encode_messages(request.messages, replay_reasoning=replay_reasoning),
    }
    if request.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.parameters,
                },
            }
            for t in request.tools
        ]
    if request.tool_choice in ("auto", "none", "required"):
        body["tool_choice"] = request.tool_choice
    elif request.tool_choice:
        body["tool_choice"] = {"type": "function", "function": {"name": request.tool_choice}}
    body.update(_sampling(request, model))
    if request.stop:
        body["stop"] = request.stop
    if request.user:
        body["user"] = request.user
    if request.stream:
        body["stream"] = True
        # Always ask for usage; the gateway drops the extra chunk if the caller did not.
        body["stream_options"] = {"include_usage": True}
    if request.response_format is not None:
        body["response_format"] = encode_response_format(request.response_format)
    if request.reasoning is not None:
        effort = openai_effort(request.reasoning, model)
        if effort is not None:
            body["reasoning_effort"] = effort
    body.update(request.extra)
    return body


def _sampling(request: ChatRequest, model: str) -> dict[str, Any]:
    """``temperature``, ``top_p`` and the output token limit in ``model``'s terms.

    A reasoning model answers 400 to any temperature or top_p but the default
    ("Unsupported value: 'temperature' does not support 0 ... Only the default (1)"), so
    a (typically translated) caller's sampling setting is left out for it.
    """
    reasoning_model = model.startswith(_REASONING_MODELS)
    sampling: dict[str, Any] = {}
    if request.temperature is not None and not reasoning_model:
        sampling["temperature"] = request.temperature
    if request.top_p is not None and not reasoning_model:
        sampling["top_p"] = request.top_p
    if request.max_tokens is not None:
        key = "max_completion_tokens" if reasoning_model else "max_tokens"
        sampling[key] = request.max_tokens
    return sampling


def _reasoning_text(raw: dict[str, Any]) -> str | None:
    """Visible thinking in an OpenAI-format message or delta: DeepSeek's
    ``reasoning_content`` or the ``reasoning`` OpenRouter, Groq and vLLM send."""
    for key in ("reasoning_content", "reasoning"):
        value = raw.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def encode_response_format(wanted: ResponseFormat) -> dict[str, Any]:
    """Chat Completions' ``response_format`` for a canonical one."""
    if wanted.type == "json_object":
        return {"type": "json_object"}
    spec: dict[str, Any] = {"name": wanted.name}
    if wanted.description is not None:
        spec["description"] = wanted.description
    if wanted.schema is not None:
        spec["schema"] = wanted.schema
    if wanted.strict is not None:
        spec["strict"] = wanted.strict
    return {"type": "json_schema", "json_schema": spec}


class ChunkDecoder:
    """``chat.completion.chunk`` events to canonical events; ``data: [DONE]`` ends the stream."""

    def __init__(self) -> None:
        self._sse = SSEDecoder()
        self._started = False
        self._done = False
        self._tool_indexes: set[int] = set()

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
            raise StreamTruncated("the upstream stream ended before [DONE]")
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
        if not self._started:
            self._started = True
            events.append(
                MessageStart(id=str(chunk.get("id") or ""), model=str(chunk.get("model") or ""))
            )
        for choice in chunk.get("choices") or ():
            self._choice(choice, events)
        usage = parse_usage(chunk.get("usage"))
        if usage is not None:
            events.append(UsageReport(usage))

    def _choice(self, choice: dict[str, Any], events: list[StreamEvent]) -> None:
        delta = choice.get("delta") or {}
        thought = _reasoning_text(delta)
        if thought is not None:
            events.append(ReasoningDelta(thought))
        if delta.get("content"):
            events.append(TextDelta(delta["content"]))
        for call in delta.get("tool_calls") or ():
            index = int(call.get("index", 0))
            function = call.get("function") or {}
            if index not in self._tool_indexes:
                self._tool_indexes.add(index)
                events.append(
                    ToolCallStart(
                        index=index,
                        id=str(call.get("id") or f"call_{index}"),
                        name=str(function.get("name") or ""),
                    )
                )
            if function.get("arguments"):
                events.append(ToolCallDelta(index=index, arguments=function["arguments"]))
        reason = choice.get("finish_reason")
        if reason:
            events.append(MessageEnd(_STOP_REASONS.get(reason, "stop")))


def upstream_stream_error(error: Any) -> UpstreamStatusError:
    """An error object sent inside a stream, as an error with a fitting status."""
    message = error.get("message") if isinstance(error, dict) else str(error)
    code = error.get("code") if isinstance(error, dict) else None
    status = code if isinstance(code, int) else 500
    return UpstreamStatusError(f"upstream error in stream: {message}", upstream_status=status)


class OpenAIAdapter:
    """Translation for the OpenAI wire format (base URL ends in ``/v1``).

    ``replays_reasoning``: send an assistant turn's thinking back as ``reasoning_content``.
    DeepSeek's thinking mode answers 400 without it on a turn that called tools; OpenAI's
    schema has no such field and strict servers (Cerebras, Groq) refuse it, so only a
    provider that asks for it is sent it.
    """

    wire = "openai"
    #: Whether ``path("responses", ...)`` reaches the upstream's Responses API (relayed to).
    speaks_responses = True
    replays_reasoning = False

    def __init__(self, *, replays_reasoning: bool = False) -> None:
        self.replays_reasoning = replays_reasoning

    def path(self, endpoint: str, model: str) -> str:
        """The URL path of ``endpoint`` (``chat/completions``, ``responses``, ``embeddings``,
        ``models``)."""
        return f"/{endpoint}"

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        return {"authorization": f"Bearer {api_key}"} if api_key else {}

    def chat_request(self, request: ChatRequest, model: str) -> HttpRequest:
        body = orjson.dumps(
            build_chat_body(request, model, replay_reasoning=self.replays_reasoning)
        )
        return HttpRequest("POST", self.path("chat/completions", model), body, _JSON)

    def parse_chat(self, body: bytes) -> ChatResponse:
        data = parse_json(body)
        choices = data.get("choices") if isinstance(data, dict) else None
        if not choices:
            raise EmptyResponse("the upstream answer has no choices")
        raw = choices[0].get("message") or {}
        message = Message(role="assistant", reasoning=_reasoning_text(raw))
        if raw.get("content"):
            message.content = [TextPart(raw["content"])]
        for call in raw.get("tool_calls") or ():
            function = call.get("function") or {}
            message.tool_calls.append(
                ToolCall(
                    id=str(call.get("id") or new_tool_call_id()),
                    name=str(function.get("name") or ""),
                    arguments=function.get("arguments") or "{}",
                )
            )
        return ChatResponse(
            id=str(data.get("id") or ""),
            model=str(data.get("model") or ""),
            message=message,
            stop_reason=_STOP_REASONS.get(choices[0].get("finish_reason") or "stop", "stop"),
            usage=parse_usage(data.get("usage")),
            created=int(data.get("created") or 0),
        )

    def stream_decoder(self) -> ChunkDecoder:
        return ChunkDecoder()

    def embeddings_request(self, request: EmbeddingRequest, model: str) -> HttpRequest:
        body: dict[str, Any] = {"model": model, "input": request.input}
        if request.dimensions is not None:
            body["dimensions"] = request.dimensions
        return HttpRequest("POST", self.path("embeddings", model), orjson.dumps(body), _JSON)

    def parse_embeddings(self, body: bytes) -> EmbeddingResponse:
        data = _parse_object(body)
        items = sorted(data.get("data") or (), key=lambda item: item.get("index", 0))
        return EmbeddingResponse(
            model=str(data.get("model") or ""),
            vectors=[item["embedding"] for item in items],
            usage=parse_usage(data.get("usage")) or Usage(),
        )

    def models_request(self) -> HttpRequest:
        return HttpRequest("GET", self.path("models", ""))

    def parse_models(self, body: bytes) -> list[str]:
        data = _parse_object(body)
        return [str(item["id"]) for item in data.get("data") or () if "id" in item]

    def error_message(self, body: bytes) -> str:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return body.decode("utf-8", "replace")[:500]
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
        return body.decode("utf-8", "replace")[:500]


class AzureAdapter(OpenAIAdapter):
    """OpenAI on Azure: the model names a deployment, every path carries ``api-version``.

    The base URL is the resource root, ``https://<resource>.openai.azure.com``.
    """

    DEFAULT_API_VERSION = "2024-10-21"
    #: Azure serves the Responses API on its v1 API (``/openai/v1/responses``, no
    #: ``api-version``), not under the deployments; ``model`` in the body names the
    #: deployment, as the relay writes it.
    speaks_responses = True

    def __init__(self, api_version: str | None = None) -> None:
        self.api_version = api_version or self.DEFAULT_API_VERSION

    def path(self, endpoint: str, model: str) -> str:
        if endpoint == "responses":
            return "/openai/v1/responses"
        if endpoint == "models":
            return f"/openai/models?api-version={self.api_version}"
        return f"/openai/deployments/{model}/{endpoint}?api-version={self.api_version}"

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        return {"api-key": api_key} if api_key else {}
