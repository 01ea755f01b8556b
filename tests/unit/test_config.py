"""Specifications for reading ``modelway.yaml`` into validated configuration."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from modelway.config import (
    KNOWN_PROVIDERS,
    Config,
    ConfigError,
    Deployment,
    ProviderSettings,
    Timeouts,
    load_config,
    load_dotenv_file,
    mask_secret,
    parse_config,
)
from modelway.providers.registry import provider_settings
from modelway.store import database_url

FIXTURES = Path(__file__).parent.parent / "fixtures" / "config"
KEYS = {"ANTHROPIC_API_KEY": "sk-ant-0123456789abcdef", "AZURE_API_KEY": "az", "K2": "k2"}


def error_for(fixture: str, environ: dict[str, str] | None = None) -> str:
    path = FIXTURES / fixture
    with pytest.raises(ConfigError) as caught:
        load_config(path, KEYS if environ is None else environ)
    message = str(caught.value)
    assert message.startswith(f"{path}:"), message
    return message.removeprefix(f"{path}:")


# --- valid files -------------------------------------------------------------------


def test_the_product_md_models_example_parses() -> None:
    config = load_config(FIXTURES / "product_example.yaml", KEYS)

    smart, cheap = config.models
    assert smart.name == "smart"
    assert smart.strategy == "round-robin"
    assert smart.deployments[1] == Deployment(
        provider="openai",
        model="gpt-4o",
        base_url="http://10.0.0.5/v1",
        api_key="k2",
        weight=2,
        rpm=600,
    )
    assert smart.fallbacks == ["cheap"]
    assert smart.timeouts == Timeouts(connect=5, first_token=30, stall=20, total=600)
    assert smart.retries == 2
    assert cheap.deployments == [Deployment(provider="ollama", model="llama3.2")]
    assert config.providers["anthropic"].api_key == KEYS["ANTHROPIC_API_KEY"]


REPOSITORY = Path(__file__).resolve().parents[2]


def _documented_configs() -> list[object]:
    found = []
    for path in [REPOSITORY / "README.md", *sorted((REPOSITORY / "docs").glob("*.md"))]:
        text = path.read_text(encoding="utf-8")
        for block in re.finditer(r"```ya?ml\n(.*?)```", text, re.DOTALL):
            line = text.count("\n", 0, block.start()) + 1
            found.append(pytest.param(block.group(1), id=f"{path.name}:{line}"))
    return found


@pytest.mark.parametrize("text", _documented_configs())
def test_every_config_example_in_the_readme_and_docs_parses(text: str) -> None:
    environ = {
        **KEYS,
        "MODELWAY_METRICS_TOKEN": "metrics-token",
        "DATABASE_URL": "postgresql://modelway:pw@db/modelway",
        "REDIS_URL": "redis://cache:6379/0",
    }
    parse_config(text, environ)  # raises ConfigError naming the line if the example is wrong


def test_a_file_using_every_section_parses_with_each_value_typed() -> None:
    config = load_config(FIXTURES / "full.yaml", KEYS)

    assert config.providers["office-llm"] == ProviderSettings(
        wire="openai", base_url="http://10.0.0.9:8000/v1", headers={"X-Team": "research"}
    )
    # YAML reads 2024-10-21 as a date; no setting is one, so it stays text.
    assert config.providers["azure"].api_version == "2024-10-21"
    assert config.models[0].strategy == "weighted"
    assert config.models[0].cache is True
    assert config.models[0].deployments[1].api_key == ""
    assert config.server.port == 9090
    assert config.server.timeouts.total == 300.0
    assert config.prices["anthropic/claude-sonnet-4-5"].cached_input_per_million == 0.3
    assert config.logging.level == "debug"
    assert config.logging.log_bodies is True


def test_an_empty_document_and_empty_sections_mean_the_defaults() -> None:
    assert parse_config("", {}) == Config()
    assert parse_config("# nothing yet\nserver:\nmodels:\n", {}) == Config()
    defaults = Config().server
    assert (defaults.host, defaults.port, defaults.retries) == ("127.0.0.1", 8080, 2)
    assert defaults.timeouts == Timeouts(connect=10.0, first_token=60.0, stall=60.0, total=600.0)


def test_yaml_anchors_and_merge_keys_are_resolved() -> None:
    text = (
        "models:\n"
        "  - name: a\n"
        "    deployments:\n"
        "      - &base {provider: openai, model: gpt-4o, weight: 2}\n"
        "      - {<<: *base, model: gpt-4o-mini}\n"
    )
    deployments = parse_config(text, {}).models[0].deployments
    assert deployments[1] == Deployment(provider="openai", model="gpt-4o-mini", weight=2)


def test_every_known_provider_can_be_named_without_declaring_it() -> None:
    deployments = ", ".join(f"{{provider: {name}, model: m}}" for name in KNOWN_PROVIDERS)
    config = parse_config(f"models: [{{name: all, deployments: [{deployments}]}}]\n", {})
    assert [d.provider for d in config.models[0].deployments] == list(KNOWN_PROVIDERS)


# --- errors name the file and line -------------------------------------------------


def test_a_value_out_of_range_names_its_line_and_path() -> None:
    assert error_for("bad_weight.yaml") == (
        "7: models[0].deployments[1].weight: Expected int >= 1, got 0"
    )


def test_an_unknown_section_is_rejected_not_ignored() -> None:
    message = error_for("unknown_section.yaml")
    assert message.startswith("4: quotas: unknown field (expected one of: providers, models")
    assert "limits" in message and "store" in message and "redis" in message


def test_store_redis_and_limits_sections_are_read_and_their_urls_never_shown() -> None:
    text = (
        'store: {url: "postgresql://u:store-password@db/x"}\n'
        'redis: {url: "redis://:redis-password@cache:6379/0", replicas: 3}\n'
        "limits: {rpm: 60, tpm: 100000}\n"
    )
    config = parse_config(text, {"DATABASE_URL": "sqlite:///ignored.db", "REDIS_URL": "redis://x"})
    assert config.store.url == "postgresql://u:store-password@db/x"
    assert config.redis_url({"REDIS_URL": "redis://x"}) == "redis://:redis-password@cache:6379/0"
    assert (config.limits.rpm, config.limits.tpm) == (60, 100000)
    assert "password" not in repr(config)
    # The config's URL wins; the environment's is the fallback.
    assert database_url({"DATABASE_URL": "sqlite:///env.db"}, config.store.url).startswith(
        "postgresql+asyncpg://u:store-password@db/x"
    )
    assert database_url({"DATABASE_URL": "sqlite:///env.db"}, None) == "sqlite+aiosqlite:///env.db"
    assert Config().redis_url({"REDIS_URL": "redis://env:6379"}) == "redis://env:6379"
    assert Config().redis_url({}) is None


GEMINI_PRICE = (
    "prices:\n"
    "  gemini/gemini-2.5-pro:\n"
    "    input_per_million: 1.25\n"
    "    output_per_million: 10\n"
    "    long_prompt:\n"
)


@pytest.mark.parametrize("amount", [".inf", "1e13"])
def test_a_price_or_budget_in_dollars_is_finite(amount: str) -> None:
    # YAML's .inf was taken: every call then cost infinity, which no JSON can carry.
    price = f"prices:\n  openai/x: {{input_per_million: {amount}, output_per_million: 1}}\n"
    with pytest.raises(ConfigError, match=r"modelway.yaml:2: .*input_per_million"):
        parse_config(price, {})
    budget = f"budgets:\n  - {{team: red, usd: {amount}}}\n"
    with pytest.raises(ConfigError, match=r"modelway.yaml:2: .*usd"):
        parse_config(budget, {})


def test_a_price_reads_an_optional_long_prompt_tier_and_prices_without_one_still_parse() -> None:
    text = GEMINI_PRICE + (
        "      above_tokens: 200000\n"
        "      input_per_million: 2.5\n"
        "      output_per_million: 15\n"
        "      cached_input_per_million: 0.25\n"
        "  openai/gpt-4o: {input_per_million: 2.5, output_per_million: 10}\n"
    )
    prices = parse_config(text, {}).prices

    long = prices["gemini/gemini-2.5-pro"].long_prompt
    assert long is not None
    assert (long.above_tokens, long.input_per_million, long.output_per_million) == (
        200_000,
        2.5,
        15.0,
    )
    assert long.cached_input_per_million == 0.25 and long.cache_write_per_million is None
    assert prices["openai/gpt-4o"].long_prompt is None


@pytest.mark.parametrize(
    ("tier", "problem"),
    [
        (
            "      input_per_million: 2.5\n      output_per_million: 15\n",
            "5: prices['gemini/gemini-2.5-pro'].long_prompt: missing required field 'above_tokens'",
        ),
        (
            "      above_tokens: 0\n      input_per_million: 2.5\n      output_per_million: 15\n",
            "6: prices['gemini/gemini-2.5-pro'].long_prompt.above_tokens: Expected int >= 1, got 0",
        ),
        (
            "      above_tokens: 200k\n      input_per_million: 2.5\n"
            "      output_per_million: 15\n",
            "6: prices['gemini/gemini-2.5-pro'].long_prompt.above_tokens: Expected int, got str",
        ),
        (
            "      above_tokens: 200000\n      input_per_million: 2.5\n",
            "5: prices['gemini/gemini-2.5-pro'].long_prompt: missing required field "
            "'output_per_million'",
        ),
        (
            "      above_tokens: 200000\n      input_per_milion: 2.5\n"
            "      output_per_million: 15\n",
            "7: prices['gemini/gemini-2.5-pro'].long_prompt.input_per_milion: unknown field "
            "(did you mean 'input_per_million'?)",
        ),
        (
            "      above_tokens: 200000\n      input_per_million: -2.5\n"
            "      output_per_million: 1\n",
            "7: prices['gemini/gemini-2.5-pro'].long_prompt.input_per_million: "
            "Expected float >= 0.0, got -2.5",
        ),
    ],
    ids=["no-threshold", "zero-threshold", "threshold-text", "no-output", "misspelled", "negative"],
)
def test_a_wrong_long_prompt_tier_is_an_error_naming_its_line(tier: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(GEMINI_PRICE + tier, {})

    assert str(caught.value) == f"modelway.yaml:{problem}"


def test_limits_out_of_range_are_config_errors() -> None:
    for text in ("limits: {rpm: 0}\n", "limits: {tpm: -5}\n", "limits: {rpm: 2147483648}\n"):
        with pytest.raises(ConfigError, match="limits"):
            parse_config(text, {})


@pytest.mark.parametrize("value", [".inf", ".nan", "0", "-1", "31536001"])
def test_a_timeout_must_be_a_finite_positive_number_of_seconds(value: str) -> None:
    # .inf passed once, and every upstream call then failed with aiohttp's OverflowError.
    with pytest.raises(ConfigError, match=r"timeouts\.connect"):
        parse_config(f"server:\n  timeouts: {{connect: {value}}}\n", {})


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ('base_url: "http://127.0.0.1:abc/v1"', "base_url: not a URL"),
        ('base_url: "http://127.0.0.1:99999/v1"', "base_url: not a URL"),
        ('base_url: "http://[::1/v1"', "base_url: not a URL"),
        ('base_url: "ftp://u:pw@h/v1"', "base_url: an http:// or https:// URL with a host"),
        ('headers: {"X-A": "a\\nb"}', "headers.X-A: a value on one line"),
        ('headers: {"X A:": "a"}', "headers: 'X A:' is not an HTTP header name"),
    ],
)
def test_an_endpoint_no_request_can_reach_is_a_config_error_naming_its_line(
    endpoint: str, message: str
) -> None:
    # Each passed `config check` and `serve`; every call then failed (a 500 for the port).
    provider = f"providers:\n  openai:\n    api_key: sk-abcdefghijklmnop\n    {endpoint}\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(provider, {})
    assert str(caught.value).startswith(f"modelway.yaml:2: providers.openai: {message}")
    assert "pw" not in str(caught.value) and "sk-abc" not in str(caught.value)
    deployment = (
        "models:\n  - name: a\n    deployments:\n"
        f"      - {{provider: openai, model: m, {endpoint}}}\n"
    )
    with pytest.raises(ConfigError, match=r"models\[0\]\.deployments\[0\]: "):
        parse_config(deployment, {})


def test_a_provider_base_url_from_the_environment_is_checked_too() -> None:
    with pytest.raises(ConfigError, match=r"^OPENAI_BASE_URL: not a URL"):
        provider_settings(parse_config("", {}), {"OPENAI_BASE_URL": "http://h:abc/v1"})


def test_a_misspelled_field_is_rejected_with_a_suggestion() -> None:
    assert error_for("misspelled_field.yaml") == (
        "6: models[0].deployments[0].wieght: unknown field (did you mean 'weight'?)"
    )


def test_an_error_inside_a_mapping_entry_names_the_entry_key() -> None:
    assert error_for("bad_provider_setting.yaml") == (
        "7: providers.anthropic.headers.anthropic-beta: Expected str, got int"
    )


def test_a_missing_required_field_names_the_entry_line() -> None:
    assert error_for("missing_deployments.yaml") == (
        "2: models[0]: missing required field 'deployments'"
    )


def test_an_unknown_strategy_lists_the_valid_ones() -> None:
    assert error_for("bad_strategy.yaml") == (
        "3: models[0].strategy: Invalid enum value 'fastest' "
        "(expected one of: least-busy, lowest-latency, round-robin, weighted)"
    )


def test_a_duplicate_alias_names_both_lines() -> None:
    assert error_for("duplicate_alias.yaml") == (
        "6: models[2].name: duplicate alias 'smart' (first defined at line 2)"
    )


def test_a_fallback_to_an_unknown_alias_is_an_error() -> None:
    assert error_for("unknown_fallback.yaml") == (
        "6: models[0].fallbacks[1]: fallback 'cheapest' is not an alias"
    )


def test_a_fallback_cycle_is_an_error_showing_the_cycle() -> None:
    assert error_for("fallback_cycle.yaml") == (
        "10: models[2].fallbacks[0]: fallback cycle: smart -> cheap -> local -> smart"
    )


def test_an_alias_falling_back_to_itself_is_a_cycle() -> None:
    text = (
        "models:\n  - name: a\n    deployments: [{provider: mock, model: x}]\n    fallbacks: [a]\n"
    )
    with pytest.raises(ConfigError, match=r"^modelway.yaml:4: .*fallback cycle: a -> a$"):
        parse_config(text, {})


def test_a_deployment_naming_an_undeclared_provider_is_an_error() -> None:
    assert error_for("unknown_provider.yaml") == (
        "5: models[0].deployments[1].provider: unknown provider 'opneai': "
        "declare it under providers or use a known one"
    )


def test_a_custom_provider_must_say_which_wire_format_it_speaks() -> None:
    assert error_for("custom_provider_without_wire.yaml").startswith(
        "2: providers.office-llm: unknown provider 'office-llm': a custom provider needs wire:"
    )


def test_an_unknown_default_provider_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"^x.yaml:2: server.default_provider: unknown provider"):
        parse_config("server:\n  default_provider: nope\n", {}, source_name="x.yaml")


def test_every_semantic_problem_is_reported_at_once() -> None:
    text = (
        "models:\n  - name: a\n    deployments: [{provider: nope, model: x}]\n    fallbacks: [b]\n"
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(text, {})
    assert [problem.split(":")[1] for problem in caught.value.problems] == ["3", "4"]


def test_an_unknown_yaml_type_is_an_error() -> None:
    assert error_for("unknown_yaml_type.yaml") == (
        "3: providers.openai.api_key: unknown YAML type !secret"
    )


def test_a_yaml_syntax_error_names_its_line() -> None:
    assert error_for("syntax_error.yaml").startswith("4: YAML syntax error:")


def test_a_key_repeated_in_one_mapping_is_an_error() -> None:
    assert error_for("duplicate_key.yaml") == "4: server.port: duplicate key (first at line 2)"


def test_a_type_error_never_echoes_the_value_which_could_be_a_secret() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("providers:\n  openai: {api_key: 98765432109876}\n", {})
    assert "98765432109876" not in str(caught.value)


# --- interpolation -----------------------------------------------------------------


def test_a_variable_is_replaced_by_its_value_from_the_given_environment() -> None:
    config = parse_config('providers: {openai: {api_key: "${KEY}"}}\n', {"KEY": "sk-1"})
    assert config.providers["openai"].api_key == "sk-1"


def test_a_default_is_used_when_the_variable_is_unset_or_empty() -> None:
    text = "server:\n  host: ${HOST:-0.0.0.0}\n  port: ${PORT:-8081}\n"
    assert parse_config(text, {}).server.host == "0.0.0.0"
    assert parse_config(text, {"HOST": ""}).server.host == "0.0.0.0"
    assert parse_config(text, {"HOST": "::1", "PORT": "9000"}).server.port == 9000


def test_a_missing_variable_without_default_names_the_line() -> None:
    assert error_for("missing_variable.yaml", environ={}) == (
        "4: providers.openai.api_key: environment variable OPENAI_API_KEY is not set "
        "(write ${OPENAI_API_KEY:-default} for a default)"
    )


def test_a_doubled_dollar_keeps_a_literal_reference() -> None:
    assert parse_config('server: {host: "$${HOST}"}\n', {}).server.host == "${HOST}"


def test_a_malformed_reference_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"^modelway.yaml:2: server.host: unterminated"):
        parse_config("server:\n  host: ${HOST\n", {})


def test_references_in_comments_are_ignored() -> None:
    assert parse_config("# api_key: ${UNSET}\nserver: {port: 1}\n", {}).server.port == 1


def test_interpolated_text_is_not_parsed_as_yaml() -> None:
    config = parse_config('providers: {openai: {api_key: "${KEY}"}}\n', {"KEY": "a: [b"})
    assert config.providers["openai"].api_key == "a: [b"


# --- finding the file --------------------------------------------------------------


def test_a_missing_config_file_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=r"nope\.yaml: config file not found$"):
        load_config(missing, {})


def test_modelway_config_names_the_file_when_no_path_is_given(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text("server: {port: 9999}\n")
    assert load_config(None, {"MODELWAY_CONFIG": str(path)}).server.port == 9999
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(None, {"MODELWAY_CONFIG": str(tmp_path / "gone.yaml")})


def test_modelway_yaml_in_the_working_directory_is_read_when_present(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_config(None, {}) == Config()
    (tmp_path / "modelway.yaml").write_text("server:\n  port: 0\n  workers: 0\n")
    with pytest.raises(ConfigError, match=r"^modelway.yaml:3: server.workers:"):
        load_config(None, {})


# --- .env and secrets --------------------------------------------------------------


def test_a_dotenv_file_is_read_without_changing_the_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MODELWAY_TEST_FROM_DOTENV", raising=False)
    monkeypatch.setenv("MODELWAY_TEST_SHARED", "from-process")
    dotenv = tmp_path / ".env"
    dotenv.write_text("MODELWAY_TEST_FROM_DOTENV=dotenv\nMODELWAY_TEST_SHARED=from-dotenv\n")

    values = load_dotenv_file(dotenv)

    assert values["MODELWAY_TEST_FROM_DOTENV"] == "dotenv"
    assert "MODELWAY_TEST_FROM_DOTENV" not in os.environ
    environ = {**values, **os.environ}
    assert environ["MODELWAY_TEST_SHARED"] == "from-process"


def test_an_absent_dotenv_file_sets_nothing(tmp_path: Path) -> None:
    assert load_dotenv_file(tmp_path / ".env") == {}


def test_a_long_secret_shows_only_its_first_three_and_last_two_characters() -> None:
    assert mask_secret("sk-abcdefghijklmnopXy") == "sk-…Xy"
    assert mask_secret("123456789012") == "123…12"


def test_a_short_secret_is_hidden_entirely_and_none_shows_a_dash() -> None:
    assert mask_secret("12345678901") == "****"
    assert mask_secret(None) == "-"


def test_an_empty_secret_says_so_not_that_one_is_hidden() -> None:
    # `api_key: ${KEY}` with KEY set to nothing showed **** like a real short key.
    assert mask_secret("") == "(empty)"


def test_the_repr_of_a_config_never_shows_a_key_or_header_value() -> None:
    config = load_config(FIXTURES / "full.yaml", KEYS)
    text = repr(config)
    assert KEYS["ANTHROPIC_API_KEY"] not in text
    assert "research" not in text
    assert "sk-…ef" in text


def test_a_config_whose_aliases_expand_past_any_memory_is_refused() -> None:
    # "Billion laughs": each level nine aliases of the one before; eight levels held 4 GB
    # and were still growing when the check was stopped.
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 9)]
    text = "x-anchors:\n" + "".join(f"  {line}\n" for line in lines)
    with pytest.raises(ConfigError, match="more than 200,000 values once YAML aliases"):
        parse_config(text, {})


@pytest.mark.parametrize("depth", [100, 100_000])
def test_values_nested_too_deeply_are_a_config_error_not_a_traceback(depth: int) -> None:
    with pytest.raises(ConfigError, match="nest"):
        parse_config("server: " + "[" * depth + "]" * depth + "\n", {})


def test_top_level_x_keys_hold_anchors_as_in_compose_files() -> None:
    text = (
        "x-deployment: &openai {provider: openai, model: gpt-4o}\n"
        "models:\n  - {name: a, deployments: [*openai]}\n"
    )
    config = parse_config(text, {})
    assert config.models[0].deployments[0].model == "gpt-4o"
