"""Where the gateway's log lines go, how many, in which format: ``logging:`` in ``modelway.yaml``.

Each worker process calls ``configure_logging`` once, when it builds its app (and the
supervisor of ``modelway serve`` once, before it forks): the ``modelway`` loggers write
to stderr at ``logging.level``, as JSON lines or as text (``logging.format``: ``auto``
is text when stderr is a terminal, JSON otherwise; ``MODELWAY_LOG_FORMAT``, which
``modelway serve --log-format`` sets for its workers, overrides it). A JSON line holds
``time`` (RFC 3339, UTC), ``level``, ``logger``, ``message`` and the record's ``extra``
fields. Other libraries' warnings and errors (asyncio's "Task exception was never
retrieved", aiohttp's, granian's own) go the same way, in the same format, so a JSON log
holds nothing but JSON lines. Embedding the gateway (``create_app`` in a test or another
program) leaves logging as the host set it up.

``logging.log_bodies`` asks for each request body to be logged (``log_body``); it is
off by default because bodies are the users' conversations.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal, TextIO

import orjson
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.orjson import OrjsonFormatter as _LibraryJsonFormatter

from modelway.config import LoggingSettings

#: How python-json-logger's orjson formatter encodes a line (non-string keys allowed).
_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS
#: A body logged with ``log_bodies`` is cut after this many bytes.
BODY_LOG_LIMIT = 64 * 1024
#: Overrides ``logging.format`` (``auto``, ``json``, ``text``); ``serve --log-format`` sets it.
FORMAT_VARIABLE = "MODELWAY_LOG_FORMAT"
FORMATS = ("auto", "json", "text")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

LogFormat = Literal["json", "text"]

_HANDLER_NAME = "modelway-stderr"
#: A record may carry its extra fields as one dict under this attribute: written as they
#: are, without sifting the record's own attributes (the request line, once per request).
FIELDS_ATTRIBUTE = "modelway_fields"
#: Info lines wait at most this long to be written together (one write for many lines).
BATCH_SECONDS = 0.02
#: The logger whose lines are batched: one per request.
BATCHED_LOGGER = "modelway.requests"
#: One write holds at most this much (or one longer line): below a pipe's atomic write
#: size (4096), so the lines of several workers sharing stderr never interleave mid-line.
BATCH_BYTES = 3584
#: A regular file takes bigger writes: Linux never interleaves one with another's.
FILE_BATCH_BYTES = 256 * 1024
#: Request records waiting past this are written by the logging thread itself.
MAX_WAITING_RECORDS = 10_000
_bodies = logging.getLogger("modelway.bodies")
#: Loggers whose text lines are written by a function of their own (``modelway.requests``).
_text_lines: dict[str, Callable[[logging.LogRecord], str]] = {}


def text_line(logger: str, render: Callable[[logging.LogRecord], str]) -> None:
    """Write ``logger``'s records in text format as ``render`` says (JSON is unchanged)."""
    _text_lines[logger] = render


def log_format(setting: str, environ: Mapping[str, str], stream: TextIO) -> LogFormat:
    """The format to write: the environment's override, else ``setting``; ``auto`` asks
    whether ``stream`` is a terminal."""
    chosen = environ.get(FORMAT_VARIABLE, "").strip().lower() or setting
    if chosen == "json":
        return "json"
    if chosen == "text":
        return "text"
    try:
        return "text" if stream.isatty() else "json"
    except (AttributeError, ValueError):  # closed, or not a real stream
        return "json"


