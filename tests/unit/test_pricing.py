"""``modelway.pricing``: the shipped price table, lookups and config overrides."""

from __future__ import annotations

import re

import pytest

from modelway.config import Price
from modelway.pricing import cost_usd, price_for, price_table
from modelway.types import Usage

MILLION = Usage(prompt_tokens=1_000_000, completion_tokens=1_000_000)


def test_the_price_table_says_when_its_prices_were_taken() -> None:
    table = price_table()

    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", table.taken)
    assert table.taken in table.about
    for provider in ("openai", "anthropic", "gemini", "groq", "mistral", "deepseek"):
        assert table.providers[provider], provider


def test_the_price_table_is_read_once() -> None:
    assert price_table() is price_table()


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "gpt-4o"),
        ("openai", "gpt-4o-mini"),
        ("openai", "gpt-4.1"),
        ("openai", "gpt-4.1-mini"),
        ("openai", "o3"),
        ("openai", "o4-mini"),
        ("anthropic", "claude-sonnet-4-5"),
        ("anthropic", "claude-opus-4-1"),
        ("anthropic", "claude-haiku-4-5"),
        ("anthropic", "claude-3-5-haiku"),
        ("gemini", "gemini-2.5-pro"),
        ("gemini", "gemini-2.5-flash"),
        ("groq", "llama-3.3-70b-versatile"),
        ("mistral", "mistral-small-latest"),
        ("deepseek", "deepseek-chat"),
        # Names still in wide use that were once unpriced (recorded at $0, past budgets).
        ("openai", "gpt-4"),
        ("openai", "gpt-4-0613"),
        ("openai", "o1-mini"),
        ("openai", "o3-pro"),
        ("openai", "chatgpt-4o-latest"),
        ("openai", "gpt-5-chat-latest"),
        ("anthropic", "claude-3-5-sonnet-20241022"),
        ("anthropic", "claude-3-opus-20240229"),
        ("gemini", "gemini-3-pro-preview"),
        ("mistral", "mistral-large-latest"),
    ],
)
def test_common_models_have_a_price(provider: str, model: str) -> None:
    price = price_for(provider, model)

    assert price is not None
    assert price.output_per_million >= price.input_per_million > 0


def test_cost_of_gpt_4o_from_the_table() -> None:
    usage = Usage(prompt_tokens=1000, completion_tokens=500)

    assert cost_usd("openai", "gpt-4o", usage) == pytest.approx((1000 * 2.5 + 500 * 10) / 1e6)


def test_cached_prompt_tokens_are_billed_at_the_cached_rate() -> None:
    usage = Usage(prompt_tokens=1_000_000, completion_tokens=0, cached_tokens=400_000)

    assert cost_usd("openai", "gpt-4o", usage) == pytest.approx(0.6 * 2.5 + 0.4 * 1.25)


def test_cached_tokens_without_a_cached_rate_are_billed_as_input() -> None:
    usage = Usage(prompt_tokens=1_000_000, cached_tokens=500_000)

    assert cost_usd("groq", "llama-3.3-70b-versatile", usage) == pytest.approx(0.59)


def test_a_dated_model_name_falls_back_to_its_family() -> None:
    assert price_for("openai", "gpt-4o-2024-08-06") == price_for("openai", "gpt-4o")
    assert price_for("anthropic", "claude-sonnet-4-5-20250929") == price_for(
        "anthropic", "claude-sonnet-4-5"
    )
    assert price_for("anthropic", "claude-3-5-haiku-latest") == price_for(
        "anthropic", "claude-3-5-haiku"
    )


def test_a_dated_model_priced_apart_from_its_family_keeps_its_own_price() -> None:
    # gpt-4o-2024-05-13 costs $5 / $15, not gpt-4o's $2.50 / $10.
    assert cost_usd("openai", "gpt-4o-2024-05-13", MILLION) == pytest.approx(20.0)


def test_a_bare_model_is_priced_at_any_provider() -> None:
    assert price_for("azure", "gpt-4o-mini") == price_for("openai", "gpt-4o-mini")
    assert price_for("openrouter", "openai/gpt-4o") == price_for("openai", "gpt-4o")


def test_mock_and_local_models_cost_nothing() -> None:
    assert cost_usd("mock", "echo", MILLION) == 0.0
    assert cost_usd("ollama", "llama3.2", MILLION) == 0.0


@pytest.mark.parametrize(
    ("provider", "model"),
    [("mock", "gpt-4o"), ("vllm", "openai/gpt-oss-120b"), ("lmstudio", "openai/gpt-oss-20b")],
)
def test_a_local_model_named_as_a_hosted_one_costs_nothing(provider: str, model: str) -> None:
    """It runs on the operator's machine: the hosted model's price is not its price."""
    assert price_for(provider, model) is None
    assert cost_usd(provider, model, MILLION) == 0.0
    priced = {f"{provider}/{model}": Price(input_per_million=1.0, output_per_million=1.0)}
    assert cost_usd(provider, model, MILLION, priced) == pytest.approx(2.0)


