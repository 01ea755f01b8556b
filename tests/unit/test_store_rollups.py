"""The hourly roll-ups answer as a scan of the records would, and the request log pages.

tests/integration/test_store_postgres.py runs these same tests against PostgreSQL.
"""

from __future__ import annotations

import asyncio
import calendar
import math
import random
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest

from modelway.store import Store, UsageRecord, UsageWriter, database_url
from modelway.store.dashboard import BudgetOwner, UsageFilters, period_start
from modelway.store.rollups import bucket_of, percentile
from modelway.store.spill import SpillFile
from modelway.store.tables import HISTOGRAM_BOUNDS_MS

START = calendar.timegm((2025, 3, 1, 0, 0, 0))
HOUR, DAY = 3600, 86_400
#: The documented bound on a percentile's relative error (half a bucket, log scale).
PERCENTILE_ERROR = 2 ** (1 / 6) - 1


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(database_url({"MODELWAY_DATA_DIR": str(tmp_path)}))
    yield store
    await store.aclose()


def traffic(count: int, seed: int = 7, start: float = START, days: float = 3) -> list[UsageRecord]:
    """Records spread over ``days``: five keys (and none), two teams, three models, errors."""
    chance = random.Random(seed)
    records = []
    for n in range(count):
        model = chance.choice(["m0", "m1", "m2"])
        records.append(
            UsageRecord(
                request_id=f"req-{n}",
                time=start + chance.uniform(0, days * DAY),
                key_id=chance.choice(["k0", "k1", "k2", "k3", "k4", None]),
                team=chance.choice(["t0", "t1", None]),
                model=model,
                provider="p0" if model != "m2" else "p1",
                alias=chance.choice(["fast", None]),
                status=chance.choice([200] * 18 + [429, 502]),
                error_type=chance.choice([None, None, "rate_limited"]),
                prompt_tokens=chance.randrange(2000),
                completion_tokens=chance.randrange(500),
                cached_tokens=chance.randrange(100),
                reasoning_tokens=chance.randrange(50),
                cost_usd=chance.uniform(0, 0.02),
                latency_ms=math.exp(chance.uniform(0, math.log(200_000))),
                ttft_ms=None if chance.random() < 0.3 else math.exp(chance.uniform(2, 9)),
                stream=chance.random() < 0.5,
            )
        )
        if chance.random() < 0.1:  # a model with no price: its cost unknown, not 0
            records[-1] = msgspec.structs.replace(records[-1], cost_usd=0.0, unpriced=True)
    return records


async def write_through_the_writer(store: Store, spill: Path, records: list[UsageRecord]) -> None:
    writer = UsageWriter(store, spill, batch_size=97, flush_interval=0.01)
    writer.start()
    for record in records:
        writer.record(record)
    await writer.aclose()
    assert writer.written == len(records)


def selected(records: Sequence[UsageRecord], filters: UsageFilters) -> list[UsageRecord]:
    first_hour = filters.start // HOUR * HOUR
    return [
        record
        for record in records
        if first_hour <= record.time // HOUR * HOUR < filters.end
        and all(getattr(record, name) == value for name, value in filters.dimensions().items())
    ]


