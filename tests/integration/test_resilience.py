"""Resilient routing against real processes: retries, failover, fallbacks, cooldown,
timeouts, client disconnects and graceful shutdown, with ``modelway mock`` faults.

Each alias sends its own ``x-mock-fault`` value, so the mock's per-value counts
(``fault_uses`` in ``/mock/stats``) say how often each deployment was asked.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import tempfile
import time
from collections.abc import Iterator
from urllib.parse import urlparse

import httpx
import pytest

from modelway.store import Store, database_url
from modelway.store.records import UsageRecord
from tests.integration.gateway import gateway_process, running_gateway
from tests.polling import wait_until

RESILIENCE_ALIASES = """
server:
  retries: 0
models:
  - name: wait-then-answer
    retries: 1
    deployments:
      - {provider: openai, model: echo,
         headers: {x-mock-fault: "error:429,times:1", x-mock-retry-after: "2"}}
  - name: bad-request
    retries: 3
    deployments:
      - {provider: openai, model: echo, headers: {x-mock-fault: "error:400,times:99"}}
  - name: second-deployment
    deployments:
      - {provider: openai, model: echo, headers: {x-mock-fault: "error:503,times:99"}}
      - {provider: anthropic, model: echo}
  - name: primary-down
    deployments:
      - {provider: openai, model: echo, headers: {x-mock-fault: "error:500,times:999"}}
    fallbacks: [backup]
  - name: backup
    deployments: [{provider: ollama, model: echo}]
  - name: flaky
    cooldown: {failures: 2, window: 60, seconds: 1.5}
    deployments:
      - {provider: openai, model: echo, headers: {x-mock-fault: "error:500,times:2"}}
      - {provider: anthropic, model: echo}
  - name: unreachable-first
    strategy: weighted
    deployments:
      - {provider: openai, model: echo, base_url: "http://127.0.0.1:1/v1", weight: 1000}
      - {provider: anthropic, model: echo}
  - name: over-time
    timeouts: {total: 0.5}
    deployments:
      - {provider: openai, model: echo, headers: {x-mock-fault: "stall:1500"}}
  - name: cut-answer
    strategy: weighted
    deployments:
      - {provider: openai, model: echo, headers: {x-mock-fault: "truncate"}, weight: 1000}
      - {provider: anthropic, model: echo, weight: 1}
  - name: breaks-mid-stream
    cooldown: {failures: 2, window: 60, seconds: 60}
    deployments:
      - {provider: openai, model: echo, headers: {x-mock-fault: "truncate"}}
  - name: long-stall
    deployments:
      - {provider: openai, model: echo, headers: {x-mock-fault: "stall:8000"}}
  - name: long-stall-anthropic
    deployments:
      - {provider: anthropic, model: echo, headers: {x-mock-fault: "stall:8000"}}
  - name: head-after-total
    timeouts: {connect: 2, first_token: 10, stall: 10, total: 1}
    deployments:
      - {provider: openai, model: echo, headers: {x-mock-fault: "slow-head:3000"}}
  - name: head-after-total-anthropic
    timeouts: {connect: 2, first_token: 10, stall: 10, total: 1}
    deployments:
      - {provider: anthropic, model: echo, headers: {x-mock-fault: "slow-head:3000"}}
  - name: always-429
    cooldown: {failures: 1000, window: 60, seconds: 30}
    deployments:
      - {provider: openai, model: echo,
         headers: {x-mock-fault: "error:429", x-mock-retry-after: "1"}}
