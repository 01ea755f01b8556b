"""A call's SERVER span, named and attributed per the OpenTelemetry GenAI conventions.

The gateway's ``CallSpans`` hook, with an in-memory exporter instead of OTLP; the
spans sent to a real receiver are ``tests/integration/test_tracing.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import NamedTuple

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from modelway.observability.context import Tracing
from modelway.observability.tracing import CallSpans
from tests.unit.gateways import Setup, in_process_gateway

CHAT = {"model": "openai/gpt-x", "messages": [{"role": "user", "content": "hi"}]}


class Traced(NamedTuple):
    gateway: Setup
    exported: InMemorySpanExporter

    def server_span(self, request_id: str) -> ReadableSpan:
        [span] = [
            s
            for s in self.exported.get_finished_spans()
            if s.kind == SpanKind.SERVER
            and s.attributes is not None
            and s.attributes.get("modelway.request_id") == request_id
        ]
        return span


@pytest.fixture
async def traced(tmp_path: Path) -> AsyncIterator[Traced]:
    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    async with in_process_gateway(tmp_path) as gateway:
        hook = CallSpans(provider.get_tracer("test"), TraceContextTextMapPropagator())
        gateway.state.calls.add_hook(hook)
        yield Traced(gateway, exported)
    provider.shutdown()


async def test_a_call_span_is_named_for_its_operation_and_model(traced: Traced) -> None:
    answer = await traced.gateway.http.post(
        "/v1/chat/completions", json=CHAT, headers={"x-request-id": "req-named"}
    )
    assert answer.status_code == 200
    span = traced.server_span("req-named")
    assert span.name == "chat openai/gpt-x"
    assert span.attributes is not None
    assert span.attributes["gen_ai.operation.name"] == "chat"
    assert span.attributes["gen_ai.request.model"] == "openai/gpt-x"


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({"authorization": "Bearer mw-wrong-key-000000000000000000000000"}, CHAT, 401),
        ({}, {"messages": CHAT["messages"]}, 400),  # no model named
    ],
)
async def test_a_call_refused_before_its_model_is_known_is_named_for_its_operation_alone(
    traced: Traced, headers: dict[str, str], body: dict[str, object], status: int
) -> None:
    answer = await traced.gateway.http.post(
        "/v1/chat/completions", json=body, headers={**headers, "x-request-id": "req-refused"}
    )
    assert answer.status_code == status
    span = traced.server_span("req-refused")
    assert span.name == "chat"  # not "chat " with an empty model
    assert span.attributes is not None
    assert "gen_ai.request.model" not in span.attributes
    assert span.attributes["gen_ai.operation.name"] == "chat"
    assert span.attributes["http.response.status_code"] == status
    assert span.status.status_code == StatusCode.ERROR


async def test_a_refused_call_continues_the_callers_trace_under_its_operation(
    traced: Traced, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Tracing, "on", True)  # as tracing.configure() leaves it
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    parent = {"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"}
    wrong = {"authorization": "Bearer mw-wrong-key-000000000000000000000000"}
    cases = (
        ("/v1/chat/completions", {**parent, **wrong}, CHAT, 401, "chat"),
        ("/v1/embeddings", parent, {"model": "openai/text-embedding-3-small"}, 400, "embeddings"),
    )
    for path, headers, body, status, name in cases:
        request_id = f"req-{name}"
        answer = await traced.gateway.http.post(
            path, json=body, headers={**headers, "x-request-id": request_id}
        )
        assert answer.status_code == status
        span = traced.server_span(request_id)
        assert span.name == name
        assert format(span.context.trace_id, "032x") == trace_id
