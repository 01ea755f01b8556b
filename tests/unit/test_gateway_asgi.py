"""The gateway as an ASGI app in-process: the direct chat path, embeddings, their records."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelway.dialects.openai import OpenAIDialect
from modelway.errors import RateLimited
from modelway.gateway import health
from modelway.gateway.dialect_paths import CHAT_PATHS
from modelway.gateway.http import error_response
from modelway.gateway.state import GatewayState
from modelway.providers.transport import MockReply, UpstreamRequest
from modelway.store.records import UsageRecord
from modelway.store.writer import UsageWriter
from tests.polling import eventually
from tests.unit.gateways import Setup, in_process_gateway

HELLO = [{"role": "user", "content": "hello there"}]


def openai_upstream(request: UpstreamRequest) -> MockReply:
    body = json.loads(request.body or b"{}")
    answer = {
        "id": "c1",
        "object": "chat.completion",
        "created": 0,
        "model": body["model"],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "from upstream"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
        "system_fingerprint": "kept-as-sent",
    }
    if not body.get("stream"):
        return MockReply(200, json.dumps(answer).encode())
    delta = {**answer, "object": "chat.completion.chunk"}
    choice = {"index": 0, "delta": {"content": "from upstream"}, "finish_reason": "stop"}
    delta["choices"] = [choice]
    events = [json.dumps(delta), "[DONE]"]
    sse = "".join(f"data: {event}\n\n" for event in events).encode()
    return MockReply(200, sse, {"content-type": "text/event-stream"})


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Setup]:
    # Priced, so an embedding's record carries a cost (the mock is free otherwise).
    prices = "prices:\n  mock/echo: {input_per_million: 1000000, output_per_million: 0}\n"
    async with in_process_gateway(tmp_path, prices, upstream=openai_upstream) as setup:
        yield setup


async def records(state: GatewayState, count: int) -> list[UsageRecord]:
    """The gateway's usage records once ``count`` have reached the store (newest first)."""

    async def stored() -> list[UsageRecord] | None:
        found = await state.store.usage.recent(limit=50)
        return found if len(found) >= count else None

    found = await eventually(stored)
    assert len(found) == count
    return found


# --- the direct chat path ------------------------------------------------------------------


async def test_a_chat_call_is_translated_on_the_direct_path_and_recorded(gateway: Setup) -> None:
    response = await gateway.http.post(
        "/v1/chat/completions",
        json={"model": "mock/echo", "messages": HELLO},
        headers={"x-request-id": "req-asgi-1"},
    )
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "hello there"
    assert response.headers["x-request-id"] == "req-asgi-1"
    assert response.headers["x-modelway-provider"] == "mock"
    [record] = await records(gateway.state, 1)
    assert (record.request_id, record.dialect, record.provider, record.status) == (
        "req-asgi-1",
        "openai",
        "mock",
        200,
    )


async def test_a_streamed_chat_call_ends_with_its_finish_marker(gateway: Setup) -> None:
    body = {"model": "mock/echo", "messages": HELLO, "stream": True}
    async with gateway.http.stream("POST", "/v1/chat/completions", json=body) as response:
        text = (await response.aread()).decode()
    assert response.headers["content-type"].startswith("text/event-stream")
    assert text.rstrip().endswith("data: [DONE]")
    [record] = await records(gateway.state, 1)
    assert record.stream and record.status == 200


async def test_a_call_to_a_provider_of_the_callers_format_is_relayed_as_sent(
    gateway: Setup,
) -> None:
    response = await gateway.http.post(
        "/v1/chat/completions", json={"model": "openai/gpt-x", "messages": HELLO}
    )
    answer = response.json()
    assert (answer["model"], answer["system_fingerprint"]) == ("gpt-x", "kept-as-sent")
    assert response.headers["x-modelway-provider"] == "openai"
    [record] = await records(gateway.state, 1)
    assert (record.prompt_tokens, record.completion_tokens) == (5, 2)


