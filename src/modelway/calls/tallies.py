"""What a metered stream counts as it passes: the answer's size, its usage, how it ended.

``MeteredCall`` hands out a stream through ``_meter``, which adds each chunk to a tally
and, when the stream is over, records the call with what the tally read: ``EventTally``
for canonical events (translated answers), ``ByteTally`` for relayed bytes (the stream's
scanner reads the usage without decoding the text).
"""

from __future__ import annotations

from typing import Any, Protocol

from modelway.calls.scanners import StreamScanner
from modelway.types import MessageEnd, StreamEvent, TextDelta, Usage, UsageReport


class Tally(Protocol):
    """What a metered stream counts: the answer's size and the usage it reports."""

    size: int

    @property
    def usage(self) -> Usage | None: ...

    @property
    def finish_reason(self) -> str | None: ...

    def add(self, chunk: Any) -> None: ...


class EventTally:
    """Canonical events: usage from ``UsageReport``, size from the text, the end's reason."""

    __slots__ = ("finish_reason", "size", "usage")

    def __init__(self) -> None:
        self.size = 0
        self.usage: Usage | None = None
        self.finish_reason: str | None = None

    def add(self, chunk: StreamEvent) -> None:
        if isinstance(chunk, TextDelta):
            self.size += len(chunk.text)
        elif isinstance(chunk, UsageReport):
            self.usage = chunk.usage
        elif isinstance(chunk, MessageEnd):
            self.finish_reason = chunk.stop_reason


class ByteTally:
    """Relayed bytes: usage as the stream's scanner read it."""

    __slots__ = ("_scanner", "size")

    def __init__(self, scanner: StreamScanner) -> None:
        self._scanner = scanner
        self.size = 0

    @property
    def usage(self) -> Usage | None:
        usage: Usage | None = self._scanner.usage
        return usage

    @property
    def finish_reason(self) -> str | None:
        reason: str | None = self._scanner.finish_reason
        return reason

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
