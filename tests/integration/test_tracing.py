"""OpenTelemetry traces from a real ``modelway serve`` to a real OTLP/HTTP receiver.

The receiver is started here (``http.server`` on a free port) and decodes the protobuf
it is sent with ``opentelemetry.proto``; the upstream is ``modelway mock``, which keeps
the ``traceparent`` headers it received. Calls go through the official ``openai`` SDK,
each with its own ``traceparent``, so each trace holds that call's spans alone.
"""

from __future__ import annotations

import contextlib
import gzip
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple

import httpx
import openai
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from tests.integration.gateway import gateway_process, running_gateway
from tests.integration.mockserver import running_mock
from tests.polling import wait_until

pytestmark = pytest.mark.integration

SERVICE = "modelway-under-test"
CONFIG = """
models:
  - name: retried
    retries: 1
    deployments:
      - {provider: anthropic, model: echo, headers: {x-mock-fault: "error:500,times:1"}}
"""


class Received(NamedTuple):
    """One span as the receiver decoded it, with its resource's attributes."""

    span: Span
    resource: dict[str, Any]

    @property
    def attributes(self) -> dict[str, Any]:
        return _attributes(self.span.attributes)


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    return getattr(value, kind) if kind else None


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


class Receiver:
    """An OTLP/HTTP trace receiver: ``POST /v1/traces`` of ``ExportTraceServiceRequest``."""

    def __init__(self) -> None:
        self.spans: list[Received] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces":
                    self.send_response(404)
                    self.end_headers()
                    return
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                receiver.add(request)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def add(self, request: ExportTraceServiceRequest) -> None:
        with self.lock:
            for resource_spans in request.resource_spans:
                resource = _attributes(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.spans.append(Received(span, resource))

    def trace(self, trace_id: str) -> list[Received]:
        wanted = bytes.fromhex(trace_id)
        with self.lock:
            return [r for r in self.spans if r.span.trace_id == wanted]


@contextlib.contextmanager
def running_receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
        thread.join(5)


class Setup(NamedTuple):
    receiver: Receiver
    gateway: str
    mock: str


@pytest.fixture(scope="module")
def setup() -> Iterator[Setup]:
    with running_receiver() as receiver, running_mock() as mock:
        env = {
            "ANTHROPIC_BASE_URL": mock,
            "ANTHROPIC_API_KEY": "sk-ant-test-key",
            "OPENAI_BASE_URL": f"{mock}/v1",
            "OPENAI_API_KEY": "sk-test-openai-key",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
            "OTEL_SERVICE_NAME": SERVICE,
            "OTEL_BSP_SCHEDULE_DELAY": "50",
        }
        with running_gateway(env, CONFIG) as gateway:
            yield Setup(receiver, gateway, mock)


@pytest.fixture
def client(setup: Setup) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{setup.gateway}/v1", api_key="x", max_retries=0) as sdk:
        yield sdk


class Caller(NamedTuple):
    """The trace a test's caller is in: its ids and the ``traceparent`` it sends."""

    trace_id: str
    span_id: str

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-01"


def new_caller() -> Caller:
    return Caller(secrets.token_hex(16), secrets.token_hex(8))


def spans_of(setup: Setup, caller: Caller, clients: int) -> tuple[Received, list[Received]]:
    """The call's server span and its ``clients`` attempt spans, once all have arrived."""

    def arrived() -> tuple[Received, list[Received]] | None:
        spans = setup.receiver.trace(caller.trace_id)
        servers = [r for r in spans if r.span.kind == Span.SPAN_KIND_SERVER]
        attempts = [r for r in spans if r.span.kind == Span.SPAN_KIND_CLIENT]
        if len(servers) != 1 or len(attempts) < clients:
            return None
        return servers[0], attempts

    server, attempts = wait_until(arrived, what="the call's spans")
    assert len(attempts) == clients
    return server, sorted(attempts, key=lambda r: r.span.start_time_unix_nano)


def upstream_traceparents(setup: Setup, caller: Caller) -> list[str]:
    stats = httpx.get(f"{setup.mock}/mock/stats").json()
    return [tp for tp in stats["traceparents"] if tp.split("-")[1] == caller.trace_id]


def check_server_span(server: Received, caller: Caller, model: str) -> dict[str, Any]:
    span = server.span
    assert span.name == f"chat {model}"
    assert span.trace_id.hex() == caller.trace_id
    assert span.parent_span_id.hex() == caller.span_id
    assert server.resource["service.name"] == SERVICE
    assert span.end_time_unix_nano >= span.start_time_unix_nano > 0
    return server.attributes


def check_attempts(server: Received, attempts: list[Received], provider: str) -> None:
    for attempt in attempts:
        span = attempt.span
        assert span.parent_span_id == server.span.span_id
        assert span.name == "chat echo"
        attributes = attempt.attributes
        assert attributes["gen_ai.operation.name"] == "chat"
        assert attributes["gen_ai.provider.name"] == provider
        assert attributes["gen_ai.request.model"] == "echo"
        assert attributes["server.address"] == "127.0.0.1"
        assert server.span.start_time_unix_nano <= span.start_time_unix_nano
        assert span.end_time_unix_nano <= server.span.end_time_unix_nano


def check_upstream_saw(setup: Setup, caller: Caller, attempts: list[Received]) -> None:
    """Each attempt's request carried a ``traceparent`` naming that attempt's span."""
    sent = upstream_traceparents(setup, caller)
    assert sorted(tp.split("-")[2] for tp in sent) == sorted(a.span.span_id.hex() for a in attempts)
    assert all(tp.startswith(f"00-{caller.trace_id}-") and tp.endswith("-01") for tp in sent)


def test_a_translated_call_is_a_server_span_with_an_attempt_span_under_the_callers_trace(
    setup: Setup, client: openai.OpenAI
) -> None:
    caller = new_caller()
    answer = client.chat.completions.create(
        model="anthropic/echo",
        messages=[{"role": "user", "content": "trace me"}],
        extra_headers={"traceparent": caller.traceparent},
    )
    assert answer.choices[0].message.content == "trace me"
    server, attempts = spans_of(setup, caller, clients=1)
    attributes = check_server_span(server, caller, "anthropic/echo")
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.provider.name"] == "anthropic"
    assert attributes["gen_ai.request.model"] == "anthropic/echo"
    assert attributes["gen_ai.response.model"] == "echo"
    assert answer.usage is not None
    assert attributes["gen_ai.usage.input_tokens"] == answer.usage.prompt_tokens > 0
    assert attributes["gen_ai.usage.output_tokens"] == answer.usage.completion_tokens > 0
    assert attributes["gen_ai.response.finish_reasons"] == ["stop"]
    assert attributes["http.response.status_code"] == 200
    assert server.span.status.code != Status.STATUS_CODE_ERROR
    check_attempts(server, attempts, "anthropic")
    assert attempts[0].span.status.code != Status.STATUS_CODE_ERROR
    check_upstream_saw(setup, caller, attempts)


def test_a_translated_stream_reports_its_finish_reason(setup: Setup, client: openai.OpenAI) -> None:
    caller = new_caller()
    chunks = list(
        client.chat.completions.create(
            model="anthropic/echo",
            messages=[{"role": "user", "content": "stream and trace me"}],
            stream=True,
            extra_headers={"traceparent": caller.traceparent},
        )
    )
    assert chunks[-1].choices[0].finish_reason == "stop"
    server, attempts = spans_of(setup, caller, clients=1)
    attributes = check_server_span(server, caller, "anthropic/echo")
    assert attributes["gen_ai.response.finish_reasons"] == ["stop"]
    assert attributes["gen_ai.usage.output_tokens"] > 0
    check_attempts(server, attempts, "anthropic")
    check_upstream_saw(setup, caller, attempts)


@pytest.mark.parametrize("stream", [False, True])
def test_a_relayed_call_sends_the_attempts_traceparent_upstream(
    setup: Setup, client: openai.OpenAI, stream: bool
) -> None:
    caller = new_caller()
    answer = client.chat.completions.with_raw_response.create(
        model="openai/echo",
        messages=[{"role": "user", "content": "relay and trace me"}],
        stream=stream,
        extra_headers={"traceparent": caller.traceparent},
    )
    answer.parse()
    server, attempts = spans_of(setup, caller, clients=1)
    attributes = check_server_span(server, caller, "openai/echo")
    assert attributes["modelway.dialect"] == "openai"
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["gen_ai.response.model"] == "echo"
    assert attributes["gen_ai.usage.input_tokens"] > 0
    assert attributes["gen_ai.usage.output_tokens"] > 0
    assert attributes["gen_ai.response.finish_reasons"] == ["stop"]  # as the upstream said
    check_attempts(server, attempts, "openai")
    check_upstream_saw(setup, caller, attempts)


def test_a_retried_call_has_a_span_per_attempt_the_failed_one_in_error(
    setup: Setup, client: openai.OpenAI
) -> None:
    caller = new_caller()
    answer = client.chat.completions.create(
        model="retried",
        messages=[{"role": "user", "content": "fail once"}],
        extra_headers={"traceparent": caller.traceparent},
    )
    assert answer.choices[0].message.content == "fail once"
    server, attempts = spans_of(setup, caller, clients=2)
    attributes = check_server_span(server, caller, "retried")
    assert attributes["http.response.status_code"] == 200
    assert attributes["modelway.retries"] == 1
    check_attempts(server, attempts, "anthropic")
    failed, answered = attempts
    assert failed.span.status.code == Status.STATUS_CODE_ERROR
    assert failed.attributes["error.type"] == "UpstreamStatusError"
    assert failed.attributes["http.response.status_code"] == 500
    assert answered.span.status.code != Status.STATUS_CODE_ERROR
    assert failed.span.end_time_unix_nano <= answered.span.start_time_unix_nano
    check_upstream_saw(setup, caller, attempts)


def test_a_refused_call_still_ends_its_span_in_error(setup: Setup, client: openai.OpenAI) -> None:
    caller = new_caller()
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="gemini/not-configured",
            messages=[{"role": "user", "content": "hello?"}],
            extra_headers={"traceparent": caller.traceparent},
        )
    server, _ = spans_of(setup, caller, clients=0)
    attributes = check_server_span(server, caller, "gemini/not-configured")
    assert server.span.status.code == Status.STATUS_CODE_ERROR
    assert attributes["http.response.status_code"] == 404
    assert attributes["error.type"] == "UnknownModel"
    assert "gen_ai.provider.name" not in attributes
    assert upstream_traceparents(setup, caller) == []


