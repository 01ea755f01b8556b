"""One log line per request, under ``modelway.requests``: ``RequestLog``, a call hook.

Every metered call — every dialect, embeddings, the web chat — leaves exactly one usage
record, and ``after`` turns it into one line at info level: message ``request``, the
facts as fields (``FIELDS``; JSON) or a compact human line (text, ``describe``). It
names the key by its id and name, never the key itself (a ``Caller`` carries no key
material). Written for every request, so it is cheap: nothing is built while the
logger is off, the record is made directly (no caller lookup, no ``extra`` checks),
and its fields are one dict.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from modelway.calls.hooks import CallHook
from modelway.logs import FIELDS_ATTRIBUTE, text_line
from modelway.observability.context import current_trace_id

if TYPE_CHECKING:
    from modelway.calls.metered import MeteredCall
    from modelway.store.records import UsageRecord

LOGGER = "modelway.requests"
#: The fields of a request line, in order (docs/observability.md, "Request logs").
FIELDS = (
    "request_id",
    "trace_id",
    "key_id",
    "key_name",
    "user",
    "team",
    "dialect",
    "alias",
    "provider",
    "model",
    "status",
    "error_type",
    "latency_ms",
    "ttft_ms",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cost_usd",
    "attempts",
    "fallback",
    "cache",
    "stream",
)
_INFO = logging.INFO


class RequestRecord(logging.LogRecord):
    """A request line's record, made without ``LogRecord.__init__``'s look-ups (source
    file, thread and process names: nothing a request line shows), its fields in one dict."""

    def __init__(self, name: str, fields: dict[str, Any]) -> None:
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
    """Logs each call's end: one line per request."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger if logger is not None else logging.getLogger(LOGGER)

    def after(self, call: MeteredCall, record: UsageRecord) -> None:
        logger = self.logger
        if not logger.isEnabledFor(_INFO):
            return
        caller = call.caller
        reached = record.provider is not None
        ttft = record.ttft_ms
        fields = {
            "request_id": record.request_id,
            "trace_id": current_trace_id.get(),
            "key_id": record.key_id,
            "key_name": caller.name,
            "user": record.user,
            "team": record.team,
            "dialect": record.dialect,
            "alias": record.alias,
            "provider": record.provider,
            "model": record.model,
            "status": record.status,
            "error_type": record.error_type,
            "latency_ms": round(record.latency_ms, 2),
            "ttft_ms": None if ttft is None else round(ttft, 2),
            "prompt_tokens": record.prompt_tokens,
            "completion_tokens": record.completion_tokens,
            "cached_tokens": record.cached_tokens,
            "cost_usd": record.cost_usd,
            "attempts": record.retries + 1 if reached else 0,
            "fallback": record.fallback_used,
            "cache": _cache_field(call, record, reached),
            "stream": record.stream,
        }
        # The fields as one dict, which the JSON formatter writes as they are.
        logger.handle(RequestRecord(logger.name, fields))


def _cache_field(call: MeteredCall, record: UsageRecord, reached: bool) -> str | None:
    """``hit``, ``miss`` or ``bypass`` as the response cache saw the call; without the
    cache, ``miss`` for a call that reached a provider."""
    if record.cache_hit:
        return "hit"
    status = call.cache_status
    if status is not None:
        return status
    return "miss" if reached else None


def describe(line: logging.LogRecord) -> str:
    """A request line for people: ``<status> <dialect> <alias> -> <provider>/<model> ...``."""
    fields: dict[str, Any] = line.__dict__.get(FIELDS_ATTRIBUTE) or line.__dict__
    parts = [
        str(fields.get("status")),
        str(fields.get("dialect")),
        str(fields.get("alias")),
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
