"""Helpers shared by the adapter specs: feeding a stream decoder as a socket would."""

from __future__ import annotations

from collections.abc import Iterable

from modelway.providers.base import Adapter
from modelway.types import StreamEvent


def decode_stream(adapter: Adapter, chunks: Iterable[bytes]) -> list[StreamEvent]:
    """Every event a fresh decoder of ``adapter`` yields for ``chunks``, then at close."""
    decoder = adapter.stream_decoder()
    events: list[StreamEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    events.extend(decoder.close())
    return events
