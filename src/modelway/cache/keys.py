"""The cache key of a chat request: the same question, however it was asked, same key.

The key hashes the canonical request (``modelway.types``), so the OpenAI, Anthropic and
Ollama forms of one question share an entry, with what does not change the answer taken
out: the model name the caller typed (the resolved alias replaces it), whether it
streams, whether it wants usage in the stream, and fields that only label the call.
The namespace goes into the hash too, and names the entry's place: ``namespace_slot``,
the namespace with the clears it has seen, so a clear moves its entries out of reach.
"""

from __future__ import annotations

import hashlib

import msgspec

from modelway.types import ChatRequest

#: ``extra`` fields that label or route a call but do not change its answer.
_LABELS = frozenset({"stream_options", "metadata", "user", "store", "service_tier"})
_encoder = msgspec.json.Encoder(order="sorted")


def request_key(request: ChatRequest, alias: str, namespace: str) -> str:
    """A hex SHA-256 of the normalised ``request`` for ``alias`` within ``namespace``."""
    extra = request.extra
    if not _LABELS.isdisjoint(extra):
        extra = {name: value for name, value in extra.items() if name not in _LABELS}
    normalised = msgspec.structs.replace(
        request,
        model=alias,
        stream=False,
        include_usage=False,
        user=None,
        instructions=None,  # a label: the same text is the first system message
        extra=extra,
        # JSON's 0 and 0.0 are one number; dialects decode them as int or float.
        temperature=None if request.temperature is None else float(request.temperature),
        top_p=None if request.top_p is None else float(request.top_p),
    )
    name = namespace.encode(errors="surrogatepass")
    # Length first: no namespace can run on into the request's bytes and pass for another.
    digest = hashlib.sha256(b"%d:" % len(name))
    digest.update(name)
    digest.update(_encoder.encode(normalised))
    return digest.hexdigest()


def namespace_slot(namespace: str, everything: int, own: int) -> str:
    """Where ``namespace``'s entries live after ``everything`` whole-cache clears and ``own``
    of its own: ``<everything>.<own>:<namespace>``.

    The counts come first and hold no colon, so all that follows the first colon is the
    namespace, whatever characters a team's name holds: two namespaces, or one at two
    generations, never share a slot (a name never poses as another's cleared namespace).
    """
    return f"{everything}.{own}:{namespace}"


#: What an idempotency key's slot starts with (``MemoryBackend`` holds those apart).
IDEMPOTENCY_PREFIX = "idem:"


def idempotency_slot(idempotency_key: str) -> str:
    """Where an ``Idempotency-Key`` is kept within its namespace (never the key itself)."""
    digest = hashlib.sha256(idempotency_key.encode(errors="surrogatepass")).hexdigest()
    return IDEMPOTENCY_PREFIX + digest
