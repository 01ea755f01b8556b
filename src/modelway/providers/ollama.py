"""Ollama's native API: ``/api/chat`` (NDJSON stream), ``/api/embed`` and ``/api/tags``.

The base URL is the host root (``http://localhost:11434``). Ollama needs no key; one is
sent as a bearer token when given, for Ollama behind a proxy or on ollama.com.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import orjson

from modelway.errors import (
    BadRequest,
    EmptyResponse,
    StreamTruncated,
    UndecodableResponse,
    UpstreamStatusError,
)
from modelway.providers.base import HttpRequest, embedding_vectors, listed_names, token_count
from modelway.reasoning import effort, ollama_thinks
from modelway.streams import NDJSONDecoder
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

PROVIDER = "ollama"
_JSON = {"content-type": "application/json"}


def _parse_json(body: bytes) -> Any:
    if not body.strip():
        raise EmptyResponse("ollama sent an empty body", provider=PROVIDER)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UndecodableResponse(
            "ollama sent a body that is not JSON",
            raw=body.decode("utf-8", "replace"),
            provider=PROVIDER,
        ) from None


def _parse_object(body: bytes) -> dict[str, Any]:
    data = _parse_json(body)
    if not isinstance(data, dict):
        raise UndecodableResponse(
            "ollama sent JSON that is not an object",
            raw=body.decode("utf-8", "replace"),
            provider=PROVIDER,
        )
    if "error" in data:
        # Ollama reports failures as {"error": "..."}; one in a 200 body is still a failure.
        raise UpstreamStatusError(
            f"ollama error: {data['error']}", upstream_status=500, body=body, provider=PROVIDER
        )
    return data


def new_message_id() -> str:
    """An id for an answer; Ollama gives its answers none."""
    return f"ollama-{uuid.uuid4().hex}"


def parse_created_at(value: Any) -> int:
    """Unix seconds from Ollama's RFC 3339 ``created_at`` (0 when missing or malformed)."""
    if not isinstance(value, str):
        return 0
    try:
        return int(datetime.fromisoformat(value).timestamp())
    except ValueError:
        return 0


def parse_usage(data: dict[str, Any]) -> Usage | None:
    """Usage from ``prompt_eval_count`` / ``eval_count``; ``None`` when Ollama sent neither."""
    if "prompt_eval_count" not in data and "eval_count" not in data:
        return None
    return Usage(
        prompt_tokens=token_count(data.get("prompt_eval_count")),
        completion_tokens=token_count(data.get("eval_count")),
    )


def arguments_text(arguments: Any) -> str:
    """Canonical JSON-text arguments from Ollama's arguments object."""
    if isinstance(arguments, str):
        return arguments or "{}"
    return orjson.dumps(arguments if arguments is not None else {}).decode()


def parse_tool_call(raw: Any) -> ToolCall:
    """A canonical tool call; older Ollama versions send no ids, so a fresh one stands in."""
    call = raw if isinstance(raw, dict) else {}
    function = call.get("function") or {}
    return ToolCall(
        id=str(call.get("id") or new_tool_call_id()),
        name=str(function.get("name") or ""),
        arguments=arguments_text(function.get("arguments")),
    )


def stop_reason(done_reason: Any, has_tool_calls: bool) -> StopReason:
    """The canonical stop reason; Ollama says ``stop`` even when it called tools."""
    if has_tool_calls:
        return "tool_calls"
    return "length" if done_reason == "length" else "stop"


# --- requests -------------------------------------------------------------------------


def _inline_image(part: ImagePart, where: str) -> str:
    if part.data is not None:
        return part.data
    url = part.url or ""
    if url.startswith("data:") and ";base64," in url:
        return url.partition(";base64,")[2]
    raise BadRequest(
        f"{where}: Ollama takes inline (base64) images only, not an image URL ({url[:80]})"
    )


def _tool_arguments(call: ToolCall, where: str) -> dict[str, Any]:
    # Ollama wants arguments as a JSON object; canonical arguments are the model's text.
    try:
        arguments = orjson.loads(call.arguments or "{}")
    except orjson.JSONDecodeError:
        raise BadRequest(f"{where}.arguments: not valid JSON: {call.arguments[:80]!r}") from None
    if not isinstance(arguments, dict):
        raise BadRequest(f"{where}.arguments: Ollama needs a JSON object")
    return arguments


