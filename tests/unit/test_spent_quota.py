"""A provider account out of quota or credit, however its provider says so: not retried,
the next deployment asked at once, and the caller told it is the provider account's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelway.config import parse_config
from modelway.engine import Engine
from modelway.errors import (
    BadRequest,
    RateLimited,
    UpstreamQuotaSpent,
    UpstreamStatusError,
    spent_quota,
)
from modelway.providers.registry import adapter_for
from modelway.providers.transport import MockReply, MockTransport, UpstreamRequest
from modelway.providers.upstream import HttpProvider
from modelway.secrets import Secret
from modelway.types import ChatRequest, Message, TextPart
from tests.unit.gateways import Setup, in_process_gateway, openai_upstream

#: What Anthropic long answered an account out of credit: a 400, as for a malformed request.
CREDIT_TOO_LOW = orjson.dumps(
    {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "Your credit balance is too low to access the Anthropic API. "
            "Please go to Plans & Billing to upgrade or purchase credits.",
        },
    }
)
#: And what it documents now.
BILLING_ERROR = orjson.dumps(
    {"type": "error", "error": {"type": "billing_error", "message": "Check your payment details"}}
)
#: OpenRouter's and DeepSeek's way: 402 Payment Required, the code a number.
PAYMENT_REQUIRED = orjson.dumps({"error": {"message": "Insufficient credits", "code": 402}})
HELLO = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("status", "code", "spent"),
    [
        (429, "insufficient_quota", True),
        (400, "insufficient_quota", True),
        (402, None, True),
        (402, "anything", True),
        (429, None, False),
        (429, "rate_limit_exceeded", False),
        (400, None, False),
        (403, "insufficient_quota", False),
        (500, "insufficient_quota", False),
    ],
)
def test_which_upstream_errors_are_a_spent_quota(
    status: int, code: str | None, spent: bool
) -> None:
    assert spent_quota(status, code) is spent
    error = UpstreamStatusError("x", upstream_status=status, upstream_code=code)
    assert isinstance(error, UpstreamQuotaSpent) is spent
    if spent:
        assert (error.retryable, error.fails_over, error.benches) == (False, True, True)
        assert (error.code, error.kind) == ("insufficient_quota", "insufficient_quota")
        # A 429 stays OpenAI's own answer; anything else is no malformed request: a 402.
        assert error.status == (429 if status == 429 else 402)
        assert not isinstance(error, BadRequest | RateLimited)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (CREDIT_TOO_LOW, "insufficient_quota"),
        (BILLING_ERROR, "insufficient_quota"),
        (
            b'{"type": "error", "error": {"type": "invalid_request_error", "message": '
            b'"You have reached your specified API usage limits. You will regain access on '
            b'2027-01-01 at 00:00 UTC."}}',
            "insufficient_quota",
        ),
        (b'{"type": "error", "error": {"type": "invalid_request_error", "message": "bad"}}', None),
        (b'{"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}}', None),
        (b"<html>502 Bad Gateway</html>", None),
        (b'{"error": "credit balance is too low"}', None),
        (b"[]", None),
    ],
)
def test_anthropic_says_a_spent_account_in_its_own_words(body: bytes, code: str | None) -> None:
    assert adapter_for("anthropic").error_code(body) == code


@given(st.binary(max_size=300))
def test_any_error_body_gives_a_code_or_none(body: bytes) -> None:
    for wire in ("anthropic", "openai", "gemini", "ollama"):
        code = adapter_for(wire).error_code(body)
        assert code is None or (isinstance(code, str) and 0 < len(code) <= 64)


def anthropic_answers(status: int, body: bytes, asked: list[str]) -> MockTransport:
    def answer(request: UpstreamRequest) -> MockReply:
        asked.append(request.url)
        return MockReply(status, body)

    return MockTransport(answer)


PAIR = """
providers:
  claude: {wire: anthropic, base_url: "http://anthropic.test"}
  gpt: {wire: openai, base_url: "http://openai.test/v1"}
models:
  - name: pair
    retries: 2
    deployments: [{provider: claude, model: claude-spent}, {provider: gpt, model: gpt-4o}]
"""


def provider(name: str, wire: str, transport: MockTransport) -> HttpProvider:
    return HttpProvider(
        name, adapter_for(wire), f"http://{name}.test", Secret("sk-x"), transport=transport
    )


@pytest.mark.parametrize(("status", "body"), [(400, CREDIT_TOO_LOW), (402, PAYMENT_REQUIRED)])
async def test_an_account_out_of_credit_fails_over_at_once_and_sits_out(
    status: int, body: bytes
) -> None:
    asked: list[str] = []
    engine = Engine(
        parse_config(PAIR, {}),
        {},
        {
            "claude": provider("claude", "anthropic", anthropic_answers(status, body, asked)),
            "gpt": provider("gpt", "openai", MockTransport(openai_upstream)),
        },
    )
    request = ChatRequest(model="pair", messages=[Message("user", [TextPart("hi")])])
    for _ in range(5):
        answer, outcome = await engine.complete(request, request_id="r")
        assert answer.message.text() == "hi" and outcome.target.backend.name == "gpt"
    # Not retried (waiting does not refill an account), and after its cooldown's three
    # failures no longer asked first: the next two calls went straight to the other.
    assert len(asked) == 3
    await engine.aclose()


@pytest.fixture
async def spent_anthropic(tmp_path: Path) -> AsyncIterator[Setup]:
    async with in_process_gateway(tmp_path) as setup:
        setup.state.engine.router.backends["anthropic"] = provider(
            "anthropic", "anthropic", anthropic_answers(400, CREDIT_TOO_LOW, [])
        )
        yield setup


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", {"model": "anthropic/claude-spent", "messages": HELLO}),
        (
            "/v1/messages",
            {"model": "anthropic/claude-spent", "max_tokens": 10, "messages": HELLO},
        ),
    ],
)
async def test_every_account_out_of_credit_is_a_402_that_says_whose(
    spent_anthropic: Setup, path: str, body: dict[str, object]
) -> None:
    refused = await spent_anthropic.http.post(path, json=body)
    assert refused.status_code == 402
    error = refused.json()["error"]
    assert "credit balance is too low" in error["message"]
    assert "out of quota; the caller's own limits are not at fault" in error["message"]
    if path == "/v1/messages":
        assert error["type"] == "billing_error"
    else:
        assert (error["type"], error["code"]) == ("insufficient_quota", "insufficient_quota")
