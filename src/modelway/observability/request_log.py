"""One log line per request, under ``modelway.requests``: ``RequestLog``, a call hook.

Every metered call — every dialect, embeddings, the web chat — leaves exactly one usage
record, and its end (``CallEnd``: the record and what it does not say of the call)
becomes one line at info level: message ``request``, the facts as fields (``FIELDS``;
JSON) or a compact human line (text, ``describe``). It names the key by its id and
name, never the key itself (a ``Caller`` carries no key material). Written for every
request, so it is cheap: a ``later`` hook, it sees the calls that ended in the last few
milliseconds together (``after_batch``); nothing is built while the logger is off; when
the gateway's own JSON handler is the only one the lines reach (the served case), the
batch's lines are encoded to bytes in one call (``Encoder.encode_lines``) and written in
one go — the bytes a record would have given (tested) — and otherwise each line is a
record through the logger, made directly (no caller lookup, no ``extra`` checks), its
fields one dict.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, cast

import msgspec

from modelway.calls.hooks import CallEnd, CallHook
from modelway.logs import FIELDS_ATTRIBUTE, JsonFormatter, direct_handler, text_line

if TYPE_CHECKING:
    from modelway.store.records import UsageRecord

LOGGER = "modelway.requests"


class RequestLine(msgspec.Struct, gc=False):
    """A request line: ``time``, ``level``, ``logger``, ``message``, then its fields
    (``FIELDS``), in order — as the gateway's JSON handler writes it."""

    time: str
    level: str
    logger: str
    message: str
    request_id: str
    trace_id: str | None
    key_id: str | None
    key_name: str
    user: str | None
    team: str | None
    dialect: str | None
    alias: str | None
    provider: str | None
    model: str | None
    status: int
    error_type: str | None
    latency_ms: float
    ttft_ms: float | None
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    #: None: the model has no price (the cost is unknown).
    cost_usd: float | None
    attempts: int
    fallback: str | None
    cache: str | None
    stream: bool


#: The fields of a request line, in order (docs/observability.md, "Request logs").
FIELDS: tuple[str, ...] = RequestLine.__struct_fields__[4:]
_encoder = msgspec.json.Encoder()
_INFO = logging.INFO


class RequestRecord(logging.LogRecord):
    """A request line's record, made without ``LogRecord.__init__``'s look-ups (source
    file, thread and process names: nothing a request line shows), its fields in one dict."""

    def __init__(self, name: str, fields: dict[str, Any], created: float | None = None) -> None:
        if created is None:
            created = time.time()
        self.name = name
        self.msg = "request"
        self.args = ()
        self.levelname = "INFO"
        self.levelno = _INFO
        self.pathname = self.filename = self.module = ""
        self.exc_info = self.exc_text = self.stack_info = None
        self.lineno = 0
        self.funcName = ""
        self.created = created
        self.msecs = (created - int(created)) * 1000
        self.relativeCreated = (created - logging._startTime) * 1000  # type: ignore[attr-defined]
        self.thread = self.threadName = self.processName = self.process = None
        self.taskName = None
        setattr(self, FIELDS_ATTRIBUTE, fields)