"""


def _env(mock_url: str) -> dict[str, str]:
    return {
        "OPENAI_BASE_URL": f"{mock_url}/v1",
        "OPENAI_API_KEY": "sk-test",
        "ANTHROPIC_BASE_URL": mock_url,
        "ANTHROPIC_API_KEY": "sk-ant-test",
        "OLLAMA_BASE_URL": mock_url,
    }


@pytest.fixture(scope="module")
def gateway(mock_url: str) -> Iterator[str]:
    with running_gateway(_env(mock_url), RESILIENCE_ALIASES) as url:
        yield url


def chat(gateway: str, model: str, text: str = "hello there", **extra: object) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": text}], **extra}
    return httpx.post(f"{gateway}/v1/chat/completions", json=body, timeout=30)


def fault_uses(mock_url: str, fault: str) -> int:
    uses: dict[str, int] = httpx.get(f"{mock_url}/mock/stats").json()["fault_uses"]
    return uses.get(fault, 0)


def deployment_states(gateway: str, alias: str) -> list[str]:
    deployments = httpx.get(f"{gateway}/health").json()["deployments"][alias]
    return [d["state"] for d in deployments]


def test_a_429_is_retried_after_its_retry_after_and_not_before(gateway: str, mock_url: str) -> None:
    started = time.monotonic()
    response = chat(gateway, "wait-then-answer")
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "hello there"
    assert response.headers["x-modelway-attempts"] == "2"
    assert fault_uses(mock_url, "error:429,times:1") == 2
    assert elapsed >= 2.0  # the upstream said "wait 2 s"


def test_a_400_is_never_retried(gateway: str, mock_url: str) -> None:
    response = chat(gateway, "bad-request")
    assert response.status_code == 400
    assert "error" in response.json()
    assert fault_uses(mock_url, "error:400,times:99") == 1
    # Said like any error after attempts: how many calls, and whom it asked.
    assert response.headers["x-modelway-attempts"] == "1"
    assert response.headers["x-modelway-provider"] == "openai"


def test_a_whole_answer_cut_short_fails_over_like_a_502(gateway: str) -> None:
    # The first deployment's answers stop mid-body (not JSON): the next one answers.
    for _ in range(3):
        response = chat(gateway, "cut-answer", "still here")
        assert response.status_code == 200
        assert response.json()["choices"][0]["message"]["content"] == "still here"
        assert response.headers["x-modelway-provider"] == "anthropic"


def test_streams_that_break_mid_way_cool_their_deployment_down(gateway: str) -> None:
    body = {
        "model": "breaks-mid-stream",
        "stream": True,
        "messages": [{"role": "user", "content": "a b c"}],
    }
    for _ in range(2):
        with httpx.stream("POST", f"{gateway}/v1/chat/completions", json=body, timeout=30) as reply:
            text = reply.read().decode()
        assert "ended before [DONE]" in text and "data: [DONE]" not in text  # an error event
    assert deployment_states(gateway, "breaks-mid-stream") == ["cooling"]
    refused = chat(gateway, "breaks-mid-stream")
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "no_deployment_available"
    assert refused.headers["x-modelway-attempts"] == "0"  # as every error says: none asked


def test_a_probe_answered_429_rests_as_asked_and_callers_keep_getting_429(
    gateway: str,
) -> None:
    """The probe's 429 (Retry-After 1) benched the deployment for the 30 s cooldown: every
    caller got 503 no_deployment_available for 30 s instead of the provider's 429."""
    assert chat(gateway, "always-429").status_code == 429
    wait_until(lambda: deployment_states(gateway, "always-429") == ["probing"])
    assert chat(gateway, "always-429").status_code == 429  # the probe, answered 429
    after = chat(gateway, "always-429")  # resting as asked (or probing again: 1 s is short)
    assert after.status_code == 429, after.text
    assert after.json()["error"]["code"] == "rate_limit_exceeded"
    assert 1 <= int(after.headers["retry-after"]) <= 2
    [health] = httpx.get(f"{gateway}/health").json()["deployments"]["always-429"]
    assert health["cooling_because"] == "upstream asked to wait 1 s"


def test_a_failing_deployment_fails_over_to_the_next(gateway: str) -> None:
    # Round-robin: whichever deployment goes first, the answer comes from anthropic.
    for _ in range(2):
        response = chat(gateway, "second-deployment", "still here")
        assert response.status_code == 200
        assert response.json()["choices"][0]["message"]["content"] == "still here"
        assert response.headers["x-modelway-provider"] == "anthropic"
        assert "x-modelway-fallback" not in response.headers


