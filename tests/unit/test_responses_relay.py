"""A Responses API call to OpenAI upstreams is relayed as sent: what Codex CLI sends survives.

Upstreams of other wires (the mock here) still get it translated through the canonical form.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest

from modelway.calls.relay import relayable
from modelway.calls.scanners import ResponsesScanner
from modelway.config import parse_config
from modelway.errors import StreamTruncated
from modelway.gateway.app import create_app
from modelway.gateway.state import GatewayState
from modelway.mock.responses_dialect import MockResponsesDialect
from modelway.providers.openai import AzureAdapter, OpenAIAdapter
from modelway.providers.transport import MockReply, MockTransport, UpstreamRequest
from modelway.providers.upstream import HttpProvider
from modelway.routing.targets import Route, Target
from modelway.secrets import Secret
from modelway.store.records import UsageRecord
from tests.polling import eventually

MASTER = "mw-master-key-for-the-responses-relay-0123"
FIXTURES = Path(__file__).parent.parent / "fixtures" / "responses"
CODEX: dict[str, Any] = json.loads((FIXTURES / "codex_request.json").read_bytes())
STREAM = (FIXTURES / "stream_reasoning_text.sse").read_bytes()
#: The whole answer: the final response object of the streamed one, byte-exact spacing kept.
ANSWER = json.dumps(json.loads(STREAM.split(b"data: ")[-1])["response"], indent=1).encode()
PRICES = "prices:\n  openai/gpt-5: {input_per_million: 1000, output_per_million: 2000}\n"


class Setup(NamedTuple):
    http: httpx.AsyncClient
    state: GatewayState
    sent: list[UpstreamRequest]


def upstream(sent: list[UpstreamRequest], stream: bytes) -> Any:
    """An OpenAI upstream speaking Responses: ``ANSWER`` whole, or ``stream`` in two reads."""

    def handle(request: UpstreamRequest) -> MockReply:
        sent.append(request)
        if not json.loads(request.body or b"{}").get("stream"):
            return MockReply(200, ANSWER, {"content-type": "application/json"})
        half = len(stream) // 2
        return MockReply(200, _reads([stream[:half], stream[half:]]))

    return handle


async def _reads(pieces: list[bytes]) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


async def gateway_with(tmp_path: Path, stream: bytes) -> AsyncIterator[Setup]:
    environ = {"MODELWAY_DATA_DIR": str(tmp_path), "MODELWAY_MASTER_KEY": MASTER}
    app = create_app(parse_config(PRICES, environ), environ)
    sent: list[UpstreamRequest] = []
    async with app.lifespan():
        state: GatewayState = app.state.gateway
        state.engine.router.backends["openai"] = HttpProvider(
            "openai",
            OpenAIAdapter(),
            "http://upstream.test/v1",
            Secret("sk-upstream"),
            transport=MockTransport(upstream(sent, stream)),
        )
        headers = {"authorization": f"Bearer {MASTER}"}
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway", headers=headers
        ) as http:
            yield Setup(http, state, sent)


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Setup]:
    async for setup in gateway_with(tmp_path, STREAM):
        yield setup


@pytest.fixture
async def truncating_gateway(tmp_path: Path) -> AsyncIterator[Setup]:
    cut = STREAM.index(b"event: response.completed")
    async for setup in gateway_with(tmp_path, STREAM[:cut]):
        yield setup


async def only_record(state: GatewayState) -> UsageRecord:
    async def stored() -> list[UsageRecord]:
        return await state.store.usage.recent(limit=5)  # empty until written: tried again

    found: list[UsageRecord] = await eventually(stored, what="the usage record")
    [record] = found
    return record


# --- through the gateway ---------------------------------------------------------------------


async def test_a_codex_body_reaches_the_upstream_unchanged_but_for_its_model(
    gateway: Setup,
) -> None:
    body = {**CODEX, "model": "openai/gpt-5", "stream": False}
    response = await gateway.http.post("/v1/responses", json=body)
    assert response.status_code == 200
    [request] = gateway.sent
    assert request.url == "http://upstream.test/v1/responses"
    # Namespace and hosted tools, reasoning items, include, store, prompt_cache_key and
    # client_metadata: all of it as sent, and nothing added.
    assert json.loads(request.body or b"") == {**body, "model": "gpt-5"}


async def test_a_whole_relayed_answer_is_the_upstreams_bytes_and_is_recorded_with_usage(
    gateway: Setup,
) -> None:
    body = {**CODEX, "model": "openai/gpt-5", "stream": False}
    response = await gateway.http.post("/v1/responses", json=body)
    assert response.content == ANSWER
    assert response.headers["x-modelway-provider"] == "openai"
    record = await only_record(gateway.state)
    assert (record.dialect, record.status, record.stream) == ("responses", 200, False)
    assert (record.prompt_tokens, record.completion_tokens, record.cached_tokens) == (
        1200,
        300,
        1000,
    )
    assert record.cost_usd > 0


async def test_a_relayed_stream_is_the_upstreams_bytes_and_is_recorded_with_usage(
    gateway: Setup,
) -> None:
    body = {**CODEX, "model": "openai/gpt-5"}
    async with gateway.http.stream("POST", "/v1/responses", json=body) as response:
        sent = await response.aread()
    assert response.headers["content-type"].startswith("text/event-stream")
    assert sent == STREAM
    # stream_options is Chat Completions' field: a Responses body gets none.
    assert "stream_options" not in json.loads(gateway.sent[0].body or b"")
    record = await only_record(gateway.state)
    assert (record.status, record.stream) == (200, True)
    assert (record.prompt_tokens, record.completion_tokens, record.cached_tokens) == (
        1200,
        300,
        1000,
    )
    assert record.cost_usd > 0


async def test_a_relayed_stream_cut_before_response_completed_is_reported(
    truncating_gateway: Setup,
) -> None:
    body = {**CODEX, "model": "openai/gpt-5"}
    async with truncating_gateway.http.stream("POST", "/v1/responses", json=body) as response:
        sent = await response.aread()
    cut = STREAM.index(b"event: response.completed")
    assert sent.startswith(STREAM[:cut])
    last = sent[cut:]
    assert last.startswith(b"event: error\ndata: ")
    error = json.loads(last.split(b"data: ", 1)[1])
    assert error["type"] == "error" and error["sequence_number"] == 11
    assert "response.completed" in error["message"]
    record = await only_record(truncating_gateway.state)
    assert record.status != 200 and record.error_type == "StreamTruncated"


async def test_a_responses_call_to_the_mock_is_still_translated(gateway: Setup) -> None:
    response = await gateway.http.post("/v1/responses", json={"model": "mock/echo", "input": "hi"})
    assert response.status_code == 200
    assert response.json()["output"][0]["content"][0]["text"] == "hi"
    # Translated, a Codex body's namespace tools are flattened and its hosted tools dropped.
    codex = await gateway.http.post("/v1/responses", json={**CODEX, "model": "mock/echo"})
    assert codex.status_code == 200, codex.text
    assert codex.headers["x-modelway-dropped-tools"] == "web_search"
    assert gateway.sent == []


# --- which routes are relayed ----------------------------------------------------------------


def _route(*adapters: OpenAIAdapter, name: str = "openai") -> Route:
    targets = [
        Target(
            HttpProvider(name, adapter, "http://p.test/v1", None, transport=MockTransport(_never)),
            "m",
        )
        for adapter in adapters
    ]
    return Route(targets, 0, None, None)  # type: ignore[arg-type]


def _never(request: UpstreamRequest) -> MockReply:
    raise AssertionError("no request is sent")


def test_responses_are_relayed_to_openai_and_azure_upstreams() -> None:
    assert relayable(_route(OpenAIAdapter()), "responses")
    assert relayable(_route(OpenAIAdapter()), "openai")
    assert relayable(_route(AzureAdapter(), name="azure"), "responses")
    assert relayable(_route(OpenAIAdapter(), AzureAdapter()), "openai")
    # Azure serves Responses on its v1 API, chat under the deployment.
    assert AzureAdapter().path("responses", "dep") == "/openai/v1/responses"


async def test_a_codex_call_to_azure_reaches_its_v1_api_as_sent(gateway: Setup) -> None:
    gateway.state.engine.router.backends["azure"] = HttpProvider(
        "azure",
        AzureAdapter(),
        "https://contoso.openai.azure.com",
        Secret("az-key-0123456789"),
        transport=MockTransport(upstream(gateway.sent, STREAM)),
    )
    body = {**CODEX, "model": "azure/prod-gpt5", "stream": False}
    response = await gateway.http.post("/v1/responses", json=body)
    assert response.status_code == 200 and response.content == ANSWER
    [request] = gateway.sent
    assert request.url == "https://contoso.openai.azure.com/openai/v1/responses"
    assert request.headers["api-key"] == "az-key-0123456789"
    # The deployment is the model; namespace and hosted tools and the rest as sent.
    assert json.loads(request.body or b"") == {**body, "model": "prod-gpt5"}


def test_responses_to_chat_only_openai_compatible_services_are_translated() -> None:
    # DeepSeek, Mistral and most OpenAI-compatible services serve no /v1/responses.
    for name in ("deepseek", "mistral", "groq"):
        assert not relayable(_route(OpenAIAdapter(), name=name), "responses")
        assert relayable(_route(OpenAIAdapter(), name=name), "openai")


# --- the scanner ------------------------------------------------------------------------------


def scan(pieces: list[bytes]) -> tuple[bytes, ResponsesScanner]:
    scanner = ResponsesScanner()
    out = b"".join(scanner.feed(piece) for piece in pieces)
    return out + scanner.close(), scanner


def test_every_split_point_relays_the_same_bytes_and_reads_the_final_usage() -> None:
    for cut in range(0, len(STREAM), 7):
        out, scanner = scan([STREAM[:cut], STREAM[cut:]])
        assert out == STREAM
        assert scanner.usage is not None
        assert (scanner.usage.prompt_tokens, scanner.usage.completion_tokens) == (1200, 300)
        assert scanner.usage.cached_tokens == 1000


@pytest.mark.parametrize("end", ["response.incomplete", "response.failed"])
def test_an_incomplete_or_failed_response_ends_the_stream(end: str) -> None:
    event = {"type": end, "sequence_number": 1, "response": {"status": end[9:], "usage": None}}
    stream = f"event: {end}\ndata: {json.dumps(event)}\n\n".encode()
    out, scanner = scan([stream])
    assert out == stream and scanner.done and scanner.usage is None


def test_a_done_marker_some_compatible_servers_add_is_dropped_not_an_error() -> None:
    # A [DONE] after response.completed was "a stream chunk that is not JSON": an error
    # event after a whole answer.
    out, scanner = scan([STREAM, b"data: [DONE]\n\n"])
    assert out == STREAM and scanner.done and scanner.usage is not None


def test_a_stream_without_its_final_event_is_truncated() -> None:
    cut = STREAM.index(b"event: response.completed")
    scanner = ResponsesScanner()
    assert scanner.feed(STREAM[:cut]) == STREAM[:cut]
    with pytest.raises(StreamTruncated):
        scanner.close()


# --- the mock as an OpenAI upstream ------------------------------------------------------------


def test_the_mock_takes_a_codex_body_and_offers_its_namespaced_functions() -> None:
    request = MockResponsesDialect().decode_chat({**CODEX, "model": "echo"})
    assert [tool.name for tool in request.tools] == ["shell", "read"]
    assert request.stream
