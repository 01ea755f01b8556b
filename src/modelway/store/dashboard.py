"""The admin dashboard's questions, answered from the hourly roll-ups, never the records.

Series, totals, top-N and budget burn-down read ``usage_hourly`` (``store.rollups``):
with no filter or one, the level grouped by that one dimension (a few rows per hour);
with several, the level of all five. Times are hour-granular: a range covers the hours
that start in ``[start, end)``, the first one taken from the hour ``start`` falls in.
"""

from __future__ import annotations

import calendar
import math
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Literal

import msgspec
from sqlalchemy import ColumnElement, desc, func, select

from modelway.store.engine import Database
from modelway.store.records import BudgetPeriod
from modelway.store.rollups import (
    ALL_TRAFFIC,
    COUNTER_COLUMNS,
    DIMENSIONS,
    EVERY_DIMENSION,
    HOUR,
    dimension_bit,
    percentile,
)
from modelway.store.tables import HISTOGRAM_BUCKETS, api_keys, usage_hourly

Bucket = Literal["hour", "day"]
Dimension = Literal["key_id", "team", "model", "provider", "alias"]
DAY = 86_400
#: A burn-down shows at most this many days (a ``total`` budget's earlier spend is its start).
BURN_DOWN_DAYS = 92
#: Keys named per query (SQLite and asyncpg both bound a statement's parameters).
_KEYS_PER_QUERY = 1000
_LATENCY_AT = len(COUNTER_COLUMNS) - 2 * HISTOGRAM_BUCKETS


class UsageFilters(msgspec.Struct, frozen=True, kw_only=True):
    """Which traffic a question is about: ``[start, end)`` epoch seconds and any dimensions."""

    start: float
    end: float
    key_id: str | None = None
    team: str | None = None
    model: str | None = None
    provider: str | None = None
    alias: str | None = None

    def dimensions(self) -> dict[str, str]:
        """The dimension filters that are set."""
        return {name: getattr(self, name) for name in DIMENSIONS if getattr(self, name)}


class UsageTotals(msgspec.Struct, kw_only=True):
    """Traffic summed over some hours; percentiles from the summed histograms."""

    requests: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    cost_usd: float
    #: Requests whose cost is unknown (their model has no price): not in ``cost_usd``.
    unpriced_requests: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None


class UsagePoint(UsageTotals, kw_only=True):
    """One bucket of a series: ``t`` is its start (epoch seconds, UTC)."""

    t: int


class TopRow(msgspec.Struct, kw_only=True):
    """One group of a top-N: its value (None: records without one), name and sums."""

    group: str | None
    name: str | None
    requests: int
    tokens: int
    cost_usd: float
    #: Of ``requests``, those whose cost is unknown (no price): not in ``cost_usd``.
    unpriced_requests: int


class BudgetOwner(msgspec.Struct, frozen=True, kw_only=True):
    """Who a budget belongs to, and the keys whose spend counts against it."""

    kind: Literal["key", "team"]
    id: str
    name: str
    budget_usd: float | None
    budget_period: BudgetPeriod
    #: When a ``total`` budget's period starts (the key's creation).
    since: float
    key_ids: tuple[str, ...]


class BurnPoint(msgspec.Struct, kw_only=True):
    t: int
    spent_usd: float


class BudgetBurn(msgspec.Struct, kw_only=True):
    """A budget's spend over its current period, cumulative per bucket."""

    kind: Literal["key", "team"]
    id: str
    name: str
    budget_usd: float | None
    budget_period: BudgetPeriod
    period_start: int
    spent_usd: float
    points: list[BurnPoint]