async def test_a_relayed_call_whose_stream_is_not_a_boolean_is_a_400(gateway: Setup) -> None:
    # The upstream would read "stream": 1 its own way; the gateway must know which it is.
    body = {"model": "openai/gpt-x", "messages": HELLO, "stream": 1}
    response = await gateway.http.post("/v1/chat/completions", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "stream: expected a boolean"


async def test_each_dialect_is_answered_in_its_own_shape(gateway: Setup) -> None:
    anthropic = await gateway.http.post(
        "/v1/messages", json={"model": "mock/echo", "max_tokens": 50, "messages": HELLO}
    )
    assert anthropic.json()["content"][0]["text"] == "hello there"
    ollama = await gateway.http.post(
        "/api/chat", json={"model": "mock/echo", "messages": HELLO, "stream": False}
    )
    assert ollama.json()["message"]["content"] == "hello there"
    refused = await gateway.http.post(
        "/v1/messages",
        json={"model": "mock/echo", "max_tokens": 50, "messages": HELLO},
        headers={"authorization": "Bearer mw-wrong-key-000000000000000000000000"},
    )
    assert refused.status_code == 401 and refused.json()["type"] == "error"
    recorded = {(r.dialect, r.status) for r in await records(gateway.state, 3)}
    assert recorded == {("anthropic", 200), ("ollama", 200), ("anthropic", 401)}


async def test_a_get_on_a_chat_path_is_a_405_in_the_usual_shape(gateway: Setup) -> None:
    response = await gateway.http.get("/v1/chat/completions")
    assert response.status_code == 405
    assert "does not take GET" in response.json()["error"]["message"]


# --- embeddings are metered calls ----------------------------------------------------------


async def _key(gateway: Setup, **settings: Any) -> dict[str, str]:
    _, plaintext = await gateway.state.store.keys.create("embedder", **settings)
    return {"authorization": f"Bearer {plaintext}"}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/embeddings", {"input": ["a", "b"]}),
        ("/api/embed", {"input": ["a", "b"]}),
    ],
    ids=["openai", "ollama"],
)
async def test_embeddings_obey_the_keys_models_and_rpm_and_are_recorded(
    gateway: Setup, path: str, body: dict[str, Any]
) -> None:
    headers = await _key(gateway, models=["mock/echo"], rpm=1)
    denied = await gateway.http.post(path, json={**body, "model": "mock/other"}, headers=headers)
    assert denied.status_code == 403
    served = await gateway.http.post(path, json={**body, "model": "mock/echo"}, headers=headers)
    assert served.status_code == 200
    assert served.headers["x-ratelimit-limit-requests"] == "1"
    assert served.headers["x-ratelimit-remaining-requests"] == "0"
    limited = await gateway.http.post(path, json={**body, "model": "mock/echo"}, headers=headers)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    found = await records(gateway.state, 3)
    assert sorted(r.status for r in found) == [200, 403, 429]
    [answered] = [r for r in found if r.status == 200]
    assert (answered.provider, answered.model) == ("mock", "echo")
    assert answered.prompt_tokens > 0 and answered.key_id is not None
    assert answered.cost_usd == pytest.approx(answered.prompt_tokens * 1.0)


@pytest.mark.parametrize("path", ["/v1/embeddings", "/api/embed"], ids=["openai", "ollama"])
async def test_embeddings_count_against_the_keys_tpm(gateway: Setup, path: str) -> None:
    headers = await _key(gateway, tpm=60)
    body = {"model": "mock/echo", "input": "words " * 30}
    served = await gateway.http.post(path, json=body, headers=headers)
    assert served.status_code == 200
    assert served.headers["x-ratelimit-limit-tokens"] == "60"
    assert int(served.headers["x-ratelimit-remaining-tokens"]) < 60
    refused = await gateway.http.post(path, json=body, headers=headers)
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert sorted(r.status for r in await records(gateway.state, 2)) == [200, 429]


async def test_an_embedding_budget_is_charged_and_then_refuses(gateway: Setup) -> None:
    headers = await _key(gateway, budget_tokens=1)
    body = {"model": "mock/echo", "input": "several words to count"}
    assert (await gateway.http.post("/v1/embeddings", json=body, headers=headers)).is_success
    refused = await gateway.http.post("/v1/embeddings", json=body, headers=headers)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "budget_exceeded"


