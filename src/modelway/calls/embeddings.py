"""What an embeddings request may ask, for every face: the gateway's two HTTP shapes and
the Python library. A caller's numbers never size the work unchecked; a text's length is
bounded by the body's (``server.max_body_bytes``) over HTTP."""

from __future__ import annotations

from typing import Any

from modelway.errors import BadRequest
from modelway.types import EmbeddingRequest

#: The most texts one request may embed (OpenAI's own limit).
MAX_INPUTS = 2048
#: The most dimensions a request may ask for: more than any embedding model has.
MAX_DIMENSIONS = 8192


def embedding_request(model: Any, texts: Any, dimensions: Any) -> EmbeddingRequest:
    """The request for ``texts`` (a string or a non-empty list of strings); else
    ``BadRequest`` naming the field."""
    if not isinstance(model, str) or not model:
        raise BadRequest("model: required, a string")
    texts = [texts] if isinstance(texts, str) else texts
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise BadRequest("input: expected a string or a non-empty list of strings")
    if len(texts) > MAX_INPUTS:
        raise BadRequest(f"input: at most {MAX_INPUTS} texts a request (not {len(texts)})")
    # ``True`` is an int to Python, not to JSON.
    if dimensions is not None and (
        not isinstance(dimensions, int)
        or isinstance(dimensions, bool)
        or not 1 <= dimensions <= MAX_DIMENSIONS
    ):
        raise BadRequest(f"dimensions: expected a whole number from 1 to {MAX_DIMENSIONS}")
    return EmbeddingRequest(model=model, input=texts, dimensions=dimensions)