def _encode_message(message: Message, where: str, tool_names: dict[str, str]) -> dict[str, Any]:
    encoded: dict[str, Any] = {"role": message.role, "content": message.prompt_text()}
    if message.role == "tool":
        # Ollama links a result to its call by tool name, not by id.
        name = tool_names.get(message.tool_call_id or "") or message.name
        if name:
            encoded["tool_name"] = name
        images = [
            _inline_image(part, f"{where}.content.{i}")
            for i, part in enumerate(message.content)
            if isinstance(part, ImagePart)
        ]
        if images:
            encoded["images"] = images  # a message of any role may carry images
        return encoded
    images = [
        _inline_image(part, f"{where}.content.{i}")
        for i, part in enumerate(message.content)
        if isinstance(part, ImagePart)
    ]
    if images:
        encoded["images"] = images
    if message.tool_calls:
        calls = []
        for i, call in enumerate(message.tool_calls):
            tool_names[call.id] = call.name
            arguments = _tool_arguments(call, f"{where}.tool_calls.{i}")
            calls.append({"function": {"name": call.name, "arguments": arguments}})
        encoded["tool_calls"] = calls
    return encoded


def build_chat_body(request: ChatRequest, model: str) -> dict[str, Any]:
    """The ``/api/chat`` body for a canonical request."""
    tool_names: dict[str, str] = {}
    body: dict[str, Any] = {
        "model": model,
        "messages": [
            _encode_message(m, f"messages.{i}", tool_names) for i, m in enumerate(request.messages)
        ],
        # Ollama streams unless told otherwise, so always say which.
        "stream": request.stream,
    }
    # Ollama has no tool_choice; "none" is honoured by offering no tools, others are hints.
    if request.tools and request.tool_choice != "none":
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.parameters or {"type": "object", "properties": {}},
                },
            }
            for t in request.tools
        ]
    options: dict[str, Any] = {}
    if request.temperature is not None:
        options["temperature"] = request.temperature
    if request.top_p is not None:
        options["top_p"] = request.top_p
    if request.max_tokens is not None:
        options["num_predict"] = request.max_tokens
    if request.stop:
        options["stop"] = request.stop
    if options:
        body["options"] = options
    if request.response_format is not None:
        # Ollama's ``format`` takes a JSON schema, or "json" for any JSON.
        body["format"] = request.response_format.schema or "json"
    if request.reasoning is not None and ollama_thinks(model):
        # Ollama takes true/false, or a level for the models that have levels (gpt-oss).
        level = effort(request.reasoning)
        body["think"] = level if "gpt-oss" in model and level in _LEVELS else level != "none"
    body.update(request.extra)
    return body


_LEVELS = ("low", "medium", "high")


# --- streams --------------------------------------------------------------------------


class OllamaStreamDecoder:
    """NDJSON chat chunks to canonical events; the ``done: true`` chunk ends the stream."""

    def __init__(self) -> None:
        self._lines = NDJSONDecoder()
        self._started = False
        self._done = False
        self._tool_calls = 0

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        for line in self._lines.feed(chunk):
            self._line(line, events)
        return events

    def close(self) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        for line in self._lines.close():
            self._line(line, events)
        if not self._done:
            raise StreamTruncated("the ollama stream was cut off before its end", provider=PROVIDER)
        return events

    def _line(self, line: bytes, events: list[StreamEvent]) -> None:
        try:
            chunk = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise UndecodableResponse(
                "ollama sent a stream line that is not JSON",
                raw=line.decode("utf-8", "replace"),
                provider=PROVIDER,
            ) from None
        if not isinstance(chunk, dict):
            raise UndecodableResponse(
                "ollama sent a stream line that is not an object",
                raw=line.decode("utf-8", "replace"),
                provider=PROVIDER,
            )
        if "error" in chunk:
            raise UpstreamStatusError(
                f"ollama error in stream: {chunk['error']}",
                upstream_status=500,
                body=line,
                provider=PROVIDER,
            )
        if self._done:
            return
        if not self._started:
            self._started = True
            events.append(MessageStart(id=new_message_id(), model=str(chunk.get("model") or "")))
        message = chunk.get("message")
        if not isinstance(message, dict):
            message = {}
        if message.get("thinking"):
            events.append(ReasoningDelta(str(message["thinking"])))
        if message.get("content"):
            events.append(TextDelta(str(message["content"])))
        for raw in message.get("tool_calls") or ():
            call = parse_tool_call(raw)
            events.append(ToolCallStart(index=self._tool_calls, id=call.id, name=call.name))
            events.append(ToolCallDelta(index=self._tool_calls, arguments=call.arguments))
            self._tool_calls += 1
        if chunk.get("done"):
            self._done = True
            events.append(MessageEnd(stop_reason(chunk.get("done_reason"), self._tool_calls > 0)))
            usage = parse_usage(chunk)
            if usage is not None:
                events.append(UsageReport(usage))


