"""Real processes: one ``modelway mock`` upstream and one gateway pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.gateway import running_gateway
from tests.integration.mockserver import running_mock

#: Aliases whose upstream misbehaves on purpose (``x-mock-fault`` travels as a deployment header).
#: Every test module on a worker shares this gateway, so the ones that fail on purpose
#: never cool down: a test's answer must not depend on how many others
#: asked the same alias within the last minute.
FAULTY_ALIASES = """
models:
  - name: broken
    retries: 0
    cooldown: {failures: 1000000}
    deployments:
      - {provider: openai, model: echo, headers: {x-mock-fault: "error:500"}}
  - name: truncated
    retries: 0
    cooldown: {failures: 1000000}
    deployments:
      - {provider: openai, model: echo, headers: {x-mock-fault: truncate}}
  - name: truncated-anthropic
    retries: 0
    cooldown: {failures: 1000000}
    deployments:
      - {provider: anthropic, model: echo, headers: {x-mock-fault: truncate}}
  - name: corrupt
    retries: 0
    cooldown: {failures: 1000000}
    deployments:
      - {provider: openai, model: echo, headers: {x-mock-fault: corrupt}}
  - name: claude-opus-4-8            # a name an Anthropic client cannot change...
    deployments:
      - {provider: openai, model: assistant}   # ...served by another provider's model
  - name: slow-start
    retries: 0
    timeouts: {first_token: 0.5}
    deployments:
      - {provider: openai, model: echo, headers: {x-mock-fault: "slow-first-token:3000"}}
  - name: silent-head                 # takes the request, sends no status line at all
    retries: 0
    timeouts: {first_token: 0.5}
    deployments:
      - {provider: openai, model: echo, headers: {x-mock-fault: "slow-head:30000"}}
  - name: silent-head-then-another
    retries: 0
    timeouts: {first_token: 0.5}
    cooldown: {failures: 1000000}
    deployments:
      - {provider: openai, model: echo, headers: {x-mock-fault: "slow-head:30000"}}
      - {provider: anthropic, model: echo}
  - name: background-short            # a background response done 0.8 s after it began
    deployments:
      - {provider: openai, model: echo, headers: {x-mock-fault: "slow-first-token:800"}}
  - name: background-long             # one still running a minute after it began
    deployments:
      - {provider: openai, model: echo, headers: {x-mock-fault: "slow-first-token:60000"}}
  - name: stalling
    retries: 0
    timeouts: {stall: 0.5}
    deployments:
      - {provider: anthropic, model: echo, headers: {x-mock-fault: "stall:3000"}}
  - name: failover
    retries: 0
    deployments:
      - {provider: openai, model: echo, headers: {x-mock-fault: "error:503"}}
      - {provider: anthropic, model: echo}
"""


@pytest.fixture(scope="session")
def mock_url() -> Iterator[str]:
    with running_mock() as url:
        yield url


@pytest.fixture(scope="session")
def gateway_url(mock_url: str) -> Iterator[str]:
    env = {
        "OPENAI_BASE_URL": f"{mock_url}/v1",
        "OPENAI_API_KEY": "sk-test-openai-key",
        "ANTHROPIC_BASE_URL": mock_url,
        "ANTHROPIC_API_KEY": "sk-ant-test-key",
        "OLLAMA_BASE_URL": mock_url,
        "GEMINI_BASE_URL": mock_url,
        "GEMINI_API_KEY": "gemini-test-key",
        "AZURE_BASE_URL": mock_url,
        "AZURE_API_KEY": "azure-test-key",
    }
    with running_gateway(env, FAULTY_ALIASES) as url:
        yield url
