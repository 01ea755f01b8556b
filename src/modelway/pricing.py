"""What a call cost in USD, from the shipped price table or the config's ``prices``.

The table (``modelway/data/prices.json``) lists USD per million input, output,
cached-input (cache read) and cache-write tokens per provider and model, with the date
the prices were taken. A model is looked up as ``provider/model``, then as the bare
model, then with a version suffix stripped (``gpt-4o-2024-08-06`` → ``gpt-4o``,
``claude-sonnet-4-5-20250929`` → ``claude-sonnet-4-5``, ``mistral-small-latest`` →
``mistral-small``). Config prices, keyed the same way, win over the table.

A price may hold higher rates for long prompts (``long_prompt``): a call whose prompt,
cache reads and writes included, is longer than ``above_tokens`` is billed at them for
every token, its answer's too, as Google bills Gemini 2.5 Pro past 200k prompt tokens
and Anthropic Claude Sonnet 4 and 4.5 with the 1M context window.
"""

from __future__ import annotations

import functools
import importlib.resources
import re
from collections.abc import Mapping

import msgspec

from modelway.config import Config, LongPromptPrice, Price
from modelway.types import Usage

TOKENS_PER_UNIT = 1_000_000
#: A one-hour prompt-cache write costs twice the input price (Anthropic's rate) unless
#: the price names ``cache_write_1h_per_million``.
HOUR_WRITE_FACTOR = 2
# OpenAI dates (-2024-08-06), Anthropic dates (-20250929), Mistral and OpenAI short
# versions (-2411, -0613), Gemini revisions (-001) and moving aliases (-latest).
_VERSION_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8}|\d{4}|\d{3}|latest)$")


class PriceTable(msgspec.Struct, frozen=True):
    """The shipped price file: prices per provider and model, and when they were taken."""

    about: str
    taken: str
    free_providers: list[str]
    providers: dict[str, dict[str, Price]]


@functools.cache
def price_table() -> PriceTable:
    """The shipped price table, read once."""
    raw = importlib.resources.files("modelway").joinpath("data", "prices.json").read_bytes()
    return msgspec.json.decode(raw, type=PriceTable)


@functools.cache
def _index() -> dict[str, Price]:
    """Table prices by ``provider/model`` and, for the first provider listing it, bare model."""
    table = price_table()
    index: dict[str, Price] = {}
    for provider, models in table.providers.items():
        for model, price in models.items():
            index[f"{provider}/{model}"] = price
    for models in table.providers.values():
        for model, price in models.items():
            index.setdefault(model, price)
    return index


def _candidates(provider: str, model: str) -> list[str]:
    names = [f"{provider}/{model}", model]
    stripped = _VERSION_SUFFIX.sub("", model)
    if stripped != model:
        names += [f"{provider}/{stripped}", stripped]
    return names


def price_for(
    provider: str, model: str, overrides: Mapping[str, Price] | None = None
) -> Price | None:
    """The price of ``model`` at ``provider``: a config override first, then the table.

    A local provider (``free_providers``: mock, Ollama, vLLM, LM Studio) has only the
    config's prices: a model it serves under a hosted model's name (``vllm/openai/gpt-oss-
    120b``, ``mock/gpt-4o``) runs on the operator's own machine, not at that price."""
    candidates = _candidates(provider, model)
    table = {} if provider in price_table().free_providers else _index()
    for source in (overrides or {}, table):
        for name in candidates:
            price = source.get(name)
            if price is not None:
                return price
    return None


def cost_usd(
    provider: str, model: str, usage: Usage, overrides: Mapping[str, Price] | None = None
) -> float | None:
    """USD for ``usage`` of ``model`` at ``provider``; None when no price is known.

    Local providers (mock, ollama, vLLM, LM Studio) cost nothing unless a config
    override prices them. Prompt tokens read from the cache are billed at the
    cached-input rate and those written to it at the cache-write rate, each at the input
    rate when the model has none; one-hour writes at their own rate, twice the input
    rate when the model has none; the rest of the prompt at the input rate. A prompt
    longer than the price's ``long_prompt.above_tokens`` has every token, the answer's
    too, priced at the long-prompt rates (``long_prompt_rates``).
    """
    return priced_cost(price_for(provider, model, overrides), provider, usage)


