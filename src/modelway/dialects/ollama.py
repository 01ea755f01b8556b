"""Ollama's native ``/api/chat`` format, as callers speak it to the gateway."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from modelway.dialects.base import arguments_text
from modelway.errors import BadRequest, ModelwayError
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
    StopReason,
    StreamEvent,
    TextDelta,
    TextPart,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolCallStart,
    Usage,
    UsageReport,
)

_ROLES = ("system", "user", "assistant", "tool")
#: Ollama images carry no media type; the base64 of each format's magic bytes tells it.
_IMAGE_SIGNATURES = (
    ("iVBORw0KGgo", "image/png"),
    ("/9j/", "image/jpeg"),
    ("R0lGOD", "image/gif"),
    ("UklGR", "image/webp"),
)
#: Timing fields Ollama reports; a translated answer has no such timings, so they are 0.
DURATIONS = {
    "total_duration": 0,
    "load_duration": 0,
    "prompt_eval_duration": 0,
    "eval_duration": 0,
}


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise BadRequest(message)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# --- decoding requests ----------------------------------------------------------------


def _decode_image(value: Any, where: str) -> ImagePart:
    _require(isinstance(value, str) and bool(value), f"{where}: expected a base64 string")
    data = str(value)
    if data.startswith("data:") and ";base64," in data:
        header, _, data = data.partition(";base64,")
        return ImagePart(data=data, media_type=header[5:] or "image/png")
    media_type = next((t for sig, t in _IMAGE_SIGNATURES if data.startswith(sig)), "image/png")
    return ImagePart(data=data, media_type=media_type)


def _decode_tool_calls(calls: Any, where: str, turn: int) -> list[ToolCall]:
    _require(isinstance(calls, list), f"{where}: expected a list")
    decoded: list[ToolCall] = []
    for i, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        _require(isinstance(function, dict), f"{where}.{i}.function: expected an object")
        assert isinstance(call, dict) and isinstance(function, dict)
        name, arguments = function.get("name"), function.get("arguments", {})
        _require(isinstance(name, str) and bool(name), f"{where}.{i}.function.name: required")
        _require(
            isinstance(arguments, dict | str),
            f"{where}.{i}.function.arguments: expected an object",
        )
        text = (
            arguments
            if isinstance(arguments, str)
            else arguments_text(arguments, f"{where}.{i}.function.arguments")
        )
        # Ollama calls have no ids; make ones unique in the conversation for other providers.
        call_id = call.get("id") if isinstance(call.get("id"), str) else f"call_{turn}_{i}"
        decoded.append(ToolCall(id=str(call_id), name=str(name), arguments=text or "{}"))
    return decoded


class _ToolResultLinker:
    """Finds the call a ``tool`` message answers: Ollama links results by name, not id."""

    def __init__(self) -> None:
        self._pending: list[ToolCall] = []

    def calls_made(self, calls: list[ToolCall]) -> None:
        self._pending = list(calls)

    def answered(self, tool_name: str | None) -> str | None:
        """The id of the first unanswered call named ``tool_name``, else of the first
        unanswered one (Ollama itself goes by order: a name that matches no call is the
        caller's slip, and a tool result with no id is refused by OpenAI and Anthropic)."""
        for i, call in enumerate(self._pending):
            if call.name == tool_name:
                return self._pending.pop(i).id
        return self._pending.pop(0).id if self._pending else None


def _decode_message(raw: Any, turn: int, linker: _ToolResultLinker) -> Message:
    where = f"messages.{turn}"
    _require(isinstance(raw, dict), f"{where}: expected an object")
    role = raw.get("role")
    _require(role in _ROLES, f"{where}.role: expected one of {', '.join(_ROLES)}, got {role!r}")
    content = raw.get("content")
    _require(content is None or isinstance(content, str), f"{where}.content: expected a string")
    parts: list[Part] = [TextPart(content)] if content else []
    images = raw.get("images")
    if images is not None:
        _require(isinstance(images, list), f"{where}.images: expected a list of base64 strings")
        parts += [_decode_image(image, f"{where}.images.{i}") for i, image in enumerate(images)]
    if role == "tool":
        tool_name = raw.get("tool_name")
        _require(
            tool_name is None or isinstance(tool_name, str), f"{where}.tool_name: expected a string"
        )
        return Message(
            role="tool",
            content=parts,
            tool_call_id=linker.answered(tool_name),
            name=tool_name,
        )
    message = Message(role=role, content=parts)
    thinking = raw.get("thinking")
    if role == "assistant" and thinking:
        _require(isinstance(thinking, str), f"{where}.thinking: expected a string")
        message.reasoning = thinking
    if raw.get("tool_calls"):
        _require(role == "assistant", f"{where}.tool_calls: only assistant messages call tools")
        message.tool_calls = _decode_tool_calls(raw["tool_calls"], f"{where}.tool_calls", turn)
        linker.calls_made(message.tool_calls)
    return message


def _decode_tools(tools: Any) -> list[Tool]:
    _require(isinstance(tools, list), "tools: expected a list")
    decoded = []
    for i, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        _require(isinstance(function, dict), f"tools.{i}.function: expected an object")
        assert isinstance(function, dict)
        name = function.get("name")
        _require(isinstance(name, str) and bool(name), f"tools.{i}.function.name: required")
        description = function.get("description") or ""
        _require(isinstance(description, str), f"tools.{i}.function.description: expected text")
        parameters = function.get("parameters") or {"type": "object", "properties": {}}
        _require(isinstance(parameters, dict), f"tools.{i}.function.parameters: expected object")
        decoded.append(Tool(str(name), description, parameters))
    return decoded


class _Sampling(NamedTuple):
    temperature: float | None
    top_p: float | None
    max_tokens: int | None
    stop: list[str]


def _decode_options(options: Any) -> _Sampling:
    """The canonical sampling fields from Ollama's ``options``; other options are dropped."""
    _require(isinstance(options, dict), "options: expected an object")
    for name in ("temperature", "top_p"):
        _require(
            options.get(name) is None or _is_number(options[name]),
            f"options.{name}: expected a number",
        )
    num_predict = options.get("num_predict")
    _require(
        num_predict is None or (isinstance(num_predict, int) and not isinstance(num_predict, bool)),
        "options.num_predict: expected an integer",
    )
    stop = options.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    _require(
        stop is None or (isinstance(stop, list) and all(isinstance(s, str) for s in stop)),
        "options.stop: expected a list of strings",
    )
    return _Sampling(
        temperature=options.get("temperature"),
        top_p=options.get("top_p"),
        # Ollama's -1 (no limit) and -2 (fill the context) mean "no max_tokens".
        max_tokens=num_predict if num_predict is not None and num_predict > 0 else None,
        stop=list(stop or []),
    )


def decode_chat_request(body: Any) -> ChatRequest:
    """The canonical request for a parsed ``/api/chat`` body."""
    _require(isinstance(body, dict), "the request body must be a JSON object")
    model = body.get("model")
    _require(isinstance(model, str) and bool(model), "model: required, a non-empty string")
    messages = body.get("messages")
    _require(isinstance(messages, list) and bool(messages), "messages: required, a non-empty list")
    # Ollama streams unless the caller says "stream": false; null means the default.
    stream = body.get("stream")
    _require(stream is None or isinstance(stream, bool), "stream: expected a boolean")
    sampling = _decode_options({} if body.get("options") is None else body["options"])
    linker = _ToolResultLinker()
    return ChatRequest(
        model=str(model),
        messages=[_decode_message(m, i, linker) for i, m in enumerate(messages)],
        tools=_decode_tools(body["tools"]) if body.get("tools") else [],
        stream=stream is not False,
        include_usage=True,
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        max_tokens=sampling.max_tokens,
        stop=sampling.stop,
        response_format=_decode_format(body.get("format")),
        reasoning=decode_think(body.get("think")),
    )


def decode_think(raw: Any) -> Reasoning | None:
    """Ollama's ``think``: true, false, or a level (``low``, ``medium``, ``high``)."""
    if raw is None:
        return None
    if raw is True:
        return Reasoning(effort="medium")
    if raw is False:
        return Reasoning(effort="none")
    _require(raw in ("low", "medium", "high"), "think: expected a boolean or low, medium or high")
    return Reasoning(effort=raw)


def _decode_format(raw: Any) -> ResponseFormat | None:
    """Ollama's ``format``: ``"json"`` for any JSON, or a JSON schema; absent is free text."""
    if raw is None or raw == "":
        return None
    if raw == "json":
        return ResponseFormat(type="json_object")
    _require(isinstance(raw, dict), 'format: expected "json" or a JSON schema object')
    return ResponseFormat(type="json_schema", schema=raw)


# --- encoding answers -----------------------------------------------------------------


def created_at(seconds: float) -> str:
    """An RFC 3339 UTC timestamp, as Ollama writes ``created_at``."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def done_reason(reason: StopReason | None) -> str:
    """Ollama's ``done_reason``: it knows only ``stop`` and ``length``."""
    return "length" if reason == "length" else "stop"


def _unloads(keep_alive: Any) -> bool:
    """Whether ``keep_alive`` is zero (``0``, ``"0"``, ``"0s"``, ``"0m"``): Ollama's unload."""
    if isinstance(keep_alive, bool) or keep_alive is None:
        return False
    if isinstance(keep_alive, int | float):
        return keep_alive == 0
    if isinstance(keep_alive, str):
        number = keep_alive.strip().rstrip("hms")
        try:
            return float(number) == 0
        except ValueError:
            return False
    return False


def model_load(body: dict[str, Any], generate: bool) -> bytes | None:
    """The answer to Ollama's load (or, with ``keep_alive`` 0, unload) call, else None.

    An ``/api/chat`` with no messages, an ``/api/generate`` with no prompt (nor images):
    Ollama loads the model and says ``done_reason: load``, and clients send it to warm a
    model up. Here the models run at their providers, so there is nothing to load: the
    call is admitted and routed as any (a model nobody serves is still a 404) and answered
    at once, no upstream asked.
    """
    if generate:
        if body.get("prompt") or body.get("images"):
            return None
    elif body.get("messages") not in (None, []):
        return None
    model = body.get("model")
    answer: dict[str, Any] = {"model": model, "created_at": created_at(time.time())}
    if generate:
        answer["response"] = ""
    else:
        answer["message"] = {"role": "assistant", "content": ""}
    answer["done"] = True
    answer["done_reason"] = "unload" if _unloads(body.get("keep_alive")) else "load"
    return orjson.dumps(answer)


def _arguments_object(arguments: str) -> dict[str, Any]:
    # Ollama clients validate arguments as an object; text that is not one cannot be sent.
    try:
        value = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def encode_tool_calls(calls: list[ToolCall]) -> list[dict[str, Any]]:
    """Ollama's ``tool_calls`` list (no ids: Ollama has none)."""
    return [
        {"function": {"name": c.name, "arguments": _arguments_object(c.arguments)}} for c in calls
    ]


def encode_usage(usage: Usage | None) -> dict[str, int]:
    """Ollama's ``prompt_eval_count`` and ``eval_count`` (nothing when usage is unknown)."""
    if usage is None:
        return {}
    return {"prompt_eval_count": usage.prompt_tokens, "eval_count": usage.completion_tokens}


def encode_error_body(error: ModelwayError) -> bytes:
    """Ollama's error body."""
    return orjson.dumps({"error": error.message})


class OllamaStreamEncoder:
    """Canonical events as Ollama NDJSON chunks, ending with a ``done: true`` line."""

    def __init__(self, model: str) -> None:
        self._model = model
        self._calls: dict[int, tuple[str, list[str]]] = {}
        self._stop_reason: StopReason | None = None
        self._usage: Usage | None = None
        self._finished = False

    def _line(self, chunk: dict[str, Any]) -> bytes:
        return orjson.dumps(chunk) + b"\n"

    def _message_line(self, message: dict[str, Any]) -> bytes:
        return self._line(
            {
                "model": self._model,
                "created_at": created_at(time.time()),
                "message": message,
                "done": False,
            }
        )

    def _final_line(self) -> bytes:
        if self._finished:
            return b""
        self._finished = True
        return self._line(
            {
                "model": self._model,
                "created_at": created_at(time.time()),
                "message": {"role": "assistant", "content": ""},
                "done": True,
                "done_reason": done_reason(self._stop_reason),
                **DURATIONS,
                **encode_usage(self._usage),
            }
        )

    def _tool_calls_line(self) -> bytes:
        calls = [
            ToolCall(id="", name=name, arguments="".join(parts))
            for _, (name, parts) in sorted(self._calls.items())
        ]
        return self._message_line(
            {"role": "assistant", "content": "", "tool_calls": encode_tool_calls(calls)}
        )

    def encode(self, event: StreamEvent) -> bytes:
        if isinstance(event, TextDelta):
            if not event.text:
                return b""
            return self._message_line({"role": "assistant", "content": event.text})
        if isinstance(event, ReasoningDelta):
            if not event.text:
                return b""  # Ollama has no signatures
            return self._message_line({"role": "assistant", "content": "", "thinking": event.text})
        if isinstance(event, ToolCallDelta):
            # Ollama sends each call whole, so arguments wait until the answer ends.
            self._calls.setdefault(event.index, ("", []))[1].append(event.arguments)
            return b""
        if isinstance(event, ToolCallStart):
            self._calls[event.index] = (event.name, [])
            return b""
        if isinstance(event, MessageStart):
            self._model = event.model or self._model
            return b""
        if isinstance(event, MessageEnd):
            self._stop_reason = event.stop_reason
            return self._tool_calls_line() if self._calls else b""
        if isinstance(event, UsageReport):
            # Some upstreams report usage in every chunk (vLLM's continuous usage), some
            # after the stop: the done line waits for the stream's end and takes the last.
            self._usage = event.usage
        return b""

    def finish(self) -> bytes:
        return self._final_line()

    def error(self, error: ModelwayError) -> bytes:
        self._finished = True
        return encode_error_body(error) + b"\n"


class OllamaDialect:
    """Callers using Ollama's native ``/api/chat``."""

    name = "ollama"
    stream_media_type = "application/x-ndjson"

    def decode_chat(self, body: Any) -> ChatRequest:
        return decode_chat_request(body)

    def model_load(self, body: dict[str, Any]) -> bytes | None:
        return model_load(body, generate=False)

    def encode_response(self, response: ChatResponse, request: ChatRequest | None = None) -> bytes:
        message: dict[str, Any] = {"role": "assistant", "content": response.message.text()}
        if response.message.reasoning:
            message["thinking"] = response.message.reasoning
        if response.message.tool_calls:
            message["tool_calls"] = encode_tool_calls(response.message.tool_calls)
        return orjson.dumps(
            {
                "model": response.model,
                "created_at": created_at(response.created or time.time()),
                "message": message,
                "done": True,
                "done_reason": done_reason(response.stop_reason),
                **DURATIONS,
                **encode_usage(response.usage),
            }
        )

    def stream_encoder(self, request: ChatRequest) -> OllamaStreamEncoder:
        return OllamaStreamEncoder(request.model)

    def encode_error(self, error: ModelwayError) -> bytes:
        return encode_error_body(error)