class JsonFormatter(_LibraryJsonFormatter):
    """python-json-logger's (orjson), with ``time``, ``level``, ``logger`` and ``message``
    first, then the record's ``extra`` fields.

    The fields are gathered in one pass over the record (the library's ``add_fields``
    also renames and checks each one: a third of a request line's cost); the library
    still formats messages, exceptions and stacks and encodes the line.
    """

    def __init__(self) -> None:
        super().__init__(reserved_attrs=[*RESERVED_ATTRS, "taskName"])
        self._skip = frozenset(self._skip_fields)
        #: The last time formatted: (second, millisecond, its text, the second's text).
        self._kept_time: tuple[int, int, str, str] = (-1, -1, "", "")
        #: A request line's first four fields, encoded: the same for every line of one
        #: millisecond (several, under load). (second, millisecond, logger, level, message).
        self._head_key: tuple[Any, ...] = ()
        self._head = b""

    def format(self, record: logging.LogRecord) -> str:
        if _plain_fields(record) is None:
            return super().format(record)
        return self.format_bytes(record).decode()

    def format_bytes(self, record: logging.LogRecord) -> bytes:
        """The line, UTF-8 (what ``BatchingHandler`` writes). A request line — its fields
        in one dict, a plain message, nothing to format — is encoded here without the
        library's generic path: the first four fields as the last line of the same
        millisecond had them, then the fields as orjson encodes them. The same bytes as
        ``add_fields`` would give (tested), for a fraction of the cost, once per request."""
        fields = _plain_fields(record)
        if fields is None:
            return super().format(record).encode()
        record.message = message = record.getMessage()
        return self.line(record.created, record.name, record.levelname, message, fields)

    def line(
        self, created: float, logger: str, level: str, message: str, fields: dict[str, Any]
    ) -> bytes:
        """The line of a record made at ``created`` by ``logger`` at ``level`` with
        ``message`` and ``fields`` (none named like the first four)."""
        second = int(created)
        key = (second, int((created - second) * 1000), logger, level, message)
        if key != self._head_key:
            self._head_key = key
            head = {
                "time": self.time_text(created),
                "level": level.lower(),
                "logger": logger,
                "message": message,
            }
            self._head = orjson.dumps(head, option=_ORJSON_OPTIONS)[:-1]  # without its "}"
        body = orjson.dumps(fields, default=self.json_default, option=_ORJSON_OPTIONS)
        if len(body) == 2:  # {}
            return self._head + b"}"
        return self._head + b"," + body[1:]

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        log_data["time"] = self.time_text(record.created)
        log_data["level"] = record.levelname.lower()
        log_data["logger"] = record.name
        log_data["message"] = record.message
        fields = record.__dict__.get(FIELDS_ATTRIBUTE)
        if fields is not None:  # a record that brings its fields in one dict (request lines)
            log_data.update(fields)
        else:
            skip = self._skip
            items = record.__dict__.items()
            log_data.update({key: value for key, value in items if key not in skip})
        log_data.update(message_dict)  # exc_info, stack_info; a dict logged as the message

    def time_text(self, created: float) -> str:
        """RFC 3339 in UTC with milliseconds; the seconds part is formatted once a second,
        and the whole once a millisecond (lines of a batch often share one). What is kept
        is one tuple, replaced whole: a line formatted on another thread reads a
        consistent one."""
        second = int(created)
        millisecond = int((created - second) * 1000)
        kept_second, kept_millisecond, kept_text, second_text = self._kept_time
        if second == kept_second:
            if millisecond == kept_millisecond:
                return kept_text
        else:
            second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        text = f"{second_text}.{millisecond:03d}Z"
        self._kept_time = (second, millisecond, text, second_text)
        return text


def _plain_fields(record: logging.LogRecord) -> dict[str, Any] | None:
    """A record's fields dict (``FIELDS_ATTRIBUTE``) when the line is nothing but its
    message and those fields: no exception or stack, no argument, no field named like
    one of the first four."""
    fields: dict[str, Any] | None = record.__dict__.get(FIELDS_ATTRIBUTE)
    if (
        fields is None
        or not isinstance(record.msg, str)
        or record.args
        or record.exc_info
        or record.exc_text
        or record.stack_info
        or "time" in fields
        or "level" in fields
        or "logger" in fields
        or "message" in fields
    ):
        return None
    return fields


