"""What one request's observability shares across layers, in context variables.

The HTTP faces set what they read from the request; the call hooks and the engine's
attempt listeners (``observability.tracing``) and the request log read it. Nothing here
imports anything heavy: the faces import this module whether or not a feature is on.
"""

from __future__ import annotations

from contextvars import ContextVar

#: The trace id (32 hex digits) of the span of the call being served, for the request log;
#: None while no span is active (traces off, or no call yet).
current_trace_id: ContextVar[str | None] = ContextVar("current_trace_id", default=None)


# --- traces (observability.tracing) ------------------------------------------------------


class Tracing:
    """Whether traces are on in this process: faces read the caller's ``traceparent`` only then."""

    on = False


#: The W3C ``traceparent`` header the caller sent, set by the HTTP faces while traces are on.
traceparent: ContextVar[str | None] = ContextVar("traceparent", default=None)
#: The GenAI operation the face runs (``chat``, ``embeddings``): the first word of span names.
operation: ContextVar[str] = ContextVar("operation", default="chat")
