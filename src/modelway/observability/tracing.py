"""OpenTelemetry traces over OTLP/HTTP, on when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.

``install(calls, environ)`` does nothing without that variable (or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``): not one module of OpenTelemetry is imported then,
and the hot path pays one ``is None`` check per upstream request and one class attribute
test per call. With it, each metered call gets a SERVER span (a call hook: ``chat
{model}`` or ``embeddings {model}``, the operation alone when no model is known, GenAI
semantic conventions), each upstream attempt a CLIENT span under it (an engine attempt
listener), and each upstream request the attempt's ``traceparent``
(``providers.upstream.trace_headers``). A call continues the trace of the ``traceparent``
its caller sent (read by the HTTP faces into ``observability.context.traceparent``). Spans
leave in batches from a background thread (``BatchSpanProcessor``); ``shutdown()`` at the
gateway's exit sends what is left.
See docs/observability.md, "Traces".
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from modelway.calls.hooks import CallHook
from modelway.observability import context
from modelway.providers import upstream

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

    from modelway.calls.metered import MeteredCall
    from modelway.calls.opening import Calls
    from modelway.routing.targets import Target
    from modelway.store.records import UsageRecord

log = logging.getLogger("modelway.tracing")

#: The variables that turn traces on (the second one is the whole URL, ``/v1/traces`` too).
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
DEFAULT_SERVICE_NAME = "modelway"
#: Seconds ``shutdown`` gives the last batch to leave.
SHUTDOWN_SECONDS = 5.0

#: The span of the call running in this task: the parent of its attempts' spans.
_call_span: ContextVar[Span | None] = ContextVar("modelway_call_span", default=None)
#: The span of the upstream attempt running in this task: its requests carry its context.
_attempt_span: ContextVar[Span | None] = ContextVar("modelway_attempt_span", default=None)


class _Installed:
    """This process's tracer provider, once ``install`` made one."""

    provider: TracerProvider | None = None


def enabled(environ: Mapping[str, str]) -> bool:
    """Whether ``environ`` asks for traces."""
    return any(environ.get(name) for name in ENDPOINT_VARIABLES)


def install(calls: Calls, environ: Mapping[str, str]) -> bool:
    """Trace ``calls`` (and their upstream attempts) if ``environ`` names an OTLP endpoint.

    Returns whether it did. Every OpenTelemetry import happens here, and only then.
    """
    if not enabled(environ):
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http import trace_exporter  # noqa: F401
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
    except ImportError:
        log.warning(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed "
            "(pip install 'modelway[otel]'): no traces"
        )
        return False

    tracer = _provider(environ).get_tracer("modelway")
    propagator = TraceContextTextMapPropagator()

    def inject(headers: dict[str, str]) -> None:
        span = _attempt_span.get()
        if span is not None:
            propagator.inject(headers, context=trace.set_span_in_context(span))

    calls.add_hook(CallSpans(tracer, propagator))
    calls.engine.listeners.append(AttemptSpans(tracer))
    upstream.trace_headers = inject
    context.Tracing.on = True
    return True


def _provider(environ: Mapping[str, str]) -> TracerProvider:
    """The process's tracer provider, exporting to the configured endpoint (made once)."""
    if _Installed.provider is not None:
        return _Installed.provider
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.util.re import parse_env_headers

    # Read from ``environ`` (``.env`` too): the endpoint, its headers, the service name and
    # the batch delay. The exporter and SDK read any other OTEL_* from the process itself.
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or (
        environ["OTEL_EXPORTER_OTLP_ENDPOINT"].rstrip("/") + "/v1/traces"
    )
    header_text = environ.get("OTEL_EXPORTER_OTLP_TRACES_HEADERS") or environ.get(
        "OTEL_EXPORTER_OTLP_HEADERS"
    )
    headers = parse_env_headers(header_text, liberal=True) if header_text else None
    delay = environ.get("OTEL_BSP_SCHEDULE_DELAY")
    service = environ.get("OTEL_SERVICE_NAME") or DEFAULT_SERVICE_NAME
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(
        BatchSpanProcessor(
            OTLPSpanExporter(endpoint=endpoint, headers=headers),
            schedule_delay_millis=float(delay) if delay and _is_number(delay) else None,
        )
    )
    _Installed.provider = provider
    log.info("traces go to %s as service %r", urlsplit(endpoint).hostname, service)
    return provider


def active() -> bool:
    """Whether this process exports traces (``install`` found an endpoint)."""
    return _Installed.provider is not None


def shutdown() -> None:
    """Send the spans still waiting and stop exporting (at exit; nothing if traces are off).

    Blocks up to a few seconds: call it from a thread when a loop is running.
    """
    provider = _Installed.provider
    if provider is None:
        return
    _Installed.provider = None
    upstream.trace_headers = None
    context.Tracing.on = False
    try:
        provider.force_flush(int(SHUTDOWN_SECONDS * 1000))
        provider.shutdown()
    except Exception:  # an unreachable collector must not spoil the exit
        log.warning("traces: the last spans could not be sent", exc_info=True)