def nearest_rank(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


def assert_close_percentile(estimate: float | None, exact: float | None) -> None:
    if exact is None:
        assert estimate is None
        return
    assert estimate is not None
    assert abs(estimate - exact) <= PERCENTILE_ERROR * exact + 1e-9, (estimate, exact)


def assert_matches(totals: Any, records: Sequence[UsageRecord]) -> None:
    assert totals.requests == len(records)
    assert totals.errors == sum(record.status >= 400 for record in records)
    assert totals.prompt_tokens == sum(record.prompt_tokens for record in records)
    assert totals.completion_tokens == sum(record.completion_tokens for record in records)
    assert totals.cached_tokens == sum(record.cached_tokens for record in records)
    assert totals.reasoning_tokens == sum(record.reasoning_tokens for record in records)
    assert totals.cost_usd == pytest.approx(sum(record.cost_usd for record in records))
    assert totals.unpriced_requests == sum(record.unpriced for record in records)
    latencies = [record.latency_ms for record in records]
    ttfts = [record.ttft_ms for record in records if record.ttft_ms is not None]
    assert_close_percentile(totals.latency_p50_ms, nearest_rank(latencies, 0.5))
    assert_close_percentile(totals.latency_p95_ms, nearest_rank(latencies, 0.95))
    assert_close_percentile(totals.ttft_p50_ms, nearest_rank(ttfts, 0.5))
    assert_close_percentile(totals.ttft_p95_ms, nearest_rank(ttfts, 0.95))


FILTERS: list[dict[str, Any]] = [
    {},
    {"key_id": "k1"},
    {"team": "t0"},
    {"model": "m2"},
    {"provider": "p0"},
    {"alias": "fast"},
    {"key_id": "k2", "model": "m0"},
    {"team": "t1", "provider": "p1", "alias": "fast"},
    {"key_id": "no-such-key"},
]
# Ranges inside the traffic, across its edges, starting mid-hour, ending just past an hour.
RANGES = [
    (START, START + 3 * DAY),
    (START + 30 * 60, START + DAY + 7),
    (START - DAY, START + HOUR),
    (START + 0.5, START + 5 * HOUR + 0.25),
]


@pytest.mark.parametrize("dimensions", FILTERS)
async def test_series_and_totals_match_a_scan_of_the_records_written(
    store: Store, tmp_path: Path, dimensions: dict[str, Any]
) -> None:
    records = traffic(1500)
    await write_through_the_writer(store, tmp_path / "spill.jsonl", records)
    for start, end in RANGES:
        filters = UsageFilters(start=start, end=end, **dimensions)
        chosen = selected(records, filters)
        assert_matches(await store.dashboard.totals(filters), chosen)
        for bucket, width in (("hour", HOUR), ("day", DAY)):
            groups: dict[int, list[UsageRecord]] = defaultdict(list)
            for record in chosen:
                groups[int(record.time // width * width)].append(record)
            points = await store.dashboard.series(filters, bucket)  # type: ignore[arg-type]
            assert [point.t for point in points] == sorted(groups)
            for point in points:
                assert_matches(point, groups[point.t])


@pytest.mark.parametrize("by", ["key_id", "team", "model", "provider", "alias"])
@pytest.mark.parametrize("dimensions", [{}, {"model": "m1"}, {"key_id": "k3", "team": "t0"}])
async def test_top_groups_are_those_that_cost_most(
    store: Store, tmp_path: Path, by: str, dimensions: dict[str, Any]
) -> None:
    records = traffic(800, seed=11)
    await write_through_the_writer(store, tmp_path / "spill.jsonl", records)
    await store.keys.create("key three")  # a key id the top rows do not name: no name
    filters = UsageFilters(start=START, end=START + 2 * DAY, **dimensions)
    sums: dict[str | None, list[float]] = defaultdict(lambda: [0, 0, 0.0])
    for record in selected(records, filters):
        row = sums[getattr(record, by)]
        row[0] += 1
        row[1] += record.prompt_tokens + record.completion_tokens
        row[2] += record.cost_usd
    expected = sorted(sums.items(), key=lambda item: (-item[1][2], -item[1][0]))[:3]
    rows = await store.dashboard.top(filters, by, 3)  # type: ignore[arg-type]
    assert [(row.group, row.requests, row.tokens) for row in rows] == [
        (group, requests, tokens) for group, (requests, tokens, _) in expected
    ]
    assert [row.cost_usd for row in rows] == pytest.approx([sums[2] for _, sums in expected])
    if by != "key_id":
        assert [row.name for row in rows] == [row.group for row in rows]


async def test_the_top_keys_carry_their_names(store: Store, tmp_path: Path) -> None:
    key, _ = await store.keys.create("ci runner")
    records = [
        UsageRecord(request_id="a", time=START + 10, key_id=key.id, cost_usd=1.0),
        UsageRecord(request_id="b", time=START + 20, key_id=None, cost_usd=0.5),
    ]
    await store.usage.insert_many(records)
    rows = await store.dashboard.top(UsageFilters(start=START, end=START + DAY), "key_id", 5)
    assert [(row.group, row.name) for row in rows] == [(key.id, "ci runner"), (None, None)]


async def test_a_record_stored_twice_or_replayed_from_the_spill_file_counts_once(
    store: Store, tmp_path: Path
) -> None:
    records = traffic(300, seed=3)
    await store.usage.insert_many(records[:200])
    await store.usage.insert_many(records[100:200])  # a retry after an unacknowledged commit
    # A crash mid-replay: the spill file still holds records 150..299, 150..199 stored.
    spill = tmp_path / "spill.jsonl"
    SpillFile(spill).append(records[150:])
    writer = UsageWriter(store, spill, batch_size=40, flush_interval=0.01)
    writer.start()
    writer.record(records[0])  # and a record the writer was handed again
    await writer.aclose()
    assert not spill.exists()
    filters = UsageFilters(start=START - DAY, end=START + 4 * DAY)
    assert_matches(await store.dashboard.totals(filters), records)


async def test_one_batch_holding_one_id_twice_counts_it_once(store: Store) -> None:
    record = UsageRecord(request_id="a", time=START + 5, cost_usd=1.0)
    await store.usage.insert_many([record, record])
    totals = await store.dashboard.totals(UsageFilters(start=START, end=START + HOUR))
    assert (totals.requests, totals.cost_usd) == (1, 1.0)


def test_each_latency_falls_in_the_bucket_its_bounds_say() -> None:
    assert bucket_of(0.0) == bucket_of(0.99) == 0
    assert bucket_of(1.0) == 1
    for index, bound in enumerate(HISTOGRAM_BOUNDS_MS):
        assert bucket_of(bound) == index + 1
        assert bucket_of(bound * 0.999) == index
    assert bucket_of(10**9) == len(HISTOGRAM_BOUNDS_MS)


@pytest.mark.parametrize("value", [1.0, 1.13, 7.5, 99.0, 100.0, 1234.5, 50_000.0, 262_000.0])
def test_a_percentile_is_within_the_documented_error_of_the_value(value: float) -> None:
    counts = [0] * (len(HISTOGRAM_BOUNDS_MS) + 1)
    counts[bucket_of(value)] = 1
    assert_close_percentile(percentile(counts, 0.5), value)
    assert percentile([0] * len(counts), 0.5) is None


def test_latencies_past_the_last_bound_are_reported_as_it() -> None:
    counts = [0] * (len(HISTOGRAM_BOUNDS_MS) + 1)
    counts[bucket_of(10**7)] = 4
    assert percentile(counts, 0.95) == HISTOGRAM_BOUNDS_MS[-1]


# --- the request log ----------------------------------------------------------------------


LOG_FILTERS: list[dict[str, Any]] = [
    {},
    {"key_id": "k1"},
    {"model": "m0"},
    {"provider": "p1"},
    {"status": 502},
    {"error_type": "rate_limited"},
    {"key_id": "k4", "status": 200},
    {"start": START + DAY, "end": START + 2 * DAY},
]


def newest_first(records: Sequence[UsageRecord]) -> list[UsageRecord]:
    return sorted(records, key=lambda record: (record.time, record.id), reverse=True)


def log_match(filters: dict[str, Any]) -> Callable[[UsageRecord], bool]:
    def matches(record: UsageRecord) -> bool:
        for name, value in filters.items():
            if name == "start" and record.time < value:
                return False
            if name == "end" and record.time >= value:
                return False
            if name not in ("start", "end") and getattr(record, name) != value:
                return False
        return True

    return matches


@pytest.mark.parametrize("filters", LOG_FILTERS)
async def test_request_log_pages_hold_the_filtered_records_newest_first(
    store: Store, filters: dict[str, Any]
) -> None:
    records = traffic(400, seed=5)
    # Ties on time: the id orders them, and no page boundary loses one.
    records += [UsageRecord(request_id=f"tie-{n}", time=START + DAY + 0.5) for n in range(30)]
    await store.usage.insert_many(records)
    expected = [record for record in newest_first(records) if log_match(filters)(record)]
    seen: list[UsageRecord] = []
    before = None
    while True:
        page = await store.usage.page(7, before, **filters)
        seen += page
        if len(page) < 7:
            break
        before = (page[-1].time, page[-1].id)
    assert [record.id for record in seen] == [record.id for record in expected]


async def test_keyset_pages_visit_every_record_once_while_records_are_inserted(
    store: Store,
) -> None:
    records = traffic(500, seed=9)
    await store.usage.insert_many(records)

    async def keep_inserting() -> None:
        for n in range(40):
            newer = traffic(10, seed=100 + n, start=START + 10 * DAY, days=1)
            await store.usage.insert_many(
                [
                    UsageRecord(**{**_fields(record), "id": f"new-{n}-{i}"})
                    for i, record in enumerate(newer)
                ]
            )
            await asyncio.sleep(0)

    async def page_through() -> list[str]:
        ids: list[str] = []
        before = None
        while page := await store.usage.page(13, before):
            ids += [record.id for record in page]
            before = (page[-1].time, page[-1].id)
            await asyncio.sleep(0)
        return ids

    _, ids = await asyncio.gather(keep_inserting(), page_through())
    assert len(ids) == len(set(ids))  # nothing twice, newer records or not
    original = {record.id for record in records}
    assert [i for i in ids if i in original] == [record.id for record in newest_first(records)]


def _fields(record: UsageRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__struct_fields__}


async def test_one_record_is_read_by_its_id(store: Store) -> None:
    record = traffic(1)[0]
    await store.usage.insert_many([record])
    assert await store.usage.get(record.id) == record
    assert await store.usage.get("no-such-id") is None


# --- budgets ------------------------------------------------------------------------------


async def test_burn_down_cumulates_spend_over_each_budget_period(store: Store) -> None:
    now = START + 40 * DAY + 5 * HOUR  # 2025-04-10 05:00 UTC
    spend = [
        ("k1", START + 30 * DAY, 1.0),  # 31 March: outside the month
        ("k1", START + 31 * DAY + 10, 2.0),  # 2025-04-01
        ("k1", START + 40 * DAY + HOUR, 0.5),
        ("k2", START + 40 * DAY + HOUR, 0.25),
        ("k2", START + 40 * DAY + 2 * HOUR, 0.25),
        ("k2", START + 39 * DAY, 9.0),  # yesterday: outside today
        ("k3", START - 200 * DAY, 4.0),  # long ago: a total budget carries it
        ("k3", START + 40 * DAY, 1.0),
    ]
    await store.usage.insert_many(
        [
            UsageRecord(request_id=f"r{n}", time=at, key_id=key_id, cost_usd=cost)
            for n, (key_id, at, cost) in enumerate(spend)
        ]
    )

    def owner(kind: str, name: str, period: str, key_ids: tuple[str, ...]) -> BudgetOwner:
        return BudgetOwner(
            kind=kind,  # type: ignore[arg-type]
            id=name,
            name=name,
            budget_usd=10.0,
            budget_period=period,  # type: ignore[arg-type]
            since=START - 300 * DAY,
            key_ids=key_ids,
        )

    owners = [
        owner("key", "k1", "month", ("k1",)),
        owner("key", "k2", "day", ("k2",)),
        owner("key", "k3", "total", ("k3",)),
        owner("team", "t", "month", ("k1", "k2")),
    ]
    k1, k2, k3, team = await store.dashboard.burn_down(owners, now)
    april = calendar.timegm((2025, 4, 1, 0, 0, 0))
    assert (k1.period_start, k1.spent_usd) == (april, 2.5)
    assert [(p.t, p.spent_usd) for p in k1.points] == [(april, 2.0), (START + 40 * DAY, 2.5)]
    assert (k2.period_start, k2.spent_usd) == (START + 40 * DAY, 0.5)
    assert [(p.t, p.spent_usd) for p in k2.points] == [
        (START + 40 * DAY + HOUR, 0.25),
        (START + 40 * DAY + 2 * HOUR, 0.5),
    ]
    assert k3.spent_usd == 5.0
    assert [(p.t, p.spent_usd) for p in k3.points] == [(START + 40 * DAY, 5.0)]
    assert team.spent_usd == pytest.approx(2.0 + 0.5 + 0.25 + 0.25 + 9.0)


def test_a_period_starts_at_the_utc_day_the_utc_month_or_the_keys_creation() -> None:
    now = START + 40 * DAY + 5 * HOUR
    assert period_start("day", now, 0) == START + 40 * DAY
    assert period_start("month", now, 0) == calendar.timegm((2025, 4, 1, 0, 0, 0))
    assert period_start("total", now, START + 7) == START
