"""Incremental decoders for Server-Sent Events and NDJSON byte streams.

The network splits bytes anywhere: a line across two reads, many events in one read,
a CRLF pair across reads. Both decoders buffer partial lines and yield only complete
items, so callers can feed whatever a socket returned.
"""

from __future__ import annotations

from typing import NamedTuple


class ServerSentEvent(NamedTuple):
    """One dispatched SSE event; ``event`` is ``"message"`` unless the stream named it."""

    event: str
    data: str


class SSEDecoder:
    """Decodes ``text/event-stream`` bytes per the WHATWG spec.

    Comment lines (``:``, used for keep-alive pings) are skipped; ``id`` and ``retry``
    fields are accepted and ignored; multi-line ``data`` fields join with ``\\n``.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._event = ""
        self._data: list[str] = []
        self._pending_cr = False
        self._first_line = True

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """The events completed by this chunk."""
        if not chunk:
            # An empty read must not forget a CR that may still be half of a CRLF.
            return []
        if self._pending_cr and chunk.startswith(b"\n"):
            # The second half of a CRLF that was split across reads.
            chunk = chunk[1:]
        self._pending_cr = chunk.endswith(b"\r")
        buffer = self._buffer + chunk
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buffer.split(b"\n")
        self._buffer = lines.pop()
        events: list[ServerSentEvent] = []
        if lines and self._first_line:
            # WHATWG: one leading U+FEFF byte order mark is not part of the first line.
            self._first_line = False
            lines[0] = lines[0].removeprefix(b"\xef\xbb\xbf")
        for line in lines:
            event = self._line(line.decode("utf-8", errors="replace"))
            if event is not None:
                events.append(event)
        return events

    @property
    def between_events(self) -> bool:
        """Nothing is buffered: the next byte starts the first line of a new event."""
        return not (self._buffer or self._data or self._event or self._pending_cr)

    def skipped(self) -> None:
        """The caller handled a chunk of whole events itself (see ``between_events``)."""
        self._first_line = False

    def close(self) -> list[ServerSentEvent]:
        """Events still pending when the stream ends (a final event without a blank line)."""
        events = self.feed(b"\n") if self._buffer else []
        if self._data:
            events.append(ServerSentEvent(self._event or "message", "\n".join(self._data)))
            self._event, self._data = "", []
        return events

    def _line(self, line: str) -> ServerSentEvent | None:
        if not line:
            if not self._data:
                # WHATWG: an event with no data is not dispatched; its name is dropped.
                self._event = ""
                return None
            event = ServerSentEvent(self._event or "message", "\n".join(self._data))
            self._event, self._data = "", []
            return event
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        return None


class NDJSONDecoder:
    """Splits newline-delimited JSON bytes into complete, non-blank lines."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        """The complete lines in this chunk (without their line ends)."""
        lines = (self._buffer + chunk).split(b"\n")
        self._buffer = lines.pop()
        return [stripped for line in lines if (stripped := line.strip())]

    def close(self) -> list[bytes]:
        """A last line that had no newline after it."""
        rest, self._buffer = self._buffer.strip(), b""
        return [rest] if rest else []