# --- the adapter ----------------------------------------------------------------------


class OllamaAdapter:
    """Translation for Ollama's native wire format (base URL is the host root)."""

    wire = "ollama"

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        return {"authorization": f"Bearer {api_key}"} if api_key else {}

    def chat_request(self, request: ChatRequest, model: str) -> HttpRequest:
        return HttpRequest(
            "POST", "/api/chat", orjson.dumps(build_chat_body(request, model)), _JSON
        )

    def parse_chat(self, body: bytes) -> ChatResponse:
        data = _parse_object(body)
        raw = data.get("message")
        if not isinstance(raw, dict):
            raise EmptyResponse("the ollama answer has no message", provider=PROVIDER)
        message = Message(role="assistant")
        if raw.get("thinking"):
            message.reasoning = str(raw["thinking"])
        if raw.get("content"):
            message.content = [TextPart(str(raw["content"]))]
        message.tool_calls = [parse_tool_call(c) for c in raw.get("tool_calls") or ()]
        return ChatResponse(
            id=new_message_id(),
            model=str(data.get("model") or ""),
            message=message,
            stop_reason=stop_reason(data.get("done_reason"), bool(message.tool_calls)),
            usage=parse_usage(data),
            created=parse_created_at(data.get("created_at")),
        )

    def stream_decoder(self) -> OllamaStreamDecoder:
        return OllamaStreamDecoder()

    def embeddings_request(self, request: EmbeddingRequest, model: str) -> HttpRequest:
        body: dict[str, Any] = {"model": model, "input": request.input}
        if request.dimensions is not None:
            body["dimensions"] = request.dimensions
        return HttpRequest("POST", "/api/embed", orjson.dumps(body), _JSON)

    def parse_embeddings(self, body: bytes) -> EmbeddingResponse:
        data = _parse_object(body)
        raw = data.get("embeddings")
        if not isinstance(raw, list):
            raise EmptyResponse("the ollama embed answer has no embeddings", provider=PROVIDER)
        vectors = embedding_vectors(raw)
        if vectors is None:
            raise UndecodableResponse(
                "the ollama embed answer's embeddings are not lists of numbers",
                raw=body.decode("utf-8", "replace"),
            )
        prompt = data.get("prompt_eval_count")
        return EmbeddingResponse(
            model=str(data.get("model") or ""),
            vectors=vectors,
            usage=Usage(prompt_tokens=prompt if type(prompt) is int and prompt > 0 else 0),
        )

    def models_request(self) -> HttpRequest:
        return HttpRequest("GET", "/api/tags")

    def parse_models(self, body: bytes) -> list[str]:
        models = _parse_object(body).get("models")
        if not isinstance(models, list):
            raise UndecodableResponse(
                "ollama's tags answer has no models list",
                raw=body.decode("utf-8", "replace"),
                provider=PROVIDER,
            )
        return listed_names(models, "name", "model")

    def error_code(self, body: bytes) -> str | None:
        """None: Ollama's errors are a message alone."""
        return None

    def error_retry_after(self, body: bytes) -> float | None:
        """None: only the ``Retry-After`` header says when to come back."""
        return None

    def error_message(self, body: bytes) -> str:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return body.decode("utf-8", "replace")[:500]
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, str) and error:
            return error
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        return body.decode("utf-8", "replace")[:500]
