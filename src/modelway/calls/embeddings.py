"""What an embeddings request may ask, for every face: the gateway's two HTTP shapes and
the Python library. A caller's numbers never size the work unchecked; a text's length is
bounded by the body's (``server.max_body_bytes``) over HTTP."""

from __future__ import annotations

from typing import Any

from modelway.errors import BadRequest
from modelway.tokens import BYTES_PER_TOKEN, decode_tokens, utf8_size
from modelway.types import EmbeddingRequest, Usage

#: The most texts one request may embed (OpenAI's own limit).
MAX_INPUTS = 2048
#: The most dimensions a request may ask for: more than any embedding model has.
MAX_DIMENSIONS = 8192
#: The most token ids one request may send (OpenAI's own limit a request).
MAX_TOKENS = 300_000


def embedding_request(model: Any, texts: Any, dimensions: Any) -> EmbeddingRequest:
    """The request for ``texts`` (a string, a non-empty list of strings, or OpenAI's token
    arrays); else ``BadRequest`` naming the field."""
    if not isinstance(model, str) or not model:
        raise BadRequest("model: required, a string")
    texts = _texts(texts)
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


def _texts(raw: Any) -> list[str]:
    """The texts of ``input``. Token arrays (a list of ints, or a list of such lists: what
    OpenAI's API takes, and LangChain's ``OpenAIEmbeddings`` sends by default) are
    decoded as ``cl100k_base``, the encoding of OpenAI's embedding models, so every
    provider gets text; at most ``MAX_TOKENS`` ids a request."""
    if isinstance(raw, str):
        return [raw]
    if not isinstance(raw, list) or not raw:
        raise BadRequest("input: expected a string, a non-empty list of strings or token arrays")
    if all(isinstance(item, str) for item in raw):
        return raw
    arrays = [raw] if all(_is_token(item) for item in raw) else raw
    if not all(isinstance(a, list) and a and all(_is_token(t) for t in a) for a in arrays):
        raise BadRequest("input: expected a string, a non-empty list of strings or token arrays")
    if len(arrays) > MAX_INPUTS:
        raise BadRequest(f"input: at most {MAX_INPUTS} texts a request (not {len(arrays)})")
    if sum(len(array) for array in arrays) > MAX_TOKENS:
        raise BadRequest(f"input: at most {MAX_TOKENS} token ids a request")
    texts = []
    for index, array in enumerate(arrays):
        text = decode_tokens(array)
        if text is None:
            raise BadRequest(f"input.{index}: token ids of cl100k_base expected")
        texts.append(text)
    return texts


def _is_token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def counted_usage(request: EmbeddingRequest, reported: Usage) -> Usage:
    """``reported``, or counted from the texts when the provider reported none (Gemini for
    embeddings, some OpenAI-format servers): token budgets, TPM and prices still hold."""
    if reported.prompt_tokens or reported.estimated:
        return reported
    texts = sum(utf8_size(text) for text in request.input)
    return Usage(prompt_tokens=texts // BYTES_PER_TOKEN, estimated=True)