#: Control characters (but the tab) as escapes: a message carries what callers sent (a
#: model name, a key's name), and a line break or a terminal escape in it must not forge a
#: line or repaint the operator's terminal.
_CONTROLS = {
    code: ascii(chr(code))[1:-1] for code in [*range(32), *range(127, 160)] if code != ord("\t")
}


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message``; loggers with a line of their own (``text_line``) get it.

    One record is one line: control characters in the message are escaped (a traceback
    still follows on lines of its own).
    """

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        render = _text_lines.get(record.name)
        if render is not None:
            record.message = render(record)
        record.message = record.message.translate(_CONTROLS)
        return super().formatMessage(record)


def formatter(kind: LogFormat) -> logging.Formatter:
    """The formatter of a log format."""
    return JsonFormatter() if kind == "json" else TextFormatter()


class BatchingHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Request lines are formatted and written in batches: at most ``BATCH_SECONDS`` late,
    each ``write`` of whole lines below ``BATCH_BYTES``. Any other line (startup, a
    cooldown, a warning ...) or a terminal writes at once, after whatever waits, in order.

    A line's ``emit`` only appends its record. The batch is written by a callback on the
    event loop the first line came from (``call_later``), or, logged outside any event
    loop, by a thread of the handler's own. The loop, not a thread: under load a thread
    competes with the loop for the GIL, and the switching cost more than the formatting
    (measured: docs/observability.md). ``flush()`` (at shutdown: ``flush_logs``) writes
    what waits; a batch whose loop stopped first is written by the next ``flush()`` or
    once ``MAX_WAITING_RECORDS`` wait.
    """

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._records: list[logging.LogRecord] = []
        self._due = threading.Event()
        try:
            self._at_once = stream.isatty()
        except (AttributeError, ValueError):
            self._at_once = False
        self._writer: threading.Thread | None = None
        #: Held while a batch is formatted and written: batches go out whole and in order,
        #: and a line's ``emit``, which only appends under ``self.lock``, never waits for one.
        self._io_lock = threading.Lock()
        self._binary_of: Any = None
        self._binary_side: Any = None
        self._chunk_limit = BATCH_BYTES

    def handle(self, record: logging.LogRecord) -> bool:
        """``Handler.handle`` without its lock around ``emit``: ``emit`` takes the lock
        for the one append it makes, and writing takes ``_io_lock``."""
        passed = bool(self.filter(record))
        if passed:
            self.emit(record)
        return passed

    def emit(self, record: logging.LogRecord) -> None:
        with self.lock:  # type: ignore[union-attr]
            first = not self._records
            self._records.append(record)
            now = (
                self._at_once
                or record.name != BATCHED_LOGGER
                or len(self._records) >= MAX_WAITING_RECORDS  # a writer that cannot keep up
            )
        if now:
            self.flush()
            return
        if first:  # a batch begins: it is written BATCH_SECONDS from now
            try:
                asyncio.get_running_loop().call_later(BATCH_SECONDS, self.flush)
            except RuntimeError:  # no event loop in this thread
                if self._writer is None or not self._writer.is_alive():
                    self._writer = threading.Thread(target=self._write_later, daemon=True)
                    self._writer.start()
                self._due.set()

    def flush(self) -> None:
        with self._io_lock:
            with self.lock:  # type: ignore[union-attr]
                records, self._records = self._records, []
            if records:
                self._write(records)

    def _write(self, records: list[logging.LogRecord]) -> None:
        """Format ``records`` and write them in whole-line chunks: as bytes when the
        formatter makes them (JSON) and the stream has a binary side (stderr), else as
        text."""
        encode = getattr(self.formatter, "format_bytes", None)
        binary = None if encode is None else self._binary()
        if encode is None or binary is None:
            self._write_text(records)
            return
        data = bytearray()
        for record in records:
            try:
                data += encode(record)
            except Exception:
                self.handleError(record)
                continue
            data += b"\n"
        self._put_encoded(binary, data)

    def write_encoded(self, data: bytes | bytearray) -> None:
        """Write ``data`` — whole lines, each ending in a newline, UTF-8 — now, after the
        records that wait: a batch of request lines ``RequestLog`` encoded itself
        (``direct_handler``)."""
        with self._io_lock:
            with self.lock:  # type: ignore[union-attr]
                records, self._records = self._records, []
            if records:
                self._write(records)
            binary = self._binary()
            if binary is None:
                self._put(bytes(data).decode())
            else:
                self._put_encoded(binary, data)

    def _put_encoded(self, binary: Any, data: bytes | bytearray) -> None:
        """``data`` (whole lines) in writes within ``_chunk_limit`` that end at a line's
        end (a line longer than the limit goes alone)."""
        limit = self._chunk_limit
        view = memoryview(data)
        start, size = 0, len(data)
        while start < size:
            end = size
            if size - start > limit:
                # After the last newline within the limit; else (one line longer than
                # the limit) after that line's end.
                cut = data.rfind(b"\n", start, start + limit) + 1
                end = cut or data.find(b"\n", start + limit) + 1 or size
            self._put_bytes(binary, view[start:end])
            start = end

    def _write_text(self, records: list[logging.LogRecord]) -> None:
        chunk: list[str] = []
        size = 0
        for record in records:
            try:
                line = self.format(record) + "\n"
            except Exception:
                self.handleError(record)
                continue
            if chunk and size + len(line) > BATCH_BYTES:
                self._put("".join(chunk))
                chunk, size = [], 0
            chunk.append(line)
            size += len(line)
        if chunk:
            self._put("".join(chunk))

    def _binary(self) -> Any:
        """The stream's binary side (``sys.stderr.buffer``), or None; and how much one
        write may hold: ``BATCH_BYTES`` unless it is a regular file (whose writes Linux
        never interleaves: ``FILE_BATCH_BYTES``)."""
        stream = self.stream
        if stream is not self._binary_of:
            self._binary_of = stream
            self._binary_side = getattr(stream, "buffer", None)
            self._chunk_limit = BATCH_BYTES
            try:
                if stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
                    self._chunk_limit = FILE_BATCH_BYTES
            except (AttributeError, OSError, ValueError):
                pass
        return self._binary_side

    def _put_bytes(self, binary: Any, data: memoryview) -> None:
        try:
            self.stream.flush()  # whatever the text side holds goes first
            while data:  # a raw file may take part of a write
                written = binary.write(data)
                data = data[written or 0 :]
            binary.flush()
        except (OSError, ValueError):
            pass  # stderr gone (closed pipe): nothing to tell

    def _put(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            pass  # stderr gone (closed pipe): nothing to tell

    def _write_later(self) -> None:
        while True:
            self._due.wait()
            time.sleep(BATCH_SECONDS)
            self._due.clear()
            self.flush()


def direct_handler(logger: logging.Logger) -> BatchingHandler | None:
    """The gateway's own handler when it is the only one ``logger``'s info lines reach,
    nothing filters them and it writes JSON in batches: then lines can be handed to it
    encoded (``BatchingHandler.write_encoded``), with no record each. Otherwise (a
    handler or filter of someone else's, text, a terminal): None."""
    found: list[logging.Handler] = []
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters or current.disabled:
            return None
        found += current.handlers
        if not current.propagate:
            break
        current = current.parent
    if len(found) != 1:
        return None
    handler = found[0]
    if (
        not isinstance(handler, BatchingHandler)
        or handler.filters
        or handler.level > logging.INFO
        or handler._at_once
        or type(handler.formatter) is not JsonFormatter
    ):
        return None
    return handler


def flush_logs() -> None:
    """Write the lines still waiting (a worker's last act)."""
    for handler in logging.getLogger("modelway").handlers:
        handler.flush()


def configure_logging(
    settings: LoggingSettings,
    environ: Mapping[str, str] | None = None,
    stream: TextIO | None = None,
) -> LogFormat:
    """Send the ``modelway`` loggers to ``stream`` (stderr) at ``settings.level``, in the
    format ``settings.format`` or ``MODELWAY_LOG_FORMAT`` says; again: replaced."""
    stream = sys.stderr if stream is None else stream
    kind = log_format(settings.format, os.environ if environ is None else environ, stream)
    handler = BatchingHandler(stream)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter(kind))
    # The root logger takes the other libraries' lines, at their own levels (warnings and
    # errors unless one says otherwise): without it they reached stderr as bare text.
    for logger in (logging.getLogger("modelway"), logging.getLogger()):
        for old in [h for h in logger.handlers if h.get_name() == _HANDLER_NAME]:
            logger.removeHandler(old)
        logger.addHandler(handler)
    ours = logging.getLogger("modelway")
    ours.setLevel(settings.level.upper())
    ours.propagate = False
    return kind


#: granian's logging (``log_dictconfig``): its loggers pass their lines to the root
#: logger, which ``configure_logging`` gave the gateway's handler, not to stdout as text.
GRANIAN_LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {
        "_granian": {"handlers": [], "propagate": True},
        "granian.access": {"handlers": [], "propagate": True},
    },
}


def log_body(request_id: str, path: str, raw: bytes) -> None:
    """One request body, at info level under ``modelway.bodies`` (cut at the limit)."""
    shown = raw[:BODY_LOG_LIMIT].decode("utf-8", errors="replace")
    cut = f" (first {BODY_LOG_LIMIT} of {len(raw)} bytes)" if len(raw) > BODY_LOG_LIMIT else ""
    _bodies.info("%s %s body%s: %s", request_id, path, cut, shown)
