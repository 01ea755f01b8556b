"""The mock's embeddings: what each API's body asks for, and its answer, deterministic.

A text's vector is ``engine.mock_embedding`` (the same text, the same vector); token
counts are its words. A body that lacks what its API needs (OpenAI's and Ollama's
``input``, Gemini's ``requests`` with their parts) is refused 400, as the real APIs do.
"""

from __future__ import annotations

import base64
import struct
from typing import Any

from modelway.errors import BadRequest
from modelway.mock.engine import (
    EMBEDDING_DIMENSIONS,
    MAX_EMBEDDING_DIMENSIONS,
    count_words,
    mock_embedding,
)


def embedding_inputs(value: Any) -> list[str]:
    """Texts to embed from an ``input`` field: a string, strings, or token-id lists."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        if all(isinstance(v, int) for v in value):
            return [" ".join(map(str, value))]
        if all(isinstance(v, str) for v in value):
            return list(value)
        if all(isinstance(v, list) for v in value):
            return [" ".join(map(str, v)) for v in value]
    raise BadRequest("input: expected a string or a non-empty list of strings")


def gemini_embed_requests(body: Any) -> list[dict[str, Any]]:
    """The ``requests`` of a ``batchEmbedContents`` body, each with ``content.parts``."""
    requests = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(requests, list) or not requests:
        raise BadRequest("requests: required, a non-empty list")
    for index, item in enumerate(requests):
        content = item.get("content") if isinstance(item, dict) else None
        parts = content.get("parts") if isinstance(content, dict) else None
        if not isinstance(parts, list) or not all(isinstance(p, dict) for p in parts):
            raise BadRequest(f"requests.{index}.content.parts: required, a list of parts")
    return requests


def dimensions_asked(body: dict[str, Any]) -> int:
    """The vectors' length a body asks for (``dimensions``), within the mock's bound."""
    value = body.get("dimensions")
    if isinstance(value, int) and 0 < value <= MAX_EMBEDDING_DIMENSIONS:
        return value
    return EMBEDDING_DIMENSIONS


def openai_embeddings(body: dict[str, Any], texts: list[str]) -> dict[str, Any]:
    """OpenAI's ``/v1/embeddings`` answer for ``texts`` (base64 when asked, as the SDK does)."""
    dimensions = dimensions_asked(body)
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for index, text in enumerate(texts):
        vector = mock_embedding(text, dimensions)
        embedding: Any = vector
        if as_base64:
            # The openai SDK asks for base64 by default: little-endian float32s.
            embedding = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    tokens = sum(count_words(text) for text in texts)
    return {
        "object": "list",
        "data": data,
        "model": body.get("model", "mock"),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def ollama_embeddings(body: dict[str, Any], texts: list[str]) -> dict[str, Any]:
    """Ollama's ``/api/embed`` answer for ``texts``."""
    dimensions = dimensions_asked(body)
    return {
        "model": body.get("model", "mock"),
        "embeddings": [mock_embedding(text, dimensions) for text in texts],
        "total_duration": 0,
        "load_duration": 0,
        "prompt_eval_count": sum(count_words(text) for text in texts),
    }
