"""What a provider adapter is: a translator between canonical structs and one wire format.

Adapters are sans-IO, like ``h11``: they build request bytes and parse response bytes
and never touch a socket. Credentials, base URLs and the pooled HTTP client belong to
``modelway.providers.registry.Provider``; an adapter only translates.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple, Protocol

import orjson

from modelway.errors import CONTEXT_TOO_LONG, BadRequest
from modelway.types import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    StreamEvent,
)


class HttpRequest(NamedTuple):
    """A request to send; ``path`` is appended to the provider's base URL."""

    method: str
    path: str
    body: bytes | None = None
    headers: dict[str, str] = {}


class StreamDecoder(Protocol):
    """Turns upstream stream bytes, fed as they arrive, into canonical events."""

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        """Events completed by this chunk. Raises ``UndecodableResponse`` on a corrupt item."""
        ...

    def close(self) -> list[StreamEvent]:
        """Events left at the end. Raises ``StreamTruncated`` if the finish marker never came."""
        ...


class Adapter(Protocol):
    """Translation for one wire format (``openai``, ``anthropic``, ``ollama``, ...)."""

    wire: str

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        """Headers that carry the key (and any fixed headers the API requires)."""
        ...

    def chat_request(self, request: ChatRequest, model: str) -> HttpRequest:
        """The upstream request for a chat call to ``model`` (streaming when ``request.stream``)."""
        ...

    def parse_chat(self, body: bytes) -> ChatResponse:
        """A non-streamed upstream answer."""
        ...

    def stream_decoder(self) -> StreamDecoder:
        """A fresh decoder for one streamed answer."""
        ...

    def embeddings_request(self, request: EmbeddingRequest, model: str) -> HttpRequest:
        """The upstream request for embeddings; ``BadRequest`` if the API has none."""
        ...

    def parse_embeddings(self, body: bytes) -> EmbeddingResponse:
        """An upstream embeddings answer."""
        ...

    def models_request(self) -> HttpRequest:
        """The upstream request that lists models."""
        ...

    def parse_models(self, body: bytes) -> list[str]:
        """Model ids from a models listing (``listed_names``); a body that is not a
        listing is an ``UpstreamError`` (``UndecodableResponse``, ``EmptyResponse``)."""
        ...

    def error_message(self, body: bytes) -> str:
        """The human message inside an upstream error body (the raw text if unparseable)."""
        ...

    def error_code(self, body: bytes) -> str | None:
        """The ``error.code`` a caller may be told for an upstream error body, in OpenAI's
        vocabulary (``context_length_exceeded``, ``insufficient_quota``), if any."""
        ...

    def error_retry_after(self, body: bytes) -> float | None:
        """Seconds an upstream error body asks to wait before trying again, where the API
        says so in the body (Gemini's ``RetryInfo``), not only in ``Retry-After``."""
        ...


#: A model name an upstream URL's path may carry: one segment, nothing the path, the
#: query or a method suffix (Gemini's ``:generateContent``) would read.
_PATH_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}")


def model_in_path(model: str, provider: str) -> str:
    """``model`` for an upstream path (Azure's deployment, Gemini's model), or
    ``BadRequest``: a name with ``/``, ``..``, ``%``, ``?``, ``#`` or ``:`` in it would
    reach another path or method than the one the caller's key was allowed and priced."""
    if _PATH_SEGMENT.fullmatch(model):
        return model
    raise BadRequest(
        f"model: {model[:100]!r} cannot name a {provider} model: it may hold only letters, "
        "digits, '.', '-' and '_' (at most 200), as a name in the upstream's URL path"
    )


#: More tokens than any call spends: a count past it is an upstream's garbage.
MAX_TOKEN_COUNT = 10**12

#: The tool a structured-output request is answered through where the provider cannot
#: take a response schema (Anthropic) or not beside tools (Gemini 2): the schema becomes
#: this tool's parameters, a call of it is required, and its arguments come back as the
#: answer's text.
STRUCTURED_OUTPUT_TOOL = "modelway_structured_output"


def token_count(value: Any) -> int:
    """A token count an upstream reported: a whole number from 0 to ``MAX_TOKEN_COUNT``,
    else 0 — a string, a fraction, a negative or a 100-bit number is no count (and would
    fail the answer's encoding, or its record, further on)."""
    if type(value) is int:
        return value if 0 <= value <= MAX_TOKEN_COUNT else 0
    if type(value) is float and value.is_integer() and 0 <= value <= MAX_TOKEN_COUNT:
        return int(value)
    return 0


#: An error ``code`` an upstream may give its caller: a short identifier.
_ERROR_CODE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def openai_error_code(body: bytes) -> str | None:
    """The ``error.code`` of an OpenAI-format error body (``context_length_exceeded``,
    ``insufficient_quota``, ``previous_response_not_found``, ...), if it has one that is a
    short identifier: what clients branch on, passed on to the caller."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    error = data.get("error") if isinstance(data, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    if isinstance(code, str) and _ERROR_CODE.fullmatch(code):
        return code
    message = error.get("message") if isinstance(error, dict) else None
    return context_too_long(message)


#: How providers say a prompt does not fit the model's context window (OpenAI-compatible
#: ones without OpenAI's code, Anthropic, Gemini).
_TOO_LONG = re.compile(
    r"maximum context length|context length exceeded|context window|prompt is too long"
    r"|reduce the length of the messages|input token count .{0,40}exceeds the maximum",
    re.IGNORECASE,
)


def context_too_long(message: Any) -> str | None:
    """``context_length_exceeded`` when an upstream's error ``message`` says the prompt
    is too long for the model (``errors.UpstreamContextWindowExceeded``), else None."""
    if isinstance(message, str) and _TOO_LONG.search(message[:2000]):
        return CONTEXT_TOO_LONG
    return None


def embedding_vectors(raw: Any) -> list[list[float]] | None:
    """``raw`` as a list of vectors of numbers, or None when it is anything else (an
    upstream's garbage must be its error, not a crash in the answer's encoding)."""
    if not isinstance(raw, list):
        return None
    vectors: list[list[float]] = []
    for vector in raw:
        if not isinstance(vector, list) or not all(type(value) in (int, float) for value in vector):
            return None
        vectors.append([float(value) for value in vector])
    return vectors


def listed_names(items: list[Any], *fields: str) -> list[str]:
    """The names in a models listing's items: of each object, the first of ``fields``
    that is a non-empty string.

    Any other item is skipped, not an error: an upstream may list an entry the gateway
    could not address (a bare string, an object without an id), and one such entry must
    not cost the caller every other model.
    """
    names: list[str] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        for field in fields:
            name = item.get(field)
            if isinstance(name, str) and name:
                names.append(name)
                break
    return names