@pytest.mark.parametrize(
    ("path", "body", "shape"),
    [
        (
            "/api/show",
            {},
            lambda body: "may not use model" in body["error"],
        ),
        (
            "/v1/messages/count_tokens",
            {"max_tokens": 5, "messages": HELLO},
            lambda body: body["type"] == "error" and body["error"]["type"] == "permission_error",
        ),
    ],
    ids=["ollama-show", "anthropic-count-tokens"],
)
async def test_a_key_limited_to_some_models_cannot_probe_others(
    gateway: Setup, path: str, body: dict[str, Any], shape: Any
) -> None:
    # As /v1/models/{id} and the calls themselves: a model outside the key's globs is
    # refused before it is looked up, whether or not anything serves it.
    headers = await _key(gateway, models=["mock/echo"])
    for model in ("mock/other", "openai/gpt-4o", "no-such-provider/x"):
        refused = await gateway.http.post(path, json={**body, "model": model}, headers=headers)
        assert refused.status_code == 403, refused.text
        assert shape(refused.json())
    allowed = await gateway.http.post(path, json={**body, "model": "mock/echo"}, headers=headers)
    assert allowed.status_code == 200, allowed.text


@pytest.mark.parametrize(
    ("path", "shape"),
    [
        ("/v1/embeddings", lambda body: body["error"]["type"] == "authentication_error"),
        ("/api/embed", lambda body: isinstance(body["error"], str)),
        ("/v1/messages/count_tokens", lambda body: body["type"] == "error"),
    ],
    ids=["openai", "ollama", "anthropic"],
)
async def test_a_wrong_key_is_refused_in_the_dialect_of_the_path(
    gateway: Setup, path: str, shape: Any
) -> None:
    refused = await gateway.http.post(
        path,
        json={"model": "mock/echo", "input": "x"},
        headers={"authorization": "Bearer mw-wrong-key-000000000000000000000000"},
    )
    assert refused.status_code == 401
    assert shape(refused.json())


@pytest.mark.parametrize(
    ("status", "code"), [(400, "context_length_exceeded"), (429, "insufficient_quota")]
)
async def test_an_openai_upstreams_error_code_reaches_the_caller(
    tmp_path: Path, status: int, code: str
) -> None:
    # What clients branch on (compact the context, stop retrying a spent quota).
    def refusing(request: UpstreamRequest) -> MockReply:
        return MockReply(status, b'{"error": {"message": "no", "code": "%s"}}' % code.encode())

    async with in_process_gateway(tmp_path, upstream=refusing) as gateway:
        body = {"model": "openai/gpt-4o", "messages": HELLO}
        refused = await gateway.http.post("/v1/chat/completions", json=body)
    assert refused.status_code == status
    assert refused.json()["error"]["code"] == code


@pytest.mark.parametrize("code", ["sk-upstream", "key-sk-upstream-x", "upstream", "up"])
async def test_an_upstream_error_code_that_quotes_the_provider_key_is_dropped(
    tmp_path: Path, code: str
) -> None:
    # The message was masked, but the code (an identifier a key can pass for) was not.
    def quoting(request: UpstreamRequest) -> MockReply:
        body = b'{"error": {"message": "bad key sk-upstream", "code": "%s"}}' % code.encode()
        return MockReply(400, body)

    async with in_process_gateway(tmp_path, upstream=quoting) as gateway:
        body = {"model": "openai/gpt-4o", "messages": HELLO}
        refused = await gateway.http.post("/v1/chat/completions", json=body)
    assert refused.status_code == 400
    assert "sk-upstream" not in refused.text
    # A code too short to hold a useful part of the key is not taken for one.
    assert refused.json()["error"]["code"] == ("up" if code == "up" else None)


async def test_an_upstream_refusing_the_provider_key_is_not_told_as_the_callers_wrong_key(
    tmp_path: Path,
) -> None:
    def refusing(request: UpstreamRequest) -> MockReply:
        # OpenAI's own body, code included: the caller must not read it as their key's.
        body = b'{"error": {"message": "Incorrect API key provided", "code": "invalid_api_key"}}'
        return MockReply(401, body)

    async with in_process_gateway(tmp_path, upstream=refusing) as gateway:
        body = {"model": "openai/gpt-4o", "messages": HELLO}
        refused = await gateway.http.post("/v1/chat/completions", json=body)
    error = refused.json()["error"]
    assert refused.status_code == 401
    assert (error["type"], error["code"]) == ("upstream_error", "upstream_authentication_failed")
    assert error["message"].startswith("openai answered 401: Incorrect API key provided")
    assert "the caller's key is not at fault" in error["message"]