class RequestLog(CallHook):
    """Logs each call's end: one line per request, stamped with the time the call ended
    (it is written a little later, with the lines of the calls that ended about then)."""

    later = True

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger if logger is not None else logging.getLogger(LOGGER)

    def after_batch(self, ended: list[CallEnd]) -> None:
        """The lines of calls that ended about now. When the gateway's own JSON handler
        is the only one they reach (``direct_handler``), the lines are encoded straight
        into one buffer (msgspec: no dict, no record, no bytes object per line) and the
        batch written in one go; else each goes through the logger as a record."""
        logger = self.logger
        if not logger.isEnabledFor(_INFO):
            return
        handler = direct_handler(logger)
        if handler is None:
            for end in ended:
                self.log(end)
            return
        time_text = cast(JsonFormatter, handler.formatter).time_text
        name = logger.name
        lines = [request_line(end, time_text(_ended(end.record)), name) for end in ended]
        data: bytes | bytearray
        try:
            data = _encoder.encode_lines(lines)
        except (TypeError, ValueError, msgspec.EncodeError):
            # A line that is not JSON as it stands (a lone surrogate ...): each line on
            # its own, and that one the library's way, which says what is wrong.
            data = self._encode_each(lines, ended)
        handler.write_encoded(data)

    def _encode_each(self, lines: list[RequestLine], ended: list[CallEnd]) -> bytearray:
        data = bytearray()
        for line, end in zip(lines, ended, strict=True):
            try:
                _encoder.encode_into(line, data, -1)
            except (TypeError, ValueError, msgspec.EncodeError):
                del data[data.rfind(b"\n") + 1 :]  # what was begun of it goes
                self.log(end)
                continue
            data += b"\n"
        return data

    def log(self, end: CallEnd) -> None:
        """``end``'s line through the logger: a record, its fields one dict."""
        logger = self.logger
        line = request_line(end, "", logger.name)
        fields = {name: getattr(line, name) for name in FIELDS}
        logger.handle(RequestRecord(logger.name, fields, _ended(end.record)))


def request_line(end: CallEnd, time: str, logger: str) -> RequestLine:
    """The line of the call that ended as ``end`` says, stamped ``time``."""
    record = end.record
    reached = record.provider is not None
    ttft = record.ttft_ms
    cache = end.cache
    return RequestLine(
        time,
        "info",
        logger,
        "request",
        record.request_id,
        end.trace_id,
        record.key_id,
        end.key_name,
        record.user,
        record.team,
        record.dialect,
        record.alias,
        record.provider,
        record.model,
        record.status,
        record.error_type,
        round(record.latency_ms, 2),
        None if ttft is None else round(ttft, 2),
        record.prompt_tokens,
        record.completion_tokens,
        record.cached_tokens,
        None if record.unpriced else record.cost_usd,
        # A cache hit (an idempotent replay too) names the provider of the answer it
        # replays, but reached none: no attempts, as its headers and metrics say.
        0 if record.cache_hit or not reached else record.retries + 1,
        record.fallback_used,
        # The response cache's word on the call; without the cache, a call that reached
        # a provider missed it.
        "hit" if record.cache_hit else cache if cache is not None else "miss" if reached else None,
        record.stream,
    )


def _ended(record: UsageRecord) -> float:
    """When the call ended (its record holds when it began and how long it took)."""
    return record.time + record.latency_ms / 1000


def describe(line: logging.LogRecord) -> str:
    """A request line for people: ``<status> <dialect> <alias> -> <provider>/<model> ...``
    (``-`` for a dialect or alias the call never had: refused before its model was known)."""
    fields: dict[str, Any] = line.__dict__.get(FIELDS_ATTRIBUTE) or line.__dict__
    parts = [
        str(fields.get("status")),
        str(fields.get("dialect") or "-"),
        str(fields.get("alias") or "-"),
    ]
    provider = fields.get("provider")
    if provider is not None:
        parts.append(f"-> {provider}/{fields.get('model')}")
    error = fields.get("error_type")
    if error:
        parts.append(error)
    parts.append(f"{fields.get('latency_ms')} ms")
    ttft = fields.get("ttft_ms")
    if fields.get("stream"):
        parts.append("stream" if ttft is None else f"stream ttft {ttft} ms")
    parts.append(f"tokens {fields.get('prompt_tokens')}+{fields.get('completion_tokens')}")
    cost = fields.get("cost_usd")
    if cost:
        parts.append(f"${cost:.6f}")
    elif cost is None and "cost_usd" in fields:
        parts.append("unpriced")
    attempts = fields.get("attempts") or 0
    if attempts > 1:
        parts.append(f"attempts {attempts}")
    fallback = fields.get("fallback")
    if fallback:
        parts.append(f"fallback {fallback}")
    if fields.get("cache") == "hit":
        parts.append("cache hit")
    parts.append(f"key {fields.get('key_name')}")
    parts.append(f"id {fields.get('request_id')}")
    trace = fields.get("trace_id")
    if trace:
        parts.append(f"trace {trace}")
    return "request " + " ".join(parts)


text_line(LOGGER, describe)