def priced_cost(price: Price | None, provider: str, usage: Usage) -> float | None:
    """``cost_usd`` with the price already looked up (``price_for``)."""
    if price is None:
        return 0.0 if provider in price_table().free_providers else None
    # Cache reads and writes are parts of prompt_tokens (types.Usage): priced once each.
    prompt = usage.prompt_tokens
    cached = min(usage.cached_tokens, prompt)
    written = min(usage.cache_write_tokens, prompt - cached)
    hour = min(usage.cache_write_1h_tokens, written)
    cached_rate: float | None
    write_rate: float | None
    hour_rate: float | None
    long_prompt = price.long_prompt
    if long_prompt is not None and prompt > long_prompt.above_tokens:
        input_rate, cached_rate, write_rate, hour_rate, output_rate = long_prompt_rates(
            price, long_prompt
        )
    else:
        input_rate = price.input_per_million
        output_rate = price.output_per_million
        cached_rate = price.cached_input_per_million
        write_rate = price.cache_write_per_million
        hour_rate = price.cache_write_1h_per_million
    dollars = (
        (prompt - cached - written) * input_rate
        + cached * (input_rate if cached_rate is None else cached_rate)
        + (written - hour) * (input_rate if write_rate is None else write_rate)
        + hour * (HOUR_WRITE_FACTOR * input_rate if hour_rate is None else hour_rate)
        + usage.completion_tokens * output_rate
    )
    return dollars / TOKENS_PER_UNIT


def long_prompt_rates(
    price: Price, long_prompt: LongPromptPrice
) -> tuple[float, float, float, float, float]:
    """USD per million input, cache-read, cache-write, one-hour-write and output tokens of a
    call past ``long_prompt.above_tokens``. A cache rate the long-prompt price leaves unset
    is the base price's, scaled as input is (Anthropic's and Google's cache rates are a
    fixed share of input at either length); where the base has none either, the share it
    defaults to (1x input, 2x for one-hour writes) of the long-prompt input."""
    base = price.input_per_million
    rate = long_prompt.input_per_million

    def scaled(own: float | None, base_rate: float | None, share: float) -> float:
        if own is not None:
            return own
        if base_rate is None or not base:
            return share * rate
        return base_rate * rate / base

    return (
        rate,
        scaled(long_prompt.cached_input_per_million, price.cached_input_per_million, 1.0),
        scaled(long_prompt.cache_write_per_million, price.cache_write_per_million, 1.0),
        scaled(
            long_prompt.cache_write_1h_per_million,
            price.cache_write_1h_per_million,
            HOUR_WRITE_FACTOR,
        ),
        long_prompt.output_per_million,
    )


def unpriced_aliases(config: Config) -> dict[str, list[str]]:
    """Each alias of ``config`` that can reach a model with no price, with those models
    (``provider/model``): their calls are recorded as unpriced, and refused to keys and
    teams with a USD budget (``Accounts.refuse_unpriced``). A local provider's are free."""
    free = price_table().free_providers
    found: dict[str, list[str]] = {}
    for alias in config.models:
        for deployment in alias.deployments:
            provider, model = deployment.provider, deployment.model
            if provider in free or price_for(provider, model, config.prices) is not None:
                continue
            named = found.setdefault(alias.name, [])
            if f"{provider}/{model}" not in named:
                named.append(f"{provider}/{model}")
    return found


def unpriced_warnings(config: Config) -> list[str]:
    """What ``config check`` and ``serve`` say of each alias ``unpriced_aliases`` finds."""
    return [
        f"alias {alias}: no price for {', '.join(models)}: calls to it are recorded as "
        "unpriced (cost unknown, not $0) and refused to keys and teams with a USD budget; "
        f"give {'it' if len(models) == 1 else 'each'} a price under prices: in the config "
        "(a model you host yourself: 0)"
        for alias, models in unpriced_aliases(config).items()
    ]


def described(price: Price | None, provider: str) -> str:
    """A price in a line, USD per million tokens, for listings (``config check``)."""
    if price is None:
        if provider in price_table().free_providers:
            return "free (runs locally)"
        return "unpriced: no price (cost unknown)"
    cached, written = price.cached_input_per_million, price.cache_write_per_million
    text = _rates(price.input_per_million, price.output_per_million, cached, written)
    long_prompt = price.long_prompt
    if long_prompt is not None:
        rates = long_prompt_rates(price, long_prompt)
        # A cache rate only where the price names one (the rest is the input rate).
        named_cached = cached is not None or long_prompt.cached_input_per_million is not None
        named_written = written is not None or long_prompt.cache_write_per_million is not None
        text += f"; prompts over {long_prompt.above_tokens:,} tokens: " + _rates(
            rates[0],
            rates[4],
            rates[1] if named_cached else None,
            rates[2] if named_written else None,
        )
    return text


def _rates(input_rate: float, output: float, cached: float | None, write: float | None) -> str:
    text = f"in {_usd(input_rate)}, out {_usd(output)}"
    if cached is not None:
        text += f", cache read {_usd(cached)}"
    if write is not None:
        text += f", cache write {_usd(write)}"
    return text


def _usd(amount: float) -> str:
    """$3, $22.50, $0.125: cents shown when there are any, and any smaller part kept."""
    cents = f"{amount:,.2f}"
    if float(cents.replace(",", "")) != amount:
        return f"${amount:,g}"
    return "$" + cents.removesuffix(".00")
