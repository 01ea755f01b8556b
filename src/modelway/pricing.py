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

from modelway.config import LongPromptPrice, Price
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
