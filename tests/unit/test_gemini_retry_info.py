"""Gemini says when to come back in its error body (``google.rpc.RetryInfo``), never in a
``Retry-After`` header: the gateway reads it there, waits it out before a retry and tells
its caller."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from modelway.providers.gemini import GeminiAdapter
from modelway.providers.transport import MockReply, MockTransport, UpstreamRequest
from modelway.providers.upstream import HttpProvider
from tests.unit.gateways import in_process_gateway


def exhausted(delay: Any) -> bytes:
    details = [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay},
    ]
    error = {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED"}
    return orjson.dumps({"error": {**error, "details": details}})


@pytest.mark.parametrize(
    ("delay", "seconds"),
    [("34s", 34.0), ("1.5s", 1.5), ("0s", 0.0), ("soon", None), (7, None), ("-3s", None)],
)
def test_retry_delay_is_read_from_retry_info(delay: Any, seconds: float | None) -> None:
    assert GeminiAdapter().error_retry_after(exhausted(delay)) == seconds


def test_an_error_body_without_retry_info_asks_for_no_wait() -> None:
    assert GeminiAdapter().error_retry_after(b"not json") is None
    assert GeminiAdapter().error_retry_after(b'{"error": {"details": "x"}}') is None


CONFIG = """
providers:
  gemini: {api_key: g-key, base_url: "http://gemini.test"}
models:
  - name: g
    retries: 0
    deployments: [{provider: gemini, model: gemini-2.5-flash}]
"""


async def test_a_gemini_429_tells_the_caller_its_retry_delay(tmp_path: Path) -> None:
    def gemini(request: UpstreamRequest) -> MockReply:
        return MockReply(429, exhausted("7s"), {"content-type": "application/json"})

    async with in_process_gateway(tmp_path, CONFIG) as setup:
        # The alias's deployment holds the configured provider: its transport is swapped.
        backend = setup.state.engine.router.backends["gemini"]
        assert isinstance(backend, HttpProvider)
        backend._transport = MockTransport(gemini)
        body = {"model": "g", "messages": [{"role": "user", "content": "hi"}]}
        response = await setup.http.post("/v1/chat/completions", json=body)

    assert response.status_code == 429, response.text
    assert response.headers["retry-after"] == "7"
    assert response.json()["error"]["type"] == "rate_limit_error"
