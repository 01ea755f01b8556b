"""``modelway.pricing``: the shipped price table, lookups and config overrides."""

from __future__ import annotations

import re

import pytest

from modelway.config import LongPromptPrice, Price
from modelway.pricing import cost_usd, described, long_prompt_rates, price_for, price_table
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


# --- long prompts ----------------------------------------------------------------------

LONG = 250_000
THRESHOLD = 200_000


def test_a_250k_prompt_on_gemini_2_5_pro_costs_the_long_prompt_rates() -> None:
    # Google: $1.25 / $10 per million up to 200k prompt tokens, $2.50 / $15 above.
    usage = Usage(prompt_tokens=LONG, completion_tokens=1_000)

    assert cost_usd("gemini", "gemini-2.5-pro", usage) == pytest.approx(
        (LONG * 2.5 + 1_000 * 15.0) / 1e6
    )


@pytest.mark.parametrize(
    "model", ["claude-sonnet-4-5", "claude-sonnet-4-5-20250929", "claude-sonnet-4-20250514"]
)
def test_a_250k_prompt_on_claude_sonnet_4_costs_the_1m_context_rates(model: str) -> None:
    # Anthropic: $3 / $15 up to 200k input tokens, $6 / $22.50 above, cache rates likewise
    # (reads 0.6, five-minute writes 7.5, one-hour writes 12).
    usage = Usage(
        prompt_tokens=LONG,
        completion_tokens=2_000,
        cached_tokens=100_000,
        cache_write_tokens=50_000,
        cache_write_1h_tokens=20_000,
    )
    expected = (100_000 * 6.0 + 100_000 * 0.6 + 30_000 * 7.5 + 20_000 * 12.0 + 2_000 * 22.5) / 1e6

    assert cost_usd("anthropic", model, usage) == pytest.approx(expected)


def test_cache_reads_count_toward_the_long_prompt_length() -> None:
    # 150k fresh and 60k read from the cache: a 210k prompt, over Anthropic's 200k.
    usage = Usage(prompt_tokens=210_000, cached_tokens=60_000)

    assert cost_usd("anthropic", "claude-sonnet-4-5", usage) == pytest.approx(
        (150_000 * 6.0 + 60_000 * 0.6) / 1e6
    )


@pytest.mark.parametrize(
    ("provider", "model", "base", "long"),
    [
        ("gemini", "gemini-2.5-pro", (1.25, 10.0), (2.5, 15.0)),
        ("anthropic", "claude-sonnet-4-5", (3.0, 15.0), (6.0, 22.5)),
    ],
)
def test_a_prompt_of_exactly_the_threshold_costs_the_base_price_one_more_the_long_one(
    provider: str, model: str, base: tuple[float, float], long: tuple[float, float]
) -> None:
    at = Usage(prompt_tokens=THRESHOLD, completion_tokens=1_000)
    over = Usage(prompt_tokens=THRESHOLD + 1, completion_tokens=1_000)

    assert cost_usd(provider, model, at) == pytest.approx(
        (THRESHOLD * base[0] + 1_000 * base[1]) / 1e6
    )
    assert cost_usd(provider, model, over) == pytest.approx(
        ((THRESHOLD + 1) * long[0] + 1_000 * long[1]) / 1e6
    )


def test_models_billed_at_one_price_at_any_length_have_no_long_prompt_rates() -> None:
    usage = Usage(prompt_tokens=LONG, completion_tokens=1_000)

    assert cost_usd("openai", "gpt-4.1", usage) == pytest.approx((LONG * 2.0 + 1_000 * 8.0) / 1e6)
    assert cost_usd("gemini", "gemini-2.5-flash", usage) == pytest.approx(
        (LONG * 0.3 + 1_000 * 2.5) / 1e6
    )


def test_every_long_prompt_price_in_the_table_costs_more_than_its_base() -> None:
    found = 0
    for models in price_table().providers.values():
        for model, price in models.items():
            long = price.long_prompt
            if long is None:
                continue
            found += 1
            assert long.input_per_million > price.input_per_million, model
            assert long.output_per_million > price.output_per_million, model
    assert found >= 5  # Sonnet 4, 4-0, 4-5; Gemini 2.5 Pro, 3 Pro


def test_a_config_price_takes_a_long_prompt_tier_at_any_length() -> None:
    # Gemini 1.5 Pro's old tier: $1.25 / $5 up to 128k prompt tokens, $2.50 / $10 above.
    overrides = {
        "gemini/gemini-1.5-pro": Price(
            input_per_million=1.25,
            output_per_million=5.0,
            long_prompt=LongPromptPrice(
                above_tokens=128_000, input_per_million=2.5, output_per_million=10.0
            ),
        )
    }
    short = Usage(prompt_tokens=128_000, completion_tokens=1_000)
    long = Usage(prompt_tokens=128_001, completion_tokens=1_000)

    assert cost_usd("gemini", "gemini-1.5-pro-002", short, overrides) == pytest.approx(
        (128_000 * 1.25 + 1_000 * 5.0) / 1e6
    )
    assert cost_usd("gemini", "gemini-1.5-pro-002", long, overrides) == pytest.approx(
        (128_001 * 2.5 + 1_000 * 10.0) / 1e6
    )


def test_cache_rates_a_long_prompt_tier_leaves_unset_scale_as_its_input_does() -> None:
    price = Price(
        input_per_million=2.0,
        output_per_million=8.0,
        cached_input_per_million=0.5,
        cache_write_per_million=2.5,
        long_prompt=LongPromptPrice(
            above_tokens=10, input_per_million=4.0, output_per_million=12.0
        ),
    )
    usage = Usage(
        prompt_tokens=4_000_000,
        completion_tokens=1_000_000,
        cached_tokens=1_000_000,
        cache_write_tokens=2_000_000,
        cache_write_1h_tokens=1_000_000,
    )

    assert price.long_prompt is not None
    assert long_prompt_rates(price, price.long_prompt) == (4.0, 1.0, 5.0, 8.0, 12.0)
    # 1M fresh at 4, 1M read at 1, 1M 5-minute writes at 5, 1M 1-hour writes at 8 (2x 4),
    # 1M out at 12.
    assert cost_usd("vllm", "house", usage, {"house": price}) == pytest.approx(4 + 1 + 5 + 8 + 12)


def test_a_listed_price_shows_its_long_prompt_rates_and_an_unknown_one_says_unpriced() -> None:
    sonnet = described(price_for("anthropic", "claude-sonnet-4-5"), "anthropic")
    gemini = described(price_for("gemini", "gemini-2.5-pro"), "gemini")

    assert sonnet == (
        "in $3, out $15, cache read $0.30, cache write $3.75; prompts over 200,000 tokens: "
        "in $6, out $22.50, cache read $0.60, cache write $7.50"
    )
    assert gemini.endswith("prompts over 200,000 tokens: in $2.50, out $15, cache read $0.25")
    assert described(None, "openai").startswith("unpriced")
    assert described(None, "ollama") == "free (runs locally)"
