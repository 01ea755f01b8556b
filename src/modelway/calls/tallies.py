"""What a metered stream counts as it passes: the answer's text size, its usage, its end.

``MeteredCall`` hands out a stream through ``_meter``, which adds each chunk to a tally
and, when the stream is over, records the call with what the tally read: ``EventTally``
for canonical events (translated answers), ``ByteTally`` for relayed bytes (the stream's
scanner reads the usage and sizes the text from the events it parses anyway). ``size``
is the UTF-8 bytes of the answer's text alone (``modelway.tokens``), which the
completion tokens are estimated from when the stream ends without usage.
"""

from __future__ import annotations

from typing import Any, Protocol

from modelway.calls.scanners import StreamScanner
from modelway.tokens import utf8_size
from modelway.types import (
    MessageEnd,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallStart,
    Usage,
    UsageReport,
)


class Tally(Protocol):
    """What a metered stream counts: the answer's text size and the usage it reports."""

    @property
    def size(self) -> int:
        """UTF-8 bytes of the answer's text so far (text, reasoning, tool calls)."""
        ...

    @property
    def usage(self) -> Usage | None: ...

    @property
    def finish_reason(self) -> str | None: ...

    def add(self, chunk: Any) -> None: ...


class EventTally:
    """Canonical events: usage from ``UsageReport``, size from the text, reasoning and tool
    calls, the end's reason."""

    __slots__ = ("finish_reason", "size", "usage")

    def __init__(self) -> None:
        self.size = 0
        self.usage: Usage | None = None
        self.finish_reason: str | None = None

    def add(self, chunk: StreamEvent) -> None:
        if isinstance(chunk, (TextDelta, ReasoningDelta)):
            self.size += utf8_size(chunk.text)
        elif isinstance(chunk, ToolCallDelta):
            self.size += utf8_size(chunk.arguments)
        elif isinstance(chunk, ToolCallStart):
            self.size += utf8_size(chunk.name)
        elif isinstance(chunk, UsageReport):
            self.usage = chunk.usage
        elif isinstance(chunk, MessageEnd):
            self.finish_reason = chunk.stop_reason


class ByteTally:
    """Relayed bytes: usage, text size and the end's reason as the stream's scanner read them.

    Not the bytes' own size: a stream of small deltas is mostly JSON envelope around them.
    """

    __slots__ = ("_scanner",)

    def __init__(self, scanner: StreamScanner) -> None:
        self._scanner = scanner

    @property
    def size(self) -> int:
        size: int = self._scanner.text_size
        return size

    @property
    def usage(self) -> Usage | None:
        usage: Usage | None = self._scanner.usage
        return usage

    @property
    def finish_reason(self) -> str | None:
        reason: str | None = self._scanner.finish_reason
        return reason

    def add(self, chunk: bytes) -> None:
        pass  # the scanner read the chunk on its way in