def test_a_deployment_that_cannot_be_reached_fails_over_to_the_next(gateway: str) -> None:
    # Nothing listens on port 1: the connection is refused, a retryable failure.
    response = chat(gateway, "unreachable-first", "through the other one")
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "through the other one"
    assert response.headers["x-modelway-provider"] == "anthropic"


def test_a_fallback_alias_answers_and_the_response_says_so(gateway: str) -> None:
    response = chat(gateway, "primary-down", "from the backup")
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "from the backup"
    assert response.headers["x-modelway-fallback"] == "backup"
    assert response.headers["x-modelway-provider"] == "ollama"


def test_a_failing_deployment_cools_down_then_is_probed_back_in(
    gateway: str, mock_url: str
) -> None:
    fault = "error:500,times:2"
    # Two failures (each answered by the other deployment) cool the first one down.
    wait_until(
        lambda: chat(gateway, "flaky").status_code == 200 and fault_uses(mock_url, fault) >= 2
    )
    assert deployment_states(gateway, "flaky")[0] == "cooling"
    for _ in range(4):
        assert chat(gateway, "flaky").headers["x-modelway-provider"] == "anthropic"
    assert fault_uses(mock_url, fault) == 2  # skipped while cooling
    # After its rest one request probes it; the upstream has recovered, so it is back.
    wait_until(lambda: deployment_states(gateway, "flaky")[0] == "probing")
    providers = {chat(gateway, "flaky").headers["x-modelway-provider"] for _ in range(4)}
    assert "openai" in providers
    assert deployment_states(gateway, "flaky")[0] == "healthy"


def test_a_stream_longer_than_the_total_timeout_is_cut_with_an_error_event(
    gateway: str,
) -> None:
    with httpx.stream(
        "POST",
        f"{gateway}/v1/chat/completions",
        json={
            "model": "over-time",
            "stream": True,
            "messages": [{"role": "user", "content": "a b c"}],
        },
        timeout=30,
    ) as response:
        body = response.read().decode()
    assert response.status_code == 200
    assert '"error"' in body and "too slow" in body
    assert "[DONE]" not in body


@pytest.mark.parametrize("model", ["head-after-total", "head-after-total-anthropic"])
def test_a_streams_wait_for_its_head_is_bounded_by_the_total_timeout(
    gateway: str, model: str
) -> None:
    """total: 1, first_token: 10, an upstream that sends its head after 3 s: the same call
    unstreamed was a 504, streamed it was a 200 with the whole answer (relayed, and
    translated from another provider's format)."""
    body = {"model": model, "stream": True, "messages": [{"role": "user", "content": "a b"}]}
    response = httpx.post(f"{gateway}/v1/chat/completions", json=body, timeout=30)
    assert response.status_code == 504, response.text
    assert "waited longer than allowed for the whole answer (1 s total)" in response.text


def test_a_whole_answer_past_the_total_timeout_names_the_limit(gateway: str) -> None:
    # It said "upstream did not answer in time", naming neither the limit nor its seconds.
    response = chat(gateway, "head-after-total")
    assert response.status_code == 504, response.text
    message = response.json()["error"]["message"]
    assert message.endswith("waited longer than allowed for the whole answer (1 s total)")


def _open_stream_and_leave(gateway: str, path: str, body: bytes, headers: str = "") -> None:
    """Read the start of a streamed answer over a raw socket, then hang up."""
    url = urlparse(gateway)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        request = (
            f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\ncontent-type: application/json\r\n"
            f"{headers}content-length: {len(body)}\r\n\r\n"
        ).encode() + body
        sock.sendall(request)
        received = b""
        while b"data:" not in received:
            received += sock.recv(4096)


@pytest.mark.parametrize(
    ("path", "model", "headers"),
    [
        ("/v1/chat/completions", "long-stall", ""),  # relayed as is
        ("/v1/chat/completions", "long-stall-anthropic", ""),  # translated
    ],
)
def test_a_client_that_hangs_up_cancels_the_upstream_call(
    gateway: str, mock_url: str, path: str, model: str, headers: str
) -> None:
    def cancelled() -> int:
        return int(httpx.get(f"{mock_url}/mock/stats").json()["cancelled_streams"])

    before = cancelled()
    body = (
        b'{"model": "' + model.encode() + b'", "stream": true, '
        b'"messages": [{"role": "user", "content": "one two three"}]}'
    )
    _open_stream_and_leave(gateway, path, body, headers)
    # The upstream stalls for 8 s: seeing it cancelled well before proves the hang-up reached it.
    wait_until(lambda: cancelled() > before, within=4.0)