class CallSpans(CallHook):
    """A SERVER span per metered call, named and attributed per the GenAI conventions."""

    def __init__(self, tracer: Tracer, propagator: Any) -> None:
        from opentelemetry.trace import SpanKind, Status, StatusCode

        self._tracer = tracer
        self._propagator = propagator
        self._server = SpanKind.SERVER
        self._error = (Status, StatusCode.ERROR)
        #: Spans of calls that have started and not ended.
        self._spans: dict[MeteredCall, Span] = {}

    def _start(self, call: MeteredCall, start_time: int | None = None) -> Span:
        incoming = context.traceparent.get()
        parent = self._propagator.extract({"traceparent": incoming}) if incoming else None
        operation = context.operation.get()
        model = call.model
        attributes = {
            "gen_ai.operation.name": operation,
            "modelway.request_id": call.request_id,
            "modelway.dialect": call.dialect,
        }
        # The conventions name a span ``{operation} {model}``, and ``{operation}`` alone
        # when the model is not known (a call refused before its body named one).
        if model:
            attributes["gen_ai.request.model"] = model
        span = self._tracer.start_span(
            f"{operation} {model}" if model else operation,
            context=parent,
            kind=self._server,
            attributes=attributes,
            start_time=start_time,
        )
        span_context = span.get_span_context()
        if span_context.is_valid:
            context.current_trace_id.set(format(span_context.trace_id, "032x"))
        return span

    def before(self, call: MeteredCall) -> None:
        span = self._start(call)
        self._spans[call] = span
        _call_span.set(span)

    def after(self, call: MeteredCall, record: UsageRecord) -> None:
        span = self._spans.pop(call, None)
        if span is None:  # refused before it ran: its span is as long as its refusal
            span = self._start(call, start_time=int(record.time * 1e9))
        elif _call_span.get() is span:
            _call_span.set(None)
        reason = call.finish_reason
        if span.is_recording():
            attributes: dict[str, Any] = {
                "http.response.status_code": record.status,
                "gen_ai.usage.input_tokens": record.prompt_tokens,
                "gen_ai.usage.output_tokens": record.completion_tokens,
            }
            if record.provider is not None:
                attributes["gen_ai.provider.name"] = record.provider
            if record.model is not None:
                attributes["gen_ai.response.model"] = record.model
            if reason is not None:
                attributes["gen_ai.response.finish_reasons"] = (reason,)
            if record.cached_tokens:
                attributes["gen_ai.usage.cache_read.input_tokens"] = record.cached_tokens
            if record.cache_write_tokens:
                attributes["gen_ai.usage.cache_creation.input_tokens"] = record.cache_write_tokens
            if record.retries:
                attributes["modelway.retries"] = record.retries
            if record.fallback_used:
                attributes["modelway.fallback"] = record.fallback_used
            if record.status >= 400:
                status, error = self._error
                attributes["error.type"] = record.error_type or str(record.status)
                span.set_status(status(error))
            span.set_attributes(attributes)
        span.end()


class AttemptSpans:
    """A CLIENT span per upstream attempt, under its call's span (an ``AttemptListener``)."""

    def __init__(self, tracer: Tracer) -> None:
        from opentelemetry import trace
        from opentelemetry.trace import SpanKind, Status, StatusCode

        self._tracer = tracer
        self._in_span = trace.set_span_in_context
        self._client = SpanKind.CLIENT
        self._error = (Status, StatusCode.ERROR)

    def attempt_started(self, target: Target) -> Any:
        parent = _call_span.get()
        attributes = {
            "gen_ai.operation.name": context.operation.get(),
            "gen_ai.provider.name": target.backend.name,
            "gen_ai.request.model": target.model,
            **_server(target.backend),
        }
        span = self._tracer.start_span(
            f"{context.operation.get()} {target.model}",
            context=None if parent is None else self._in_span(parent),
            kind=self._client,
            attributes=attributes,
        )
        _attempt_span.set(span)
        return span

    def attempt_ended(
        self, target: Target, handle: Any, seconds: float, error: BaseException | None
    ) -> None:
        _attempt_span.set(None)
        span: Span = handle
        if error is not None and span.is_recording():
            status, code = self._error
            span.set_attribute("error.type", type(error).__name__)
            upstream_status = getattr(error, "upstream_status", None)
            if isinstance(upstream_status, int):
                span.set_attribute("http.response.status_code", upstream_status)
            # The type and status only: an upstream's message may quote what it was sent.
            span.set_status(status(code))
        span.end()


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _server(backend: Any) -> dict[str, Any]:
    """``server.address`` and ``server.port`` of an HTTP backend (none for the built-in mock)."""
    base_url = getattr(backend, "base_url", None)
    if not isinstance(base_url, str):
        return {}
    parts = urlsplit(base_url)
    server: dict[str, Any] = {}
    if parts.hostname:
        server["server.address"] = parts.hostname
    try:
        if parts.port is not None:
            server["server.port"] = parts.port
    except ValueError:
        pass
    return server
