"""Adapter for Google's Gemini API (``generateContent`` / ``streamGenerateContent``).

The base URL is the API root (``https://generativelanguage.googleapis.com``), as in
Google's SDKs; the API version and the model are part of each path.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from modelway.errors import (
    BadRequest,
    EmptyResponse,
    StreamTruncated,
    UndecodableResponse,
    UpstreamStatusError,
)
from modelway.providers.base import (
    STRUCTURED_OUTPUT_TOOL,
    HttpRequest,
    context_too_long,
    listed_names,
    model_in_path,
    token_count,
)
from modelway.providers.gemini_request import generate_content_body
from modelway.reasoning import tagged
from modelway.streams import SSEDecoder
from modelway.types import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    MessageEnd,
    MessageStart,
    ReasoningDelta,
    StopReason,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallStart,
    Usage,
    UsageReport,
    fold_events,
    new_tool_call_id,
)

PROVIDER = "gemini"
API_PREFIX = "/v1beta"
#: Texts ``:batchEmbedContents`` takes at once (Google refuses more).
MAX_GEMINI_EMBEDDING_BATCH = 100

#: Gemini's ``finishReason`` in canonical terms. Any other reason (MALFORMED_FUNCTION_CALL,
#: TOO_MANY_TOOL_CALLS, OTHER, LANGUAGE, ...) is a plain stop after some answer, and
#: ``EmptyResponse`` without one: Gemini failed, it did not answer with nothing.
FINISH_REASONS: dict[str, StopReason] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    **dict.fromkeys(
        (
            *("SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII"),
            *("IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION"),
        ),
        "content_filter",
    ),
}

#: The HTTP status of each ``google.rpc.Code`` name an error body's ``status`` may carry.
ERROR_STATUSES: dict[str, int] = {
    **dict.fromkeys(("INVALID_ARGUMENT", "FAILED_PRECONDITION", "OUT_OF_RANGE"), 400),
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    **dict.fromkeys(("ALREADY_EXISTS", "ABORTED"), 409),
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    **dict.fromkeys(("UNKNOWN", "INTERNAL", "DATA_LOSS"), 500),
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}


class GeminiAdapter:
    """Translates canonical requests and answers to and from the Gemini API."""

    wire = "gemini"

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        """``x-goog-api-key``, which Google's SDKs send instead of a query parameter."""
        return {"x-goog-api-key": api_key} if api_key else {}

    def chat_request(self, request: ChatRequest, model: str) -> HttpRequest:
        """``:generateContent``, or ``:streamGenerateContent?alt=sse`` when streaming."""
        method = "streamGenerateContent?alt=sse" if request.stream else "generateContent"
        body = orjson.dumps(generate_content_body(request, model))
        headers = {"content-type": "application/json"}
        return HttpRequest("POST", f"{_model_path(model)}:{method}", body, headers)

    def parse_chat(self, body: bytes) -> ChatResponse:
        """A non-streamed ``GenerateContentResponse``: the fold of its one chunk."""
        data = _load_object(body)
        if "error" in data:
            raise upstream_error(data, body)
        reader = ChunkReader()
        try:
            events = reader.read(data)
        except (KeyError, TypeError, AttributeError) as exc:
            raise _undecodable("gemini answer has an unexpected shape", body) from exc
        if not reader.finished:
            events += reader.end("STOP")
        return fold_events(events)

    def stream_decoder(self) -> GeminiStreamDecoder:
        """A fresh decoder for one streamed answer."""
        return GeminiStreamDecoder()

    def embeddings_request(self, request: EmbeddingRequest, model: str) -> HttpRequest:
        """``:batchEmbedContents`` with one request per input text (Gemini takes 100 at most
        a batch: more is refused here, in the caller's terms, before the upstream is asked)."""
        if len(request.input) > MAX_GEMINI_EMBEDDING_BATCH:
            raise BadRequest(
                f"input: the gemini provider embeds at most {MAX_GEMINI_EMBEDDING_BATCH} "
                f"texts a request, not {len(request.input)}; send them in smaller batches"
            )
        name = _model_path(model).removeprefix(f"{API_PREFIX}/")
        requests: list[dict[str, Any]] = []
        for text in request.input:
            item: dict[str, Any] = {"model": name, "content": {"parts": [{"text": text}]}}
            if request.dimensions is not None:
                item["outputDimensionality"] = request.dimensions
            requests.append(item)
        body = orjson.dumps({"requests": requests})
        headers = {"content-type": "application/json"}
        return HttpRequest("POST", f"{_model_path(model)}:batchEmbedContents", body, headers)

    def parse_embeddings(self, body: bytes) -> EmbeddingResponse:
        """``embeddings[].values``; Gemini reports no token usage for embeddings."""
        data = _load_object(body)
        try:
            vectors = [[float(v) for v in item["values"]] for item in data["embeddings"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise _undecodable("gemini embeddings answer has an unexpected shape", body) from exc
        return EmbeddingResponse(model="", vectors=vectors)

    def models_request(self) -> HttpRequest:
        """``GET /v1beta/models``; the listing pages at 50 unless asked for more."""
        return HttpRequest("GET", f"{API_PREFIX}/models?pageSize=1000")

    def parse_models(self, body: bytes) -> list[str]:
        """``models[].name`` without its ``models/`` prefix."""
        models = _load_object(body).get("models")
        if not isinstance(models, list):
            raise _undecodable("gemini models listing has no models list", body)
        names = (name.removeprefix("models/") for name in listed_names(models, "name"))
        return [name for name in names if name]

    def error_code(self, body: bytes) -> str | None:
        """``context_length_exceeded`` for a prompt past the model's window ("The input
        token count (…) exceeds the maximum number of tokens allowed (…)"); else None:
        Gemini's ``error.status`` (``RESOURCE_EXHAUSTED``) is no OpenAI code."""
        return context_too_long(self.error_message(body))

    def error_retry_after(self, body: bytes) -> float | None:
        """``retryDelay`` of the ``RetryInfo`` in ``error.details`` (``"34s"``): Google
        sends no ``Retry-After`` header with its 429s."""
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        return retry_delay(data)

    def error_message(self, body: bytes) -> str:
        """``error.message`` of a Gemini error body, else the raw text."""
        text = body.decode(errors="replace")
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return text
        error = data.get("error") if isinstance(data, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        return message if isinstance(message, str) else text


def _model_path(model: str) -> str:
    return f"{API_PREFIX}/models/{model_in_path(model.removeprefix('models/'), PROVIDER)}"


# --- response parsing ----------------------------------------------------------------


def _load_object(body: bytes) -> dict[str, Any]:
    if not body.strip():
        raise EmptyResponse("gemini answered with an empty body", provider=PROVIDER)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _undecodable("gemini answered with a body that is not JSON", body) from exc
    if not isinstance(data, dict):
        raise _undecodable("gemini answered with JSON that is not an object", body)
    return data


def _undecodable(message: str, raw: bytes | str) -> UndecodableResponse:
    text = raw if isinstance(raw, str) else raw.decode(errors="replace")
    return UndecodableResponse(message, raw=text, provider=PROVIDER)


def parse_usage(metadata: dict[str, Any]) -> Usage:
    """Canonical usage: ``promptTokenCount`` already includes cached tokens; thinking counts
    as completion, as OpenAI counts reasoning tokens."""
    thoughts = token_count(metadata.get("thoughtsTokenCount"))
    return Usage(
        prompt_tokens=token_count(metadata.get("promptTokenCount"))
        + token_count(metadata.get("toolUsePromptTokenCount")),
        completion_tokens=token_count(metadata.get("candidatesTokenCount")) + thoughts,
        cached_tokens=token_count(metadata.get("cachedContentTokenCount")),
        reasoning_tokens=thoughts,
    )


def retry_delay(data: Any) -> float | None:
    """Seconds the ``google.rpc.RetryInfo`` of an error body asks to wait, if it has one."""
    error = data.get("error") if isinstance(data, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    for detail in details if isinstance(details, list) else ():
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                seconds = float(delay[:-1])
            except ValueError:
                continue
            if math.isfinite(seconds) and seconds >= 0:
                return seconds
    return None


def upstream_error(data: Any, raw: bytes) -> UpstreamStatusError:
    """The error a Gemini ``{"error": {...}}`` body describes, with its HTTP status."""
    error = data.get("error") if isinstance(data, dict) else None
    error = error if isinstance(error, dict) else {}
    status = str(error.get("status") or "INTERNAL")
    code = error.get("code")
    if not isinstance(code, int) or not 400 <= code <= 599:
        code = ERROR_STATUSES.get(status, 500)
    message = str(error.get("message") or "no message")
    failure = UpstreamStatusError(
        f"gemini {status}: {message}", upstream_status=code, body=raw, provider=PROVIDER
    )
    failure.retry_after = retry_delay(data)
    return failure


class ChunkReader:
    """Turns ``GenerateContentResponse`` objects (a whole answer or a stream's chunks) into
    canonical events; Gemini sends each function call whole, never in pieces."""

    def __init__(self) -> None:
        self.started = False
        self.finished = False
        self._calls = 0
        self._answered = False
        self._usage: dict[str, Any] | None = None
        self._signed = False

    def read(self, data: dict[str, Any]) -> list[StreamEvent]:
        """The events one response object adds; nothing once the answer has finished."""
        if self.finished:
            return []
        events: list[StreamEvent] = []
        if not self.started:
            self.started = True
            events.append(MessageStart(id=data.get("responseId") or "", model=_model(data)))
        if isinstance(data.get("usageMetadata"), dict):
            self._usage = data["usageMetadata"]  # cumulative: the latest is the total
        candidates = data.get("candidates") or []
        if not candidates:
            feedback = data.get("promptFeedback") or {}
            if feedback.get("blockReason"):
                # The prompt itself was blocked: no candidate is generated at all.
                events += self.end("SAFETY")
            return events
        candidate = candidates[0]
        for part in (candidate.get("content") or {}).get("parts") or []:
            events += self._part(part)
        if candidate.get("finishReason"):
            events += self.end(candidate["finishReason"])
        return events

    def end(self, reason: str) -> list[StreamEvent]:
        """``MessageEnd`` for a finish reason, and the usage reported so far; ``EmptyResponse``
        for a failure reason (see ``FINISH_REASONS``) with no answer."""
        self.finished = True
        if reason not in FINISH_REASONS and not self._answered:
            raise EmptyResponse(f"gemini finished with {reason} and no answer", provider=PROVIDER)
        stop = FINISH_REASONS.get(reason, "stop")
        if self._calls and stop == "stop":
            stop = "tool_calls"  # Gemini says STOP after function calls too.
        events: list[StreamEvent] = [MessageEnd(stop)]
        if self._usage is not None:
            events.append(UsageReport(parse_usage(self._usage)))
        return events

    def _part(self, part: dict[str, Any]) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        signature = part.get("thoughtSignature")
        if isinstance(signature, str) and signature and not self._signed:
            # The first signature is the one Gemini checks (see ``generate_content_body``).
            self._signed = True
            events.append(ReasoningDelta(signature=tagged(PROVIDER, signature)))
        text = part.get("text")
        if part.get("thought"):
            if isinstance(text, str) and text:
                events.append(ReasoningDelta(text))
            return events
        if "functionCall" in part or (isinstance(text, str) and text):
            self._answered = True
        if "functionCall" in part and part["functionCall"]["name"] == STRUCTURED_OUTPUT_TOOL:
            # The structured answer (gemini_request._structured_output_tools) is its text.
            arguments = orjson.dumps(part["functionCall"].get("args") or {}).decode()
            return [*events, TextDelta(arguments)]
        if "functionCall" in part:
            call = part["functionCall"]
            index = self._calls
            self._calls += 1
            # Older Gemini versions send no call id; newer ones may.
            call_id = call.get("id") or new_tool_call_id()
            arguments = orjson.dumps(call.get("args") or {}).decode()
            return [
                *events,
                ToolCallStart(index=index, id=call_id, name=call["name"]),
                ToolCallDelta(index=index, arguments=arguments),
            ]
        if isinstance(text, str) and text:
            events.append(TextDelta(text))
        return events


def _model(data: dict[str, Any]) -> str:
    return str(data.get("modelVersion") or "").removeprefix("models/")


# --- streaming -----------------------------------------------------------------------


class GeminiStreamDecoder:
    """Turns ``streamGenerateContent?alt=sse`` bytes into canonical stream events.

    Gemini has no ``[DONE]``: the chunk that carries a ``finishReason`` ends the answer.
    """

    def __init__(self) -> None:
        self._sse = SSEDecoder()
        self._reader = ChunkReader()

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        """Events completed by this chunk."""
        events: list[StreamEvent] = []
        for item in self._sse.feed(chunk):
            events += self._decode(item.data)
        return events

    def close(self) -> list[StreamEvent]:
        """Events left at the end; ``StreamTruncated`` if no chunk carried a finishReason."""
        truncated = StreamTruncated(
            "the gemini stream was cut off before its end", provider=PROVIDER
        )
        events: list[StreamEvent] = []
        try:
            for item in self._sse.close():
                events += self._decode(item.data)
        except UndecodableResponse as exc:
            # A half-received last chunk is the stream being cut off, not a corrupt one.
            if self._reader.finished:
                raise
            raise truncated from exc
        if not self._reader.finished:
            raise truncated
        return events

    def _decode(self, text: str) -> list[StreamEvent]:
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise _undecodable("gemini stream chunk is not JSON", text) from exc
        if not isinstance(data, dict):
            raise _undecodable("gemini stream chunk is not a JSON object", text)
        if "error" in data:
            raise upstream_error(data, text.encode())
        try:
            return self._reader.read(data)
        except (KeyError, TypeError, AttributeError) as exc:
            raise _undecodable("gemini stream chunk has an unexpected shape", text) from exc
