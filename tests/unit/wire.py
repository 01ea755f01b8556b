"""Helpers shared by the adapter specs: feeding a stream decoder as a socket would."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TypeVar

import msgspec

from modelway.providers.base import Adapter
from modelway.types import StreamEvent, ToolCall, ToolCallStart


def decode_stream(adapter: Adapter, chunks: Iterable[bytes]) -> list[StreamEvent]:
    """Every event a fresh decoder of ``adapter`` yields for ``chunks``, then at close."""
    decoder = adapter.stream_decoder()
    events: list[StreamEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    events.extend(decoder.close())
    return events


#: An id ``new_tool_call_id`` makes: random, so specs compare where they fall, not their text.
MADE_ID = re.compile(r"call_[0-9a-f]{24}")
Identified = TypeVar("Identified", StreamEvent, ToolCall)


def made_ids_numbered(items: Iterable[Identified]) -> list[Identified]:
    """``items`` with each id the gateway made renamed ``made_<n>``, numbered by first use."""
    names: dict[str, str] = {}
    renamed: list[Identified] = []
    for item in items:
        if isinstance(item, ToolCallStart | ToolCall) and MADE_ID.fullmatch(item.id):
            name = names.setdefault(item.id, f"made_{len(names)}")
            item = msgspec.structs.replace(item, id=name)
        renamed.append(item)
    return renamed
