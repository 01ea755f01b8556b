"""A model name that an upstream's URL path carries (Azure's deployment, Gemini's model)
cannot step out of it: a key allowed ``azure/safe-*`` once reached any deployment with
``azure/safe-x/../expensive`` (the HTTP client resolved the ``..``), unpriced."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelway.errors import BadRequest
from modelway.providers.base import model_in_path
from modelway.providers.openai import AzureAdapter
from modelway.providers.registry import adapter_for
from modelway.providers.transport import MockReply, MockTransport, UpstreamRequest
from modelway.providers.upstream import HttpProvider
from modelway.secrets import Secret
from tests.unit.gateways import Setup, in_process_gateway, openai_upstream

HELLO = [{"role": "user", "content": "hi"}]
ESCAPES = [
    "safe-x/../expensive",
    "safe-x/..%2fexpensive",
    "..",
    ".",
    "safe/x",
    "safe-x?api-version=1",
    "safe-x#",
    "gemini-pro:streamGenerateContent",
    "safe x",
    "safe\\x",
    "",
    "ü",
    "a" * 201,
]


@pytest.mark.parametrize("model", ["gpt-4o", "gemini-2.5-pro", "my_deployment.v2", "a" * 200])
def test_a_plain_name_is_its_own_path_segment(model: str) -> None:
    assert model_in_path(model, "azure") == model


@pytest.mark.parametrize("model", ESCAPES)
def test_a_name_that_would_leave_its_path_segment_is_refused(model: str) -> None:
    with pytest.raises(BadRequest, match="cannot name a azure model"):
        model_in_path(model, "azure")


@given(st.text(max_size=250))
def test_whatever_passes_stays_one_segment(model: str) -> None:
    try:
        segment = model_in_path(model, "gemini")
    except BadRequest:
        return
    assert segment not in (".", "..")
    assert not set(segment) & set("/\\?#%: \t\r\n")
    path = AzureAdapter().path("chat/completions", segment).partition("?")[0]
    assert path.split("/") == ["", "openai", "deployments", segment, "chat", "completions"]


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[tuple[Setup, list[str]]]:
    asked: list[str] = []

    def recording(request: UpstreamRequest) -> MockReply:
        asked.append(request.url)
        return openai_upstream(request)

    async with in_process_gateway(tmp_path) as setup:
        backends = setup.state.engine.router.backends
        backends["azure"] = HttpProvider(
            "azure",
            AzureAdapter(),
            "http://azure.test",
            Secret("k"),
            transport=MockTransport(recording),
        )
        backends["gemini"] = HttpProvider(
            "gemini",
            adapter_for("gemini"),
            "http://gemini.test",
            Secret("k"),
            transport=MockTransport(recording),
        )
        yield setup, asked


@pytest.mark.parametrize(
    ("path", "model"),
    [
        ("/v1/chat/completions", "azure/safe-x/../expensive"),  # relayed as it came
        ("/v1/messages", "azure/safe-x/../../secret"),  # translated
        ("/v1/chat/completions", "gemini/safe-flash/../gemini-2.5-pro"),
        ("/v1/embeddings", "azure/safe-x/../expensive"),
    ],
)
async def test_a_key_allowed_some_models_reaches_no_other_through_the_path(
    gateway: tuple[Setup, list[str]], path: str, model: str
) -> None:
    setup, asked = gateway
    created = await setup.http.post(
        "/admin/api/keys", json={"name": "k", "models": ["azure/safe-*", "gemini/safe-*"]}
    )
    key = created.json()["key"]
    body = {"model": model, "messages": HELLO, "max_tokens": 5, "input": "hi"}
    refused = await setup.http.post(path, json=body, headers={"authorization": f"Bearer {key}"})
    assert refused.status_code == 400, refused.text
    assert "cannot name a" in refused.text
    assert asked == []
    # The same key's own model still answers.
    answered = await setup.http.post(
        "/v1/chat/completions",
        json={"model": "azure/safe-x", "messages": HELLO},
        headers={"authorization": f"Bearer {key}"},
    )
    assert answered.status_code == 200
    assert asked == [
        "http://azure.test/openai/deployments/safe-x/chat/completions?api-version=2024-10-21"
    ]
