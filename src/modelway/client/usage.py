"""Token and cost totals of one client's calls, by the model that answered."""

from __future__ import annotations

import threading
from collections.abc import Mapping

import msgspec

from modelway.config import Price
from modelway.pricing import cost_usd
from modelway.types import Usage


class ModelUsage(msgspec.Struct, frozen=True):
    """Totals for one ``provider/model``.

    ``cost_usd`` sums the calls whose price is known; ``unpriced_requests`` counts the
    others, so a zero cost is never mistaken for a complete one. ``estimated_requests``
    counts the calls whose tokens were counted locally because the provider never said
    (a stream cut off before its usage): the provider bills them all the same.
    """

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float = 0.0
    unpriced_requests: int = 0
    estimated_requests: int = 0

    @property
    def tokens(self) -> int:
        """Every token counted, prompt and completion: ``total_tokens``."""
        return self.total_tokens


class UsageSummary(msgspec.Struct, frozen=True):
    """Totals over every call so far, and the same per ``provider/model`` in ``by_model``."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float = 0.0
    unpriced_requests: int = 0
    estimated_requests: int = 0
    by_model: dict[str, ModelUsage] = msgspec.field(default_factory=dict)

    @property
    def tokens(self) -> int:
        """Every token counted, prompt and completion: ``total_tokens``."""
        return self.total_tokens


def _add(totals: ModelUsage, usage: Usage, cost: float | None) -> ModelUsage:
    return ModelUsage(
        requests=totals.requests + 1,
        prompt_tokens=totals.prompt_tokens + usage.prompt_tokens,
        completion_tokens=totals.completion_tokens + usage.completion_tokens,
        cached_tokens=totals.cached_tokens + usage.cached_tokens,
        cache_write_tokens=totals.cache_write_tokens + usage.cache_write_tokens,
        total_tokens=totals.total_tokens + usage.total_tokens,
        cost_usd=totals.cost_usd + (cost or 0.0),
        unpriced_requests=totals.unpriced_requests + (cost is None),
        estimated_requests=totals.estimated_requests + usage.estimated,
    )


class UsageTracker:
    """Adds up usage as calls finish; safe to read and update from several threads."""

    def __init__(self, prices: Mapping[str, Price] | None = None) -> None:
        self._prices = dict(prices or {})
        self._lock = threading.Lock()
        self._by_model: dict[str, ModelUsage] = {}

    def __repr__(self) -> str:
        summary = self.summary()
        return (
            f"UsageTracker(requests={summary.requests}, total_tokens={summary.total_tokens}, "
            f"cost_usd={summary.cost_usd:.6f})"
        )

    def record(
        self, provider: str, model: str, usage: Usage | None, *, cost: float | None = None
    ) -> float | None:
        """Count one answered call of ``model`` at ``provider``; returns its cost in USD.

        A call whose usage never arrived counts as a request with no tokens; one whose
        tokens were counted locally (``usage.estimated``) counts them, and as estimated.
        ``cost`` is what the call itself priced its usage at, which can
        hold more than ``usage`` says (one-hour cache writes); when the model has a price,
        it is the cost counted.
        """
        usage = usage or Usage()
        priced = cost_usd(provider, model, usage, self._prices)
        cost = priced if priced is None or cost is None else cost
        key = f"{provider}/{model}"
        with self._lock:
            self._by_model[key] = _add(self._by_model.get(key, ModelUsage()), usage, cost)
        return cost

    def summary(self) -> UsageSummary:
        """A snapshot of the totals."""
        with self._lock:
            by_model = dict(self._by_model)
        rows = by_model.values()
        return UsageSummary(
            requests=sum(row.requests for row in rows),
            prompt_tokens=sum(row.prompt_tokens for row in rows),
            completion_tokens=sum(row.completion_tokens for row in rows),
            cached_tokens=sum(row.cached_tokens for row in rows),
            cache_write_tokens=sum(row.cache_write_tokens for row in rows),
            total_tokens=sum(row.total_tokens for row in rows),
            cost_usd=sum((row.cost_usd for row in rows), 0.0),
            unpriced_requests=sum(row.unpriced_requests for row in rows),
            estimated_requests=sum(row.estimated_requests for row in rows),
            by_model=by_model,
        )

    def reset(self) -> None:
        """Forget every total."""
        with self._lock:
            self._by_model.clear()