def period_start(period: BudgetPeriod, now: float, since: float) -> int:
    """The start of the budget period holding ``now``: UTC day, UTC month, or ``since``."""
    if period == "day":
        return int(now // DAY) * DAY
    if period == "month":
        year, month = time.gmtime(now)[:2]
        return calendar.timegm((year, month, 1, 0, 0, 0))
    return int(since // HOUR) * HOUR


class DashboardQueries:
    """Usage series, totals, top-N and budget burn-down from ``usage_hourly``."""

    def __init__(self, engine: Database) -> None:
        self._engine = engine

    async def series(self, filters: UsageFilters, bucket: Bucket) -> list[UsagePoint]:
        """One point per hour or UTC day with traffic, oldest first."""
        table = usage_hourly
        start = table.c.hour if bucket == "hour" else table.c.hour - table.c.hour % DAY
        query = (
            select(start.label("t"), *_sums())
            .where(*_conditions(filters))
            .group_by(start)
            .order_by(start)
        )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [UsagePoint(t=int(row[0]), **_totals(row[1:])) for row in rows]

    async def totals(self, filters: UsageFilters) -> UsageTotals:
        """Everything the filters select, summed."""
        query = select(*_sums()).where(*_conditions(filters))
        async with self._engine.connect() as connection:
            row = (await connection.execute(query)).one()
        return UsageTotals(**_totals(row))

    async def top(self, filters: UsageFilters, by: Dimension, limit: int) -> list[TopRow]:
        """The ``limit`` groups of ``by`` that cost most (then had most requests)."""
        table = usage_hourly
        given = set(filters.dimensions())
        dims = dimension_bit(by) if given <= {by} else EVERY_DIMENSION
        group = table.c[by]
        cost = func.sum(table.c.cost_usd)
        requests = func.sum(table.c.requests)
        query = (
            select(
                group,
                requests,
                func.sum(table.c.prompt_tokens + table.c.completion_tokens),
                cost,
                func.sum(table.c.unpriced),
            )
            .where(*_conditions(filters, dims))
            .group_by(group)
            .order_by(desc(cost), desc(requests), group)
            .limit(limit)
        )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
            names: dict[str, str] = {}
            ids = [row[0] for row in rows if row[0]]
            if by == "key_id" and ids:
                found = await connection.execute(
                    select(api_keys.c.id, api_keys.c.name).where(api_keys.c.id.in_(ids))
                )
                names = {key_id: name for key_id, name in found}
        return [
            TopRow(
                group=row[0] or None,
                name=names.get(row[0]) if by == "key_id" else row[0] or None,
                requests=int(row[1]),
                tokens=int(row[2]),
                cost_usd=float(row[3]),
                unpriced_requests=int(row[4]),
            )
            for row in rows
        ]

    async def burn_down(self, owners: Sequence[BudgetOwner], now: float) -> list[BudgetBurn]:
        """Each owner's cumulative spend over its current budget period.

        Hour buckets for a ``day`` budget, day buckets otherwise; a ``total`` budget shows
        its last ``BURN_DOWN_DAYS`` days, starting from what was spent before them.
        """
        if not owners:
            return []
        today = int(now // DAY) * DAY
        window = today - (BURN_DOWN_DAYS - 1) * DAY
        # Day buckets from the earliest period start (a month's, or the window's).
        earliest = min(
            (
                max(window, _day_of(period_start(owner.budget_period, now, owner.since)))
                for owner in owners
                if owner.budget_period != "day"
            ),
            default=today,
        )
        table = usage_hourly
        per_key = (table.c.dims == dimension_bit("key_id"), table.c.key_id != "")
        day_start = table.c.hour - table.c.hour % DAY
        daily = (
            select(table.c.key_id, day_start, func.sum(table.c.cost_usd))
            .where(*per_key, table.c.hour >= earliest)
            .group_by(table.c.key_id, day_start)
        )
        hourly = select(table.c.key_id, table.c.hour, table.c.cost_usd).where(
            *per_key, table.c.hour >= today
        )
        # What ``total`` budgets spent before the window: only their keys' older rows.
        carried_keys = sorted(
            {
                key_id
                for owner in owners
                if owner.budget_period == "total" and owner.since < window
                for key_id in owner.key_ids
            }
        )
        earlier: dict[str, float] = {}
        async with self._engine.connect() as connection:
            spend_by_day = _spend_by_key(await connection.execute(daily))
            spend_by_hour = _spend_by_key(await connection.execute(hourly))
            for first in range(0, len(carried_keys), _KEYS_PER_QUERY):
                before = (
                    select(table.c.key_id, func.sum(table.c.cost_usd))
                    .where(
                        table.c.dims == dimension_bit("key_id"),
                        table.c.key_id.in_(carried_keys[first : first + _KEYS_PER_QUERY]),
                        table.c.hour < window,
                    )
                    .group_by(table.c.key_id)
                )
                rows = await connection.execute(before)
                earlier.update((key_id, float(cost)) for key_id, cost in rows)
        burns = []
        for owner in owners:
            start = period_start(owner.budget_period, now, owner.since)
            spend = spend_by_hour if owner.budget_period == "day" else spend_by_day
            carried = 0.0
            if owner.budget_period == "total" and start < window:
                carried = sum(earlier.get(key_id, 0.0) for key_id in owner.key_ids)
            buckets: dict[int, float] = defaultdict(float)
            for key_id in owner.key_ids:
                for t, cost in spend.get(key_id, {}).items():
                    if t >= _day_of(start):
                        buckets[t] += cost
            points, spent = [], carried
            for t in sorted(buckets):
                spent += buckets[t]
                points.append(BurnPoint(t=t, spent_usd=spent))
            burns.append(
                BudgetBurn(
                    kind=owner.kind,
                    id=owner.id,
                    name=owner.name,
                    budget_usd=owner.budget_usd,
                    budget_period=owner.budget_period,
                    period_start=start,
                    spent_usd=spent,
                    points=points,
                )
            )
        return burns


def _day_of(epoch: int) -> int:
    return epoch - epoch % DAY


def _spend_by_key(rows: Any) -> dict[str, dict[int, float]]:
    spend: dict[str, dict[int, float]] = defaultdict(dict)
    for key_id, t, cost in rows:
        spend[key_id][int(t)] = float(cost)
    return spend


def _level(filters: UsageFilters) -> int:
    given = filters.dimensions()
    if not given:
        return ALL_TRAFFIC
    if len(given) == 1:
        return dimension_bit(next(iter(given)))
    return EVERY_DIMENSION


def _conditions(filters: UsageFilters, dims: int | None = None) -> list[ColumnElement[bool]]:
    table = usage_hourly
    conditions = [
        table.c.dims == (_level(filters) if dims is None else dims),
        table.c.hour >= int(filters.start // HOUR) * HOUR,
        table.c.hour < math.ceil(filters.end),  # an integer: hour is a bigint
    ]
    conditions += [table.c[name] == value for name, value in filters.dimensions().items()]
    return conditions


def _sums() -> list[Any]:
    return [func.coalesce(func.sum(usage_hourly.c[name]), 0) for name in COUNTER_COLUMNS]


def _totals(row: Sequence[Any]) -> dict[str, Any]:
    """A row of ``_sums`` as ``UsageTotals`` fields (PostgreSQL sums bigints as numeric)."""
    values = dict(zip(COUNTER_COLUMNS, row, strict=True))
    latency = [int(count) for count in row[_LATENCY_AT : _LATENCY_AT + HISTOGRAM_BUCKETS]]
    ttft = [int(count) for count in row[_LATENCY_AT + HISTOGRAM_BUCKETS :]]
    return {
        "requests": int(values["requests"]),
        "errors": int(values["errors"]),
        "prompt_tokens": int(values["prompt_tokens"]),
        "completion_tokens": int(values["completion_tokens"]),
        "cached_tokens": int(values["cached_tokens"]),
        "reasoning_tokens": int(values["reasoning_tokens"]),
        "cost_usd": float(values["cost_usd"]),
        "unpriced_requests": int(values["unpriced"]),
        "latency_p50_ms": percentile(latency, 0.5),
        "latency_p95_ms": percentile(latency, 0.95),
        "ttft_p50_ms": percentile(ttft, 0.5),
        "ttft_p95_ms": percentile(ttft, 0.95),
    }
