"""Model addressing: aliases, provider/model, prefix rules, the default provider."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import modelway.cli.config_cmd  # noqa: F401  (registers `modelway config`)
from modelway.cli.app import app as cli_app
from modelway.config import ProviderSettings, parse_config
from modelway.errors import UnknownModel
from modelway.routing.resolve import Router
from tests.unit.fakes import ScriptedBackend

CONFIG = """
providers:
  a: {wire: openai, base_url: "http://a.invalid/v1"}
  b: {wire: openai, base_url: "http://b.invalid/v1"}
models:
  - name: smart
    deployments: [{provider: a, model: big}, {provider: b, model: large}]
    fallbacks: [cheap]
  - name: cheap
    deployments: [{provider: b, model: small}]
  - name: heavy
    deployments: [{provider: a, model: big, weight: 3}, {provider: b, model: large}]
"""


def router(
    config: str = CONFIG, environ: dict[str, str] | None = None, **backends: ScriptedBackend
) -> Router:
    return Router(parse_config(config, environ or {}), environ or {}, backends or None)


def test_provider_slash_model_splits_at_the_first_slash() -> None:
    r = router(environ={"OPENROUTER_API_KEY": "sk-or-test"})
    target = r.direct_target("openrouter/meta-llama/llama-3.3-70b-instruct")
    assert target.backend.name == "openrouter"
    assert target.model == "meta-llama/llama-3.3-70b-instruct"


@pytest.mark.parametrize(
    ("model", "provider"),
    [
        ("gpt-4o", "openai"),
        ("o3-mini", "openai"),
        ("o4-mini", "openai"),
        ("chatgpt-4o-latest", "openai"),
        ("claude-sonnet-4-5", "anthropic"),
    ],
)
def test_prefix_rules_pick_the_provider_of_a_bare_name(model: str, provider: str) -> None:
    r = router(environ={"OPENAI_API_KEY": "sk-1", "ANTHROPIC_API_KEY": "sk-2"})
    target = r.direct_target(model)
    assert (target.backend.name, target.model) == (provider, model)


def test_bare_name_without_a_rule_goes_to_the_default_provider() -> None:
    r = router(environ={"OLLAMA_BASE_URL": "http://127.0.0.1:1"})
    target = r.direct_target("llama3.2")
    assert (target.backend.name, target.model) == ("ollama", "llama3.2")


def test_bare_name_with_no_default_provider_is_unknown() -> None:
    with pytest.raises(UnknownModel, match="no default provider"):
        router().direct_target("llama3.2")


def test_the_prefixes_an_unknown_name_is_pointed_to_are_this_gateways() -> None:
    with pytest.raises(UnknownModel, match=r"\(such as 'mock/'\)"):
        router("").direct_target("llama3.2")
    # With the mock off, only a provider it has; none named when it has none.
    config = "providers:\n  mock: {enabled: false}\n  groq: {api_key: k, enabled: true}\n"
    with pytest.raises(UnknownModel, match=r"\(such as 'groq/'\)") as caught:
        router(config).direct_target("llama3.2")
    assert "openai" not in str(caught.value)


def test_a_prefix_rule_for_an_unconfigured_provider_names_the_key_variable() -> None:
    with pytest.raises(UnknownModel, match="ANTHROPIC_API_KEY"):
        router().direct_target("claude-sonnet-4-5")


@pytest.mark.parametrize(
    ("model", "variable"),
    [
        ("ollama/llama3.2", "(set OLLAMA_BASE_URL or"),
        ("vllm/qwen", "(set VLLM_BASE_URL or"),
        ("lmstudio/phi", "(set LMSTUDIO_BASE_URL or"),
        ("azure/gpt-4o", "(set AZURE_API_KEY and AZURE_BASE_URL or"),
        ("groq/llama", "(set GROQ_API_KEY or"),
    ],
)
def test_an_unconfigured_provider_names_the_variable_that_enables_it(
    model: str, variable: str
) -> None:
    with pytest.raises(UnknownModel) as refused:
        router().direct_target(model)
    assert variable in refused.value.message


def test_config_check_names_the_variable_that_enables_an_alias_provider(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OLLAMA_BASE_URL", raising=False)
    monkeypatch.delenv("OLLAMA_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env of the working directory
    path = tmp_path / "modelway.yaml"
    path.write_text("models:\n  - name: local\n    deployments: [{provider: ollama, model: x}]\n")
    result = CliRunner().invoke(cli_app, ["config", "check", "--config", str(path)])
    assert result.exit_code == 2
    assert "(set OLLAMA_BASE_URL or add it to the providers section)" in result.output


def test_config_check_takes_a_deployment_with_its_own_endpoint_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As routing.md shows it, and as `serve` runs it: no provider to enable."""
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "modelway.yaml"
    path.write_text(
        "models:\n  - name: own\n    deployments:\n"
        "      - {provider: openai, model: gpt-4o, base_url: 'https://llm.internal/v1',"
        " api_key: sk-own-key-0123456789}\n"
    )
    result = CliRunner().invoke(cli_app, ["config", "check", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert "sk-own-key-0123456789" not in result.output


def test_mock_is_always_present_with_no_key_and_no_config() -> None:
    target = router("").direct_target("mock/echo")
    assert (target.backend.name, target.model) == ("mock", "echo")


def test_alias_names_win_over_every_other_rule() -> None:
    r = router(a=ScriptedBackend("a"), b=ScriptedBackend("b"))
    route = r.route("smart")
    assert route.alias == "smart"
    assert [(t.backend.name, t.model) for t in route.targets] == [
        ("a", "big"),
        ("b", "large"),
        ("b", "small"),
    ]


def test_a_fallbacks_own_fallbacks_follow_it_and_each_alias_is_tried_once() -> None:
    chain = """
providers:
  a: {wire: openai, base_url: "http://a.invalid/v1"}
  b: {wire: openai, base_url: "http://b.invalid/v1"}
models:
  - name: first
    deployments: [{provider: a, model: one}]
    fallbacks: [second, third]
  - name: second
    deployments: [{provider: b, model: two}]
    fallbacks: [fourth, third]
  - name: third
    deployments: [{provider: a, model: three}]
  - name: fourth
    deployments: [{provider: b, model: four}]
"""
    r = router(chain, a=ScriptedBackend("a"), b=ScriptedBackend("b"))
    route = r.route("first")
    assert [(t.model, t.fallback) for t in route.targets] == [
        ("one", None),
        ("two", "second"),
        ("three", "third"),
        ("four", "fourth"),  # second's fallback: a chain no longer stops after one level
    ]


def test_round_robin_starts_each_request_at_the_next_deployment() -> None:
    r = router(a=ScriptedBackend("a"), b=ScriptedBackend("b"))
    firsts = [r.route("smart").targets[0].backend.name for _ in range(4)]
    assert firsts == ["a", "b", "a", "b"]


def test_weights_repeat_a_deployment_in_the_rotation() -> None:
    r = router(a=ScriptedBackend("a"), b=ScriptedBackend("b"))
    firsts = [r.route("heavy").targets[0].backend.name for _ in range(8)]
    assert firsts.count("a") == 6 and firsts.count("b") == 2


def test_env_base_url_alone_enables_a_provider() -> None:
    r = router("", {"ANTHROPIC_BASE_URL": "http://127.0.0.1:9"})
    assert "anthropic" in r.backends
    assert "openai" not in r.backends


async def test_disconnecting_a_provider_brings_back_the_one_the_environment_set_up() -> None:
    # Connecting openai at run time replaces the one OPENAI_API_KEY set up; deleting that
    # connection left openai unconfigured ("provider 'openai' is not configured").
    r = router("", environ={"OPENAI_API_KEY": "sk-env"})
    configured = r.direct_target("openai/gpt-4o").backend
    r.connect("openai", ProviderSettings(api_key="sk-connected", base_url="http://127.0.0.1:9/v1"))
    assert r.direct_target("openai/gpt-4o").backend is not configured
    assert r.disconnect("openai")
    assert r.direct_target("openai/gpt-4o").backend is configured
    # One connected where none was configured goes for good.
    r.connect("groq", ProviderSettings(api_key="gsk-x"))
    r.connect("groq", ProviderSettings(api_key="gsk-y"))  # re-keyed
    assert r.disconnect("groq")
    with pytest.raises(UnknownModel):
        r.direct_target("groq/llama")
    await r.aclose()
