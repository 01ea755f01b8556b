"""Provider keys kept out of what an upstream sends back, even mid-stream.

Some upstreams quote the key they refused ("key sk-… revoked"), in an error status body
or in an error event in the middle of a stream. Relayed bytes are passed on as they
come and translated ones become the caller's error event, so the key is replaced in the
bytes themselves, once, where every stream is read (``HttpProvider.raw_stream``).
"""

from __future__ import annotations

#: What a key is replaced with.
MASK = b"****"
#: Shorter "keys" (an Ollama placeholder such as ``ollama``) are not secrets, and
#: replacing them would change ordinary text.
MIN_SECRET_LENGTH = 12


class StreamRedactor:
    """Replaces ``key`` in a byte stream, including a key split across chunks.

    A chunk that ends with the first bytes of the key keeps them back until the next
    chunk says whether the key follows; in practice chunks end with an event's line
    break, so nothing is held.
    """

    __slots__ = ("_first", "_held", "_key")

    def __init__(self, key: str) -> None:
        self._key = key.encode()
        self._first = self._key[:1]
        self._held = b""

    def feed(self, chunk: bytes) -> bytes:
        """The part of ``chunk`` (after anything held back) that is safe to pass on."""
        if self._held:
            chunk, self._held = self._held + chunk, b""
        if self._key in chunk:
            chunk = chunk.replace(self._key, MASK)
        position = chunk.find(self._first, max(0, len(chunk) - len(self._key) + 1))
        while position != -1:
            if self._key.startswith(chunk[position:]):
                self._held = chunk[position:]
                return chunk[:position]
            position = chunk.find(self._first, position + 1)
        return chunk

    def close(self) -> bytes:
        """What was held back when the stream ended (not the key: it never completed)."""
        held, self._held = self._held, b""
        return held


def redactor_for(key: str) -> StreamRedactor | None:
    """A redactor for a key worth hiding, or None."""
    return StreamRedactor(key) if len(key) >= MIN_SECRET_LENGTH else None