@pytest.mark.parametrize(("seconds", "header"), [(0.2, b"1"), (1.0, b"1"), (12.3, b"13")])
def test_retry_after_is_whole_seconds_rounded_up(seconds: float, header: bytes) -> None:
    response = error_response(OpenAIDialect(), RateLimited("slow down", retry_after=seconds))
    assert (b"retry-after", header) in response.raw_headers


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_EMBED_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "model": st.sampled_from(["mock/echo", "", "nobody/x", "mock"]) | _JSON,
        "input": st.text(max_size=20) | st.lists(st.text(max_size=8), max_size=4) | _JSON,
        "dimensions": st.integers(-2, 4) | _JSON,
        "encoding_format": st.sampled_from(["float", "base64", "hex"]) | _JSON,
    },
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.sampled_from(["/v1/embeddings", "/api/embed"]),
    body=_EMBED_FIELDS.map(json.dumps).map(str.encode) | st.binary(max_size=40),
)
async def test_no_embedding_body_is_a_500(gateway: Setup, path: str, body: bytes) -> None:
    response = await gateway.http.post(path, content=body)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        error = response.json()["error"]
        assert isinstance(error, str) if path == "/api/embed" else isinstance(error["message"], str)


_CHAT_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "model": st.sampled_from(["mock/echo", "openai/gpt-x", "", "nobody/x"]) | _JSON,
        "messages": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "role": st.sampled_from(["user", "assistant", "x"]) | _JSON,
                    "content": st.text(max_size=10) | _JSON,
                },
            ),
            max_size=3,
        )
        | _JSON,
        "input": st.text(max_size=10) | _JSON,
        "prompt": st.text(max_size=10) | _JSON,
        "stream": st.booleans() | _JSON,
        "max_tokens": st.integers(-1, 50) | _JSON,
        "tools": _JSON,
    },
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.sampled_from(sorted(CHAT_PATHS)),
    body=_CHAT_FIELDS.map(json.dumps).map(str.encode) | st.binary(max_size=40),
)
async def test_no_chat_body_is_a_500_in_any_dialect(gateway: Setup, path: str, body: bytes) -> None:
    response = await gateway.http.post(path, content=body)
    # The upstream speaks Chat Completions only: a Responses call relayed to it is answered
    # in the wrong wire, which is the upstream's fault (502), never the gateway's (500).
    allowed = {502} if path.startswith("/v1/responses") else set()
    assert response.status_code < 500 or response.status_code in allowed, response.text


# --- readiness -------------------------------------------------------------------------------


async def test_readiness_turns_false_while_usage_records_have_nowhere_to_go(
    gateway: Setup, tmp_path: Path
) -> None:
    class FullDisk:
        """A store whose inserts fail as SQLite's do when the disk is full."""

        class usage:
            @staticmethod
            async def insert_many(records: Any) -> None:
                raise OSError(28, "database or disk is full")

    (tmp_path / "full").touch()  # the spill file's directory is a file: no spill either
    full: Any = FullDisk()
    writer = UsageWriter(full, tmp_path / "full" / "spill.jsonl", flush_interval=0.01)
    writer.start()
    accounts = gateway.state.calls.accounts
    kept, accounts.recorder = accounts.recorder, writer
    try:
        assert (await gateway.http.get("/health/ready")).status_code == 200
        await gateway.http.post(
            "/v1/chat/completions", json={"model": "mock/echo", "messages": HELLO}
        )

        async def unready() -> bool:
            response = await gateway.http.get("/health/ready")
            checks = response.json()["checks"]
            return response.status_code == 503 and checks["usage_records"] == "unwritable"

        await eventually(unready, what="readiness to say records cannot be written")
    finally:
        accounts.recorder = kept
        await writer.aclose()
    assert (await gateway.http.get("/health/ready")).status_code == 200


