"""What the cache keeps: a whole canonical answer, who gave it, and when.

Entries are msgspec bytes of the canonical ``ChatResponse``, never a dialect's body, so
an answer asked for in one dialect is replayed in any other (``replay`` gives its stream
events, reasoning, tool calls, usage and stop reason included). An idempotency record is
the fingerprint of the request that took the key, and its answer once there is one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec

from modelway.types import ChatResponse, StreamEvent, response_events


class Entry(msgspec.Struct, frozen=True):
    """A stored answer: ``provider`` and ``model`` answered it at ``stored_at`` (epoch s)."""

    response: ChatResponse
    provider: str
    model: str
    stored_at: float

    def age(self, now: float) -> int:
        """Whole seconds since it was stored (the ``Age`` header)."""
        return max(0, int(now - self.stored_at))


class IdempotencyRecord(msgspec.Struct, frozen=True):
    """An ``Idempotency-Key`` taken by the request with ``fingerprint``; ``entry`` once answered."""

    fingerprint: str
    entry: Entry | None = None


_entry_encoder = msgspec.msgpack.Encoder()
_entry_decoder = msgspec.msgpack.Decoder(Entry)
_record_decoder = msgspec.msgpack.Decoder(IdempotencyRecord)


def encode(value: Entry | IdempotencyRecord) -> bytes:
    """``value`` as stored."""
    return _entry_encoder.encode(value)


def decode_entry(data: bytes) -> Entry | None:
    """The entry ``data`` holds; None for bytes no longer readable (written by another version)."""
    try:
        return _entry_decoder.decode(data)
    except msgspec.DecodeError:
        return None


def decode_record(data: bytes) -> IdempotencyRecord | None:
    """The idempotency record ``data`` holds; None if unreadable."""
    try:
        return _record_decoder.decode(data)
    except msgspec.DecodeError:
        return None


async def replay(response: ChatResponse) -> AsyncIterator[StreamEvent]:
    """A stored answer as the stream events that describe it."""
    for event in response_events(response):
        yield event
