"""Hourly roll-ups of the usage records, kept as the records are written (``usage_hourly``).

A batch of records becomes one row per (hour, grouping) it touches, added to what the
table holds with ``INSERT ... ON CONFLICT DO UPDATE`` in the transaction that inserts the
records, so the roll-up never counts a record the audit does not hold, nor one twice.

Each record counts in seven rows of its hour: all traffic (``dims`` 0), one row per
dimension (key, team, model, provider, alias: ``dims`` is that dimension's bit) and the
row of all five (``dims`` 31). A dashboard question with no filter or one reads a level
with a few rows per hour; one with several filters reads the full level.

Latency and time to first token are counted in fixed log-spaced buckets (three per
doubling, ``tables.HISTOGRAM_BOUNDS_MS``), so a percentile of any set of rows is read
from their summed buckets: the nearest-rank percentile's bucket, reported as its
geometric midpoint, within 12.3 % (2**(1/6) - 1) of the exact value between 1 ms and 262 s.
"""

from __future__ import annotations

import itertools
import math
import operator
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from typing import Any

from modelway.store.tables import (
    HISTOGRAM_BOUNDS_MS,
    HISTOGRAM_BUCKETS,
    LATENCY_BUCKET_COLUMNS,
    TTFT_BUCKET_COLUMNS,
)

#: The dimensions a roll-up row may be grouped by; bit ``1 << i`` is ``DIMENSIONS[i]``.
DIMENSIONS = ("key_id", "team", "model", "provider", "alias")
ALL_TRAFFIC = 0
EVERY_DIMENSION = (1 << len(DIMENSIONS)) - 1
#: The counters of a row, in the order ``_Counters.row`` gives them.
COUNTER_COLUMNS = (
    "requests",
    "errors",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "cost_usd",
    "latency_ms_sum",
    "ttft_count",
    "ttft_ms_sum",
    "unpriced",
    *LATENCY_BUCKET_COLUMNS,
    *TTFT_BUCKET_COLUMNS,
)
KEY_COLUMNS = ("dims", "hour", *DIMENSIONS)
HOUR = 3600
#: Geometric midpoint of each bucket (bucket 0: 0.5 ms; the last: its lower bound).
_MIDPOINTS = (
    0.5,
    *(math.sqrt(low * high) for low, high in itertools.pairwise(HISTOGRAM_BOUNDS_MS)),
    HISTOGRAM_BOUNDS_MS[-1],
)
#: dims, hour, then the five dimensions' values.
Group = tuple[Any, ...]


def dimension_bit(name: str) -> int:
    """The ``dims`` bit of one of ``DIMENSIONS``."""
    return 1 << DIMENSIONS.index(name)


def bucket_of(milliseconds: float) -> int:
    """The histogram bucket a latency falls in."""
    return bisect_right(HISTOGRAM_BOUNDS_MS, milliseconds)