async def test_readiness_asks_the_store_and_health_reports_it(
    gateway: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = gateway.state.store
    reachable = True
    asked = 0

    async def ping() -> bool:
        nonlocal asked
        asked += 1
        return reachable

    monkeypatch.setattr(store, "ping", ping)
    monkeypatch.setattr(health, "ASKED_FOR", 0.0)
    assert (await gateway.http.get("/health/ready")).status_code == 200
    reachable = False
    health_answer = await gateway.http.get("/health")
    assert health_answer.json()["status"] == "degraded"
    assert health_answer.json()["dependencies"]["store"] == "unreachable"
    ready = await gateway.http.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json() == {
        "status": "unavailable",
        "checks": {"engine": "ok", "store": "unreachable", "usage_records": "ok"},
    }
    reachable = True
    assert (await gateway.http.get("/health/ready")).status_code == 200
    # Probes arriving together, or within ASKED_FOR of each other, share one asking.
    monkeypatch.setattr(health, "ASKED_FOR", 3600.0)
    before = asked
    answers = await asyncio.gather(*(gateway.http.get("/health/ready") for _ in range(20)))
    assert {answer.status_code for answer in answers} == {200} and asked <= before + 1
    # /health shares that asking: called in a loop, it sends the store no query per call.
    before = asked
    for _ in range(20):
        assert (await gateway.http.get("/health")).json()["dependencies"]["store"] == "ok"
    assert asked <= before + 1


async def test_readiness_can_leave_the_shared_store_out(tmp_path: Path) -> None:
    """``server.ready_needs_dependencies: false``: a store every replica shares being down
    does not pull every replica out of service; readiness shows it as last seen."""
    config = "server: {ready_needs_dependencies: false}\n"
    async with in_process_gateway(tmp_path, config) as gateway:
        store = gateway.state.store

        async def unreachable() -> bool:
            store.outage.failed(ConnectionRefusedError(111, "Connection refused"))
            return False

        store.ping = unreachable  # type: ignore[method-assign]
        assert (await gateway.http.get("/health")).json()["dependencies"]["store"] == "unreachable"
        ready = await gateway.http.get("/health/ready")
        assert ready.status_code == 200
        assert ready.json()["checks"]["store"] == "unreachable"  # as last seen, not asked
        store.outage.succeeded()
        assert (await gateway.http.get("/health/ready")).json()["checks"]["store"] == "ok"


@pytest.mark.parametrize(
    ("method", "path", "shape"),
    [
        ("DELETE", "/api/delete", "ollama"),  # the ollama SDK's delete(): an Ollama-shaped 404
        ("POST", "/api/embeddings", "ollama"),
        ("GET", "/v1/messages/batches", "anthropic"),
        ("GET", "/v1/nothing-here", "openai"),
    ],
)
async def test_an_unknown_route_is_a_404_in_the_format_of_its_callers(
    gateway: Setup, method: str, path: str, shape: str
) -> None:
    answer = await gateway.http.request(method, path, json={})
    assert answer.status_code == 404
    body = answer.json()
    if shape == "ollama":
        assert body == {"error": f"no route {method} {path}"}
    elif shape == "anthropic":
        assert body["type"] == "error" and body["error"]["type"] == "not_found_error"
    else:
        assert body["error"]["message"] == f"no route {method} {path}"


@pytest.mark.parametrize(
    ("method", "path", "meant"),
    [
        ("POST", "/v1/chat/completions/", "/v1/chat/completions"),
        ("GET", "/v1/models/", None),  # "/v1/models/{id}" with an empty id: a model not found
        ("GET", "/health/", "/health"),
        ("POST", "/api/chat/", "/api/chat"),
    ],
)
async def test_a_trailing_slash_is_told_to_an_api_client_not_redirected(
    gateway: Setup, method: str, path: str, meant: str | None
) -> None:
    # A redirect is no answer to a POST, and most API clients do not follow one.
    answer = await gateway.http.request(method, path, json={"model": "mock/echo"})
    assert answer.status_code == 404
    if meant is not None:
        assert f"(did you mean {meant}?)" in answer.text


async def test_a_browser_is_still_sent_to_the_page_without_the_slash(gateway: Setup) -> None:
    answer = await gateway.http.get("/admin/", headers={"accept": "text/html"})
    assert answer.status_code == 307 and answer.headers["location"].endswith("/admin")


# --- errors on the paths two dialects share, and errors nobody expected ---------------------------

WRONG_KEY = "mw-wrong-key-000000000000000000000000"


def anthropic_shaped(body: Any, kind: str) -> bool:
    return body["type"] == "error" and body["error"]["type"] == kind


def caller(gateway: Setup, **transport: bool) -> httpx.AsyncClient:
    """A client of ``gateway`` that sends no key unless told to."""
    asgi = httpx.ASGITransport(app=gateway.app, **transport)
    return httpx.AsyncClient(transport=asgi, base_url="http://gateway")


@pytest.mark.parametrize("path", ["/v1/models", "/v1/models/mock/echo"])
async def test_a_wrong_key_on_the_models_listing_is_refused_in_the_format_of_its_sdk(
    gateway: Setup, path: str
) -> None:
    async with caller(gateway) as http:
        anthropic_sdk = {"anthropic-version": "2023-06-01", "x-api-key": WRONG_KEY}
        as_anthropic = await http.get(path, headers=anthropic_sdk)
        as_openai = await http.get(path, headers={"authorization": f"Bearer {WRONG_KEY}"})
    assert as_anthropic.status_code == as_openai.status_code == 401
    assert anthropic_shaped(as_anthropic.json(), "authentication_error")
    assert as_openai.json()["error"]["type"] == "authentication_error"


async def test_the_anthropic_sdk_reads_a_refused_models_listing_as_an_authentication_error(
    gateway: Setup,
) -> None:
    # This anthropic SDK is built on httpx2, so its in-process transport comes from there.
    transport = httpx2.ASGITransport(app=gateway.app)
    async with (
        httpx2.AsyncClient(transport=transport) as http,
        anthropic.AsyncAnthropic(
            base_url="http://gateway", api_key=WRONG_KEY, http_client=http, max_retries=0
        ) as sdk,
    ):
        with pytest.raises(anthropic.AuthenticationError) as refused:
            await sdk.models.list()
    assert anthropic_shaped(refused.value.body, "authentication_error")


@pytest.mark.parametrize(
    ("method", "path", "headers", "shape"),
    [
        ("GET", "/api/tags", {}, "ollama"),
        ("POST", "/v1/messages/count_tokens", {}, "anthropic"),
        ("GET", "/v1/models", {}, "openai"),
        ("GET", "/v1/models", {"anthropic-version": "2023-06-01"}, "anthropic"),
    ],
)
async def test_an_unexpected_error_is_a_500_in_the_format_of_its_callers(
    gateway: Setup,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    path: str,
    headers: dict[str, str],
    shape: str,
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a fault of the gateway's own")

    monkeypatch.setattr(gateway.state.engine, "models", broken)
    monkeypatch.setattr(gateway.state.engine, "route", broken)
    # Starlette raises the error again once its 500 is sent (for servers to log): not here.
    async with caller(gateway, raise_app_exceptions=False) as http:
        http.headers.update(gateway.http.headers)
        answer = await http.request(
            method, path, headers=headers, json={"model": "mock/echo", "messages": HELLO}
        )
    assert answer.status_code == 500
    body = answer.json()
    if shape == "ollama":
        assert body == {"error": "internal gateway error"}
    elif shape == "anthropic":
        assert anthropic_shaped(body, "api_error")
    else:
        assert body["error"]["message"] == "internal gateway error"


async def test_a_refusal_no_retry_would_change_says_so_and_a_rate_limit_does_not(
    gateway: Setup,
) -> None:
    # SDKs and the agents on them obey x-should-retry: a wrong key, a bad body, a spent
    # budget are not asked again; a rate limit is, after its Retry-After.
    wrong_key = await gateway.http.post(
        "/v1/chat/completions",
        json={"model": "mock/echo", "messages": HELLO},
        headers={"authorization": "Bearer mw-wrong-key-000000000000000000000000"},
    )
    bad_body = await gateway.http.post("/v1/messages", content=b"{not json")
    created = await gateway.http.post(
        "/admin/api/keys", json={"name": "one a minute", "rpm": 1, "budget_usd": 0}
    )
    key = {"authorization": f"Bearer {created.json()['key']}"}
    spent = await gateway.http.post(
        "/v1/chat/completions", json={"model": "mock/echo", "messages": HELLO}, headers=key
    )
    for refused, status in ((wrong_key, 401), (bad_body, 400), (spent, 429)):
        assert refused.status_code == status, refused.text
        assert refused.headers["x-should-retry"] == "false"
    assert spent.json()["error"]["code"] == "budget_exceeded"
    limited_key = await gateway.http.post("/admin/api/keys", json={"name": "rpm", "rpm": 1})
    key = {"authorization": f"Bearer {limited_key.json()['key']}"}
    for _ in range(2):
        limited = await gateway.http.post(
            "/v1/chat/completions", json={"model": "mock/echo", "messages": HELLO}, headers=key
        )
    assert limited.status_code == 429 and "retry-after" in limited.headers
    assert "x-should-retry" not in limited.headers
