"""What an inbound dialect is: the wire format a caller speaks to the gateway.

A dialect decodes the caller's request into a canonical ``ChatRequest`` and encodes
canonical answers, stream events and errors back in the caller's format.
"""

from __future__ import annotations

from typing import Any, Protocol

import orjson

from modelway.errors import BadRequest, ModelwayError
from modelway.types import ChatRequest, ChatResponse, StreamEvent, Tool


class StreamEncoder(Protocol):
    """Encodes one answer's stream events as the bytes the caller's format puts on the wire."""

    def encode(self, event: StreamEvent) -> bytes:
        """Bytes for this event (may be empty when the format has nothing to say yet)."""
        ...

    def finish(self) -> bytes:
        """Closing bytes once the stream ended normally (e.g. ``data: [DONE]``)."""
        ...

    def error(self, error: ModelwayError) -> bytes:
        """A final error event, for a failure after the stream began."""
        ...


class Dialect(Protocol):
    """One inbound wire format."""

    name: str
    stream_media_type: str

    def decode_chat(self, body: Any) -> ChatRequest:
        """The canonical request for a parsed JSON body; ``BadRequest`` naming the bad field."""
        ...

    def encode_response(self, response: ChatResponse, request: ChatRequest | None = None) -> bytes:
        """A complete non-streamed answer to ``request`` (when known: a dialect may need
        what was asked to name things the caller's way)."""
        ...

    def stream_encoder(self, request: ChatRequest) -> StreamEncoder:
        """A fresh encoder for one streamed answer to ``request``."""
        ...

    def encode_error(self, error: ModelwayError) -> bytes:
        """The error body; the HTTP status is ``error.status``."""
        ...


def arguments_text(arguments: Any, where: str) -> str:
    """A caller's tool-call arguments (an object) as the JSON text the canonical form
    keeps; ``BadRequest`` for what JSON cannot carry on (an integer past 64 bits)."""
    try:
        return orjson.dumps(arguments).decode()
    except orjson.JSONEncodeError as exc:
        raise BadRequest(f"{where}: {exc}") from None


def allowed_tools(
    tools: list[Tool], names: list[str], mode: Any, where: str
) -> tuple[list[Tool], str]:
    """OpenAI's ``tool_choice`` of ``"type": "allowed_tools"``: of the tools offered, the
    ones the model may call this turn (named in ``names``), and ``mode`` (``auto`` or
    ``required``). The canonical request offers only those, which every provider takes."""
    if mode not in ("auto", "required"):
        raise BadRequest(f"{where}.mode: must be auto or required, got {mode!r}")
    offered = {tool.name for tool in tools}
    for index, name in enumerate(names):
        if name not in offered:
            raise BadRequest(f"{where}.tools.{index}: {name!r} is not among the tools offered")
    if not names:
        raise BadRequest(f"{where}.tools: name at least one of the tools offered")
    allowed = set(names)
    return [tool for tool in tools if tool.name in allowed], mode