def rollup_rows(records: Iterable[Any]) -> list[tuple[Any, ...]]:
    """The roll-up rows a batch adds: ``KEY_COLUMNS`` then ``COUNTER_COLUMNS`` values.

    ``records`` are ``UsageRecord``s (or rows with the same attribute names). Records are
    summed per full group first, then the full groups into the coarser levels; histogram
    buckets are kept sparse until the end (a record touches two of 112). Rows come sorted
    by their key, so concurrent writers lock PostgreSQL rows in one order.
    """
    full: dict[Group, _Counters] = {}
    bounds = HISTOGRAM_BOUNDS_MS
    for record in records:
        group = (
            EVERY_DIMENSION,
            int(record.time // HOUR) * HOUR,
            record.key_id or "",
            record.team or "",
            record.model or "",
            record.provider or "",
            record.alias or "",
        )
        counters = full.get(group)
        if counters is None:
            counters = full[group] = _Counters()
        totals = counters.totals
        totals[0] += 1
        if record.status >= 400:
            totals[1] += 1
        totals[2] += record.prompt_tokens
        totals[3] += record.completion_tokens
        totals[4] += record.cached_tokens
        totals[5] += record.reasoning_tokens
        totals[6] += record.cost_usd
        totals[7] += record.latency_ms
        buckets = counters.buckets
        bucket = bisect_right(bounds, record.latency_ms)
        buckets[bucket] = buckets.get(bucket, 0) + 1
        if record.ttft_ms is not None:
            totals[8] += 1
            totals[9] += record.ttft_ms
            bucket = HISTOGRAM_BUCKETS + bisect_right(bounds, record.ttft_ms)
            buckets[bucket] = buckets.get(bucket, 0) + 1
        if record.unpriced:
            totals[10] += 1
    groups: dict[Group, _Counters] = dict(full)
    for (_, hour, key_id, team, model, provider, alias), counters in full.items():
        for key in (
            (ALL_TRAFFIC, hour, "", "", "", "", ""),
            (1, hour, key_id, "", "", "", ""),
            (2, hour, "", team, "", "", ""),
            (4, hour, "", "", model, "", ""),
            (8, hour, "", "", "", provider, ""),
            (16, hour, "", "", "", "", alias),
        ):
            into = groups.get(key)
            if into is None:
                groups[key] = counters.copy()
            else:
                into.add(counters)
    return [(*group, *groups[group].row()) for group in sorted(groups)]


class _Counters:
    """One roll-up row being summed: its totals and its (sparse) histogram buckets."""

    __slots__ = ("buckets", "totals")

    def __init__(self) -> None:
        self.totals: list[Any] = [0, 0, 0, 0, 0, 0, 0.0, 0.0, 0, 0.0, 0]
        #: Latency buckets at 0..55, TTFT buckets at 56..111.
        self.buckets: dict[int, int] = {}

    def copy(self) -> _Counters:
        copied = _Counters()
        copied.totals = self.totals.copy()
        copied.buckets = self.buckets.copy()
        return copied

    def add(self, other: _Counters) -> None:
        self.totals = list(map(operator.add, self.totals, other.totals))
        buckets = self.buckets
        for bucket, count in other.buckets.items():
            buckets[bucket] = buckets.get(bucket, 0) + count

    def row(self) -> list[Any]:
        histograms = [0] * (2 * HISTOGRAM_BUCKETS)
        for bucket, count in self.buckets.items():
            histograms[bucket] = count
        return self.totals + histograms


def upsert_sql(dialect: str, counters: Sequence[str] = COUNTER_COLUMNS) -> str:
    """Add rows to ``usage_hourly``, in the driver's own parameter style (or ``named``);
    ``counters``: the table's counter columns at an older revision (a migration's)."""
    names = (*KEY_COLUMNS, *counters)
    if dialect == "postgresql":
        marks = ", ".join(f"${n}" for n in range(1, len(names) + 1))
    elif dialect == "named":
        marks = ", ".join(f":{name}" for name in names)
    else:
        marks = ", ".join("?" for _ in names)
    updates = ", ".join(
        f'"{name}" = usage_hourly."{name}" + excluded."{name}"' for name in counters
    )
    keys = ", ".join(f'"{name}"' for name in KEY_COLUMNS)
    columns = ", ".join(f'"{name}"' for name in names)
    return (
        f"INSERT INTO usage_hourly ({columns}) VALUES ({marks}) "
        f"ON CONFLICT ({keys}) DO UPDATE SET {updates}"
    )


UPSERT_SQL = {dialect: upsert_sql(dialect) for dialect in ("postgresql", "sqlite")}


def percentile(counts: Sequence[int], fraction: float) -> float | None:
    """The nearest-rank percentile of a summed histogram (None when it counts nothing)."""
    total = sum(counts)
    if total <= 0:
        return None
    rank = max(1, math.ceil(fraction * total))
    seen = 0
    for bucket, count in enumerate(counts):
        seen += count
        if seen >= rank:
            return _MIDPOINTS[bucket]
    return _MIDPOINTS[-1]  # unreachable: the counts sum to ``total``
