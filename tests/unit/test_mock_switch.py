"""``providers: {mock: {enabled: false}}``: a public gateway without the built-in mock.

Switched off, ``mock/...`` is an unknown model like any other (404 in the caller's
dialect) and the mock is in no model list; a config that still routes to it is refused
at start, naming the line.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import modelway.cli.config_cmd  # noqa: F401  (registers `modelway config`)
from modelway.cli.app import app as cli_app
from modelway.config import ConfigError, parse_config
from modelway.engine import Engine
from tests.unit.gateways import Setup, in_process_gateway

MOCK_OFF = "providers:\n  mock: {enabled: false}\n"
HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Setup]:
    async with in_process_gateway(tmp_path, MOCK_OFF) as setup:
        yield setup


@pytest.mark.parametrize(
    ("path", "body", "shape"),
    [
        (
            "/v1/chat/completions",
            {"messages": HELLO},
            lambda error: error["error"]["code"] == "model_not_found",
        ),
        (
            "/v1/responses",
            {"input": "hello"},
            lambda error: error["error"]["code"] == "model_not_found",
        ),
        (
            "/v1/messages",
            {"messages": HELLO, "max_tokens": 5},
            lambda error: error["type"] == "error" and error["error"]["type"] == "not_found_error",
        ),
        (
            "/v1/messages/count_tokens",
            {"messages": HELLO},
            lambda error: error["type"] == "error" and error["error"]["type"] == "not_found_error",
        ),
        ("/api/chat", {"messages": HELLO}, lambda error: isinstance(error["error"], str)),
        ("/api/generate", {"prompt": "hi"}, lambda error: isinstance(error["error"], str)),
        ("/api/show", {}, lambda error: isinstance(error["error"], str)),
        (
            "/v1/embeddings",
            {"input": "x"},
            lambda error: "switched off" in error["error"]["message"],
        ),
        ("/api/embed", {"input": "x"}, lambda error: "switched off" in error["error"]),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
async def test_a_mock_model_is_unknown_in_the_callers_dialect(
    gateway: Setup, path: str, body: dict[str, Any], shape: Any
) -> None:
    response = await gateway.http.post(path, json={**body, "model": "mock/echo"})
    assert response.status_code == 404, response.text
    assert shape(response.json())


async def test_the_mock_is_in_no_model_list(gateway: Setup) -> None:
    openai = (await gateway.http.get("/v1/models")).json()["data"]
    ollama = (await gateway.http.get("/api/tags")).json()["models"]
    assert not [m for m in openai if m["id"].startswith("mock/")]
    assert not [m for m in ollama if m["name"].startswith("mock/")]
    assert (await gateway.http.get("/v1/models/mock/echo")).status_code == 404


async def test_other_providers_still_answer(gateway: Setup) -> None:
    body = {"model": "openai/gpt-x", "messages": HELLO}
    assert (await gateway.http.post("/v1/chat/completions", json=body)).status_code == 200


async def test_the_mock_is_on_by_default_and_with_enabled_true(tmp_path: Path) -> None:
    for config in ("", "providers:\n  mock: {enabled: true}\n"):
        async with in_process_gateway(tmp_path, config) as setup:
            body = {"model": "mock/echo", "messages": HELLO}
            answer = await setup.http.post("/v1/chat/completions", json=body)
            assert answer.status_code == 200
            models = (await setup.http.get("/v1/models")).json()["data"]
            assert "mock/echo" in {m["id"] for m in models}


async def test_a_switched_off_provider_keeps_off_whatever_the_environment() -> None:
    environ = {"OPENAI_API_KEY": "sk-test"}
    engine = Engine(parse_config("providers:\n  openai: {enabled: false}\n", environ), environ)
    try:
        assert "openai" not in engine.router.backends
        with pytest.raises(Exception, match="switched off") as refused:
            engine.router.route("gpt-4o")
        assert getattr(refused.value, "status", None) == 404
    finally:
        await engine.aclose()


@pytest.mark.parametrize(
    ("config", "line", "message"),
    [
        (
            MOCK_OFF + "models:\n  - name: m\n    deployments: [{provider: mock, model: echo}]\n",
            5,
            "provider 'mock' is switched off (enabled: false)",
        ),
        (
            MOCK_OFF + "server:\n  default_provider: mock\n",
            4,
            "provider 'mock' is switched off (enabled: false)",
        ),
        ("providers:\n  mock: {enabled: maybe}\n", 2, "enabled: Expected bool"),
    ],
    ids=["alias-deployment", "default-provider", "not-a-boolean"],
)
def test_a_config_that_needs_the_switched_off_mock_is_refused_naming_the_line(
    config: str, line: int, message: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config(config, {})
    assert f"modelway.yaml:{line}:" in str(refused.value)
    assert message in str(refused.value)


@pytest.mark.parametrize(("config", "listed"), [(MOCK_OFF, False), ("", True)])
def test_config_check_lists_the_mock_only_when_it_is_on(
    tmp_path: Path, config: str, listed: bool
) -> None:
    path = tmp_path / "modelway.yaml"
    path.write_text(config)
    result = CliRunner().invoke(
        cli_app, ["config", "check", "--config", str(path)], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    assert ("(built in)" in result.output) is listed
