"""A labelled metric family whose hot-path updates are held, then written in one go.

``Family`` wraps a prometheus-client metric: it keeps at most ``max_series`` label sets
(past that, a new set's unbounded labels — aliases, providers, models, key ids, which
come from callers and config — are counted as ``other``, its bounded ones kept), caches
each set's child, and holds what the hot path adds in a plain dict until ``flush``
writes it — in multiprocess mode each write of a value is a memory-mapped write behind a
lock, a few microseconds, so one write per label set a second, not per request.
``Metrics`` (``metrics.py``) owns the families and flushes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: The value an unbounded label takes in every label set past a family's cap.
OTHER = "other"
#: Labels whose values are a small fixed set, kept past the cap so that what an alert
#: reads (a 5xx, an output token, a failed attempt) stays apart. Any other label
#: (``alias``, ``provider``, ``model``, ``fallback``, ``key_id``, ``deployment`` ...)
#: becomes ``other`` there.
BOUNDED_LABELS = frozenset(
    {
        "dialect",  # the faces' dialects: openai, anthropic, responses, ollama, chat ...
        "stream",  # true, false
        "status_class",  # 2xx, 3xx, 4xx, 5xx
        "type",  # input, output, cached_input, cache_write, reasoning
        "outcome",  # ok, error
        "result",  # hit, miss, bypass
        "reason",  # rate_limited, budget_exceeded, auth_failed, model_not_allowed
        "limit",  # requests, tokens, requests,tokens, request_too_large, ""
    }
)


class Family:
    """A labelled metric: its label sets capped, its children cached, and what the hot
    path adds held in plain dicts until ``flush`` writes it to the metric's values.

    Past ``max_series`` label sets, a new set is counted with its unbounded labels as
    ``other`` and its bounded ones (``BOUNDED_LABELS``) as they are: the overflow adds
    at most one series per combination of the bounded labels' values (a few dozen for
    ``modelway_requests_total``: dialects times status classes), so the family stays
    bounded while a 5xx is still a 5xx.

    With several workers each value is a memory-mapped file entry behind a lock, a few
    microseconds per write; a request touches a dozen. Held here, a request costs a
    dict update per figure, and the values are written once a second (and before a
    scrape) per label set, however many requests there were.
    """

    __slots__ = ("_bounds", "_children", "_kept", "_max", "_metric", "_pending", "_seen")

    def __init__(self, metric: Any, labels: Sequence[str], max_series: int) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], Any] = {}
        self._max = max_series
        #: Per label, in order: whether it keeps its value past the cap.
        self._kept = tuple(name in BOUNDED_LABELS for name in labels)
        self._seen: set[tuple[str, ...]] = set()
        #: label set -> amount to add (counters), value to set (gauges), or a histogram's
        #: per-bucket counts followed by the sum of its observations.
        self._pending: dict[tuple[str, ...], Any] = {}
        bounds = getattr(metric, "_upper_bounds", None)
        self._bounds: tuple[float, ...] | None = tuple(bounds) if bounds is not None else None

    @property
    def bounds(self) -> tuple[float, ...]:
        """A histogram's bucket bounds, +Inf last."""
        assert self._bounds is not None
        return self._bounds

    def _key(self, labels: tuple[str, ...]) -> tuple[str, ...]:
        if labels in self._seen:
            return labels
        if len(self._seen) >= self._max:
            return tuple(
                value if kept else OTHER for value, kept in zip(labels, self._kept, strict=True)
            )
        self._seen.add(labels)
        return labels

    def child(self, *labels: str) -> Any:
        """The metric's child for ``labels`` (some ``other`` past the cap), written at once."""
        labels = self._key(labels)
        found = self._children.get(labels)
        if found is None:
            found = self._children[labels] = self._metric.labels(*labels)
        return found

    def add(self, amount: float, *labels: str) -> None:
        """Count ``amount`` (a counter), or move a gauge by it; written at ``flush``."""
        key = self._key(labels)
        pending = self._pending
        pending[key] = pending.get(key, 0.0) + amount

    def observe_counts(self, counts: list[float], *labels: str) -> None:
        """Many observations at once: per-bucket counts then their sum (a ``CallTally``'s)."""
        key = self._key(labels)
        held = self._pending.get(key)
        if held is None:
            self._pending[key] = list(counts)
        else:
            for index, count in enumerate(counts):
                held[index] += count

    def flush(self) -> None:
        """Write what the hot path added to the metric's values."""
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        for labels, added in pending.items():
            child = self.child(*labels)
            if self._bounds is None:
                child.inc(added)
            else:
                add_observations(child, added)


def empty_counts(bounds: tuple[float, ...]) -> list[float]:
    """A histogram's counts per bucket, then the sum of its observations: all nought."""
    return [0] * len(bounds) + [0.0]


def add_observations(child: Any, counts: list[float]) -> None:
    """Add many observations to a histogram child at once: each bucket's count and the
    sum (prometheus-client's ``observe`` takes one at a time)."""
    *buckets, total = counts
    child._sum.inc(total)
    for index, count in enumerate(buckets):
        if count:
            child._buckets[index].inc(count)