def test_a_client_that_hangs_up_before_the_answer_stops_the_call(mock_url: str) -> None:
    """No answer yet, the caller gone: the call ends at once as 499 (not when the
    upstream answers, 8 s later, charged for an answer nobody reads)."""
    config = """
models:
  - name: slow-answer
    deployments:
      - {provider: openai, model: echo, headers: {x-mock-fault: "slow-first-token:8000"}}
"""
    with tempfile.TemporaryDirectory() as data:
        env = {**_env(mock_url), "MODELWAY_DATA_DIR": data}
        with running_gateway(env, config) as url:
            body = b'{"model": "slow-answer", "messages": [{"role": "user", "content": "hi"}]}'
            address = urlparse(url)
            with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
                head = (
                    f"POST /v1/chat/completions HTTP/1.1\r\nHost: {address.netloc}\r\n"
                    f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
                )
                sock.sendall(head.encode() + body)
                time.sleep(0.5)  # the call is under way upstream

            def records() -> list[UsageRecord]:
                return asyncio.run(_recent_records(env))

            wait_until(lambda: len(records()) == 1, within=6.0)
            record = records()[0]
            assert record.status == 499
            assert record.latency_ms < 8000


async def _recent_records(env: dict[str, str]) -> list[UsageRecord]:
    store = await Store.open(database_url(env))
    try:
        return await store.usage.recent(limit=5)
    finally:
        await store.aclose()


def test_sigterm_lets_an_open_stream_finish_then_exits(mock_url: str) -> None:
    config = """
server: {shutdown_grace: 20}
models:
  - name: slow
    deployments:
      - {provider: openai, model: echo, headers: {x-mock-fault: "stall:1500"}}
"""
    with gateway_process(_env(mock_url), config) as (url, process):
        with httpx.stream(
            "POST",
            f"{url}/v1/chat/completions",
            json={
                "model": "slow",
                "stream": True,
                "messages": [{"role": "user", "content": "x y"}],
            },
            timeout=30,
        ) as response:
            chunks = response.iter_text()
            first = next(chunks)
            assert "data:" in first
            process.send_signal(signal.SIGTERM)
            rest = "".join(chunks)
        assert "[DONE]" in rest
        assert '"error"' not in rest
        assert process.wait(timeout=15) == 0
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/health/live", timeout=2)


def test_a_stream_longer_than_the_grace_is_cut_recorded_and_the_worker_exits(
    mock_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # granian waits for every open connection before the worker's own grace began: a
    # stream longer than it was killed 5 s later, its usage record lost, nothing logged.
    config = """
server: {shutdown_grace: 2}
models:
  - name: endless
    deployments:
      - {provider: openai, model: echo, headers: {x-mock-fault: "stall:60000"}}
"""
    env = {**_env(mock_url), "MODELWAY_DATA_DIR": str(tmp_path_factory.mktemp("cut"))}
    with gateway_process(env, config) as (url, process):
        with httpx.stream(
            "POST",
            f"{url}/v1/chat/completions",
            json={
                "model": "endless",
                "stream": True,
                "messages": [{"role": "user", "content": "x y"}],
            },
            headers={"x-request-id": "cut-at-grace"},
            timeout=60,
        ) as response:
            chunks = response.iter_text()
            assert "data:" in next(chunks)
            process.send_signal(signal.SIGTERM)
            rest = "".join(chunks)
        # Cut at the end of the grace with its format's error event, not ended as if done.
        assert "[DONE]" not in rest and '"error"' in rest and "stopped" in rest, rest
        assert process.wait(timeout=30) == 0
    [record] = [r for r in asyncio.run(_recent_records(env)) if r.request_id == "cut-at-grace"]
    assert (record.status, record.error_type) == (503, "ServerStopping")