def test_an_unknown_model_has_no_cost() -> None:
    assert cost_usd("openai", "gpt-99-ultra", MILLION) is None
    assert cost_usd("acme", "mystery", MILLION) is None


def test_config_prices_override_the_table_by_provider_and_model() -> None:
    overrides = {"openai/gpt-4o": Price(input_per_million=1.0, output_per_million=3.0)}

    assert cost_usd("openai", "gpt-4o", MILLION, overrides) == pytest.approx(4.0)
    assert cost_usd("openai", "gpt-4o-2024-08-06", MILLION, overrides) == pytest.approx(4.0)


def test_config_prices_override_by_bare_model_even_a_qualified_table_entry() -> None:
    overrides = {"gpt-4o": Price(input_per_million=1.0, output_per_million=1.0)}

    assert cost_usd("openai", "gpt-4o", MILLION, overrides) == pytest.approx(2.0)


def test_config_prices_can_price_a_local_or_unknown_model() -> None:
    overrides = {
        "ollama/llama3.2": Price(input_per_million=0.5, output_per_million=0.5),
        "house-model": Price(
            input_per_million=2.0, output_per_million=4.0, cached_input_per_million=1.0
        ),
    }
    usage = Usage(prompt_tokens=1_000_000, completion_tokens=1_000_000, cached_tokens=1_000_000)

    assert cost_usd("ollama", "llama3.2", MILLION, overrides) == pytest.approx(1.0)
    assert cost_usd("vllm", "house-model", usage, overrides) == pytest.approx(1.0 + 4.0)


# --- prompt cache ----------------------------------------------------------------------


def test_cache_reads_cost_the_cached_rate_and_cache_writes_the_write_rate() -> None:
    # claude-sonnet-4-5: input 3.0, cache read 0.3, 5-minute cache write 3.75 (1.25x input).
    usage = Usage(
        prompt_tokens=1_230, completion_tokens=100, cached_tokens=1_000, cache_write_tokens=200
    )
    expected = (30 * 3.0 + 1_000 * 0.3 + 200 * 3.75 + 100 * 15.0) / 1e6

    assert cost_usd("anthropic", "claude-sonnet-4-5-20250929", usage) == pytest.approx(expected)


def test_every_anthropic_model_prices_cache_writes_at_one_and_a_quarter_times_input() -> None:
    for model, price in price_table().providers["anthropic"].items():
        assert price.cache_write_per_million is not None, model
        assert price.cache_write_per_million == pytest.approx(1.25 * price.input_per_million, 0.05)


def test_cache_writes_without_a_write_price_cost_the_input_rate() -> None:
    overrides = {
        "house": Price(input_per_million=2.0, output_per_million=4.0, cached_input_per_million=1.0)
    }
    usage = Usage(prompt_tokens=3_000_000, cached_tokens=1_000_000, cache_write_tokens=1_000_000)

    # 1M uncached and 1M written at 2.0, 1M read at 1.0: each token priced once.
    assert cost_usd("vllm", "house", usage, overrides) == pytest.approx(2.0 + 2.0 + 1.0)


def test_cache_counts_larger_than_the_prompt_are_never_priced_twice() -> None:
    overrides = {
        "house": Price(
            input_per_million=2.0,
            output_per_million=4.0,
            cached_input_per_million=1.0,
            cache_write_per_million=3.0,
        )
    }
    usage = Usage(prompt_tokens=1_000_000, cached_tokens=600_000, cache_write_tokens=600_000)

    assert cost_usd("vllm", "house", usage, overrides) == pytest.approx(0.6 * 1.0 + 0.4 * 3.0)


def test_one_hour_cache_writes_cost_their_own_rate_or_twice_input() -> None:
    usage = Usage(
        prompt_tokens=3_000_000, cache_write_tokens=2_000_000, cache_write_1h_tokens=1_000_000
    )
    plain = Price(input_per_million=2.0, output_per_million=4.0, cache_write_per_million=2.5)
    own = Price(
        input_per_million=2.0,
        output_per_million=4.0,
        cache_write_per_million=2.5,
        cache_write_1h_per_million=3.0,
    )

    # 1M uncached at 2.0, 1M five-minute writes at 2.5, 1M one-hour writes at 4.0 or 3.0.
    assert cost_usd("vllm", "house", usage, {"house": plain}) == pytest.approx(2.0 + 2.5 + 4.0)
    assert cost_usd("vllm", "house", usage, {"house": own}) == pytest.approx(2.0 + 2.5 + 3.0)