def test_a_call_without_traceparent_starts_its_own_trace(
    setup: Setup, client: openai.OpenAI
) -> None:
    answer = client.chat.completions.with_raw_response.create(
        model="anthropic/echo", messages=[{"role": "user", "content": "new trace"}]
    )
    request_id = answer.headers["x-request-id"]

    def server_span() -> Received | None:
        with setup.receiver.lock:
            spans = list(setup.receiver.spans)
        return next(
            (r for r in spans if r.attributes.get("modelway.request_id") == request_id), None
        )

    server = wait_until(server_span, what="the call's server span")
    assert server.span.parent_span_id == b""
    assert server.span.kind == Span.SPAN_KIND_SERVER


def test_an_embeddings_call_is_an_embeddings_span(setup: Setup, client: openai.OpenAI) -> None:
    caller = new_caller()
    vectors = client.embeddings.create(
        model="openai/text-embedding-3-small",
        input=["trace", "these"],
        extra_headers={"traceparent": caller.traceparent},
    )
    assert len(vectors.data) == 2
    spans = wait_until(
        lambda: (
            len(setup.receiver.trace(caller.trace_id)) == 2
            and setup.receiver.trace(caller.trace_id)
        ),
        what="the embeddings call's spans",
    )
    (server,) = [r for r in spans if r.span.kind == Span.SPAN_KIND_SERVER]
    (attempt,) = [r for r in spans if r.span.kind == Span.SPAN_KIND_CLIENT]
    assert server.span.name == "embeddings openai/text-embedding-3-small"
    assert server.span.parent_span_id.hex() == caller.span_id
    assert server.attributes["gen_ai.operation.name"] == "embeddings"
    assert attempt.span.name == "embeddings text-embedding-3-small"
    assert attempt.span.parent_span_id == server.span.span_id
    check_upstream_saw(setup, caller, [attempt])


def test_spans_still_waiting_leave_when_the_gateway_stops(setup: Setup) -> None:
    caller = new_caller()
    env = {
        "OPENAI_BASE_URL": f"{setup.mock}/v1",
        "OPENAI_API_KEY": "sk-test-openai-key",
        "OTEL_EXPORTER_OTLP_ENDPOINT": setup.receiver.url,
        "OTEL_BSP_SCHEDULE_DELAY": "600000",  # no batch leaves on its own during the test
    }
    with gateway_process(env) as (url, process):
        with openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as sdk:
            sdk.chat.completions.create(
                model="openai/echo",
                messages=[{"role": "user", "content": "flush me"}],
                extra_headers={"traceparent": caller.traceparent},
            )
        assert setup.receiver.trace(caller.trace_id) == []
        process.terminate()
        process.wait(timeout=30)
    spans = setup.receiver.trace(caller.trace_id)
    assert sorted(r.span.kind for r in spans) == [Span.SPAN_KIND_SERVER, Span.SPAN_KIND_CLIENT]
