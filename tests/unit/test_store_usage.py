"""The usage audit: idempotent batch inserts, summaries, recent requests and spend.

tests/integration/test_store_postgres.py runs these same tests against PostgreSQL.
"""

from __future__ import annotations

import calendar
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from modelway.errors import BadRequest
from modelway.store import Store, UsageRecord, database_url
from modelway.store.usage import _ROWS_PER_INSERT

DAY_ONE = calendar.timegm((2025, 3, 1, 12, 0, 0))
DAY_TWO = calendar.timegm((2025, 3, 2, 23, 59, 0))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(database_url({"MODELWAY_DATA_DIR": str(tmp_path)}))
    yield store
    await store.aclose()


def usage(number: int, **fields: Any) -> UsageRecord:
    defaults: dict[str, Any] = {
        "request_id": f"req-{number}",
        "time": DAY_ONE + number,
        "key_id": "key-a",
        "model": "gpt-4o",
        "provider": "openai",
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cost_usd": 0.01,
        "latency_ms": 100.0,
    }
    return UsageRecord(**{**defaults, **fields})


async def test_every_field_of_a_record_round_trips(store: Store) -> None:
    record = UsageRecord(
        request_id="req-1",
        time=DAY_ONE + 0.25,
        key_id="key-a",
        user="alice",
        team="research",
        dialect="anthropic",
        alias="smart",
        provider="openai",
        model="gpt-4o",
        status=502,
        error_type="upstream_error",
        prompt_tokens=120,
        completion_tokens=30,
        cached_tokens=100,
        usage_estimated=True,
        cost_usd=0.0042,
        latency_ms=812.5,
        ttft_ms=230.25,
        stream=True,
        retries=2,
        fallback_used="anthropic/claude-sonnet-4-5",
        cache_hit=False,
    )
    await store.usage.insert_many([record])
    assert await store.usage.recent() == [record]


async def test_inserting_a_record_twice_stores_it_once(store: Store) -> None:
    records = [usage(n) for n in range(3)]
    await store.usage.insert_many(records)
    await store.usage.insert_many(records)  # a replay after an unacknowledged commit
    assert len(await store.usage.recent()) == 3


async def test_a_batch_over_several_statements_stores_each_record_once(store: Store) -> None:
    # SQLite inserts a batch a few records per statement: full statements, a shorter last one.
    count = _ROWS_PER_INSERT * 2 + _ROWS_PER_INSERT // 2
    records = [usage(n, latency_ms=float(n)) for n in range(count)]
    await store.usage.insert_many(records[: _ROWS_PER_INSERT + 3])
    await store.usage.insert_many([*records, records[-1]])  # a replay; one record twice
    [row] = await store.usage.summary(by="key")
    assert row.requests == count
    assert row.prompt_tokens == 10 * count
    newest = await store.usage.recent(limit=count)
    assert sorted(newest, key=lambda record: record.time) == records


async def test_two_requests_sharing_a_request_id_are_both_kept(store: Store) -> None:
    await store.usage.insert_many([usage(1, request_id="same"), usage(2, request_id="same")])
    assert len(await store.usage.recent()) == 2


async def test_inserting_nothing_is_fine(store: Store) -> None:
    await store.usage.insert_many([])
    assert await store.usage.recent() == []


async def test_summary_by_key_counts_requests_errors_tokens_and_cost(store: Store) -> None:
    await store.usage.insert_many(
        [
            usage(1),
            usage(2, status=429, error_type="rate_limit_error"),
            usage(3, key_id="key-b", cost_usd=0.5),
        ]
    )
    rows = {row.group: row for row in await store.usage.summary(by="key")}
    assert (rows["key-a"].requests, rows["key-a"].errors) == (2, 1)
    assert (rows["key-a"].prompt_tokens, rows["key-a"].completion_tokens) == (20, 10)
    assert rows["key-a"].cost_usd == pytest.approx(0.02)
    assert (rows["key-b"].requests, rows["key-b"].errors) == (1, 0)
    assert rows["key-b"].cost_usd == pytest.approx(0.5)


async def test_summary_reports_latency_percentiles_per_group(store: Store) -> None:
    await store.usage.insert_many(
        [usage(n, latency_ms=float(latency)) for n, latency in enumerate(range(10, 110, 10))]
    )
    [row] = await store.usage.summary(by="model")
    assert row.group == "gpt-4o"
    assert row.latency_p50_ms == pytest.approx(55.0)
    assert row.latency_p95_ms == pytest.approx(95.5)


def percentile_cont(values: list[float], fraction: float) -> float:
    """PostgreSQL's ``percentile_cont``: between the two values around the place."""
    ordered = sorted(values)
    place = fraction * (len(ordered) - 1)
    low, high = int(place), min(int(place) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (place - low)


@pytest.mark.parametrize("sizes", [(1,), (2, 3), (7, 20, 1), (101, 40)])
async def test_summary_percentiles_are_interpolated_within_each_group(
    store: Store, sizes: tuple[int, ...]
) -> None:
    # Uneven latencies, ties, and groups of one; the store reads them back per group.
    records, expected = [], {}
    number = 0
    for index, size in enumerate(sizes):
        latencies = [float((n * 7919 + index * 13) % 97) + (n % 3) * 0.25 for n in range(size)]
        expected[f"key-{index}"] = latencies
        for latency in latencies:
            number += 1
            records.append(usage(number, key_id=f"key-{index}", latency_ms=latency))
    await store.usage.insert_many(records)
    rows = {row.group: row for row in await store.usage.summary(by="key")}
    assert set(rows) == set(expected)
    for group, latencies in expected.items():
        assert rows[group].latency_p50_ms == pytest.approx(percentile_cont(latencies, 0.5))
        assert rows[group].latency_p95_ms == pytest.approx(percentile_cont(latencies, 0.95))


async def test_summary_by_day_uses_utc_days_in_order(store: Store) -> None:
    await store.usage.insert_many([usage(1, time=DAY_TWO), usage(2), usage(3)])
    rows = await store.usage.summary(by="day")
    assert [(row.group, row.requests) for row in rows] == [("2025-03-01", 2), ("2025-03-02", 1)]


async def test_summary_can_start_at_a_time_and_keep_to_one_key(store: Store) -> None:
    await store.usage.insert_many([usage(1), usage(2, time=DAY_TWO), usage(3, key_id="key-b")])
    [row] = await store.usage.summary(by="key", since=DAY_TWO)
    assert (row.group, row.requests) == ("key-a", 1)
    [only_b] = await store.usage.summary(by="model", key_id="key-b")
    assert only_b.requests == 1


async def test_summary_of_nothing_is_empty(store: Store) -> None:
    assert await store.usage.summary(by="day") == []


async def test_summary_groups_are_the_records_own_columns(store: Store) -> None:
    with pytest.raises(BadRequest, match="key, model, provider, alias, team, day"):
        await store.usage.summary(by="colour")  # type: ignore[arg-type]


async def test_recent_lists_newest_first_with_filters(store: Store) -> None:
    await store.usage.insert_many(
        [
            usage(1),
            usage(2, model="claude-sonnet-4-5", provider="anthropic"),
            usage(3, status=500),
            usage(4, key_id="key-b"),
        ]
    )
    assert [r.request_id for r in await store.usage.recent()] == [
        "req-4",
        "req-3",
        "req-2",
        "req-1",
    ]
    assert [r.request_id for r in await store.usage.recent(limit=2)] == ["req-4", "req-3"]
    assert [r.request_id for r in await store.usage.recent(key_id="key-b")] == ["req-4"]
    assert [r.request_id for r in await store.usage.recent(model="claude-sonnet-4-5")] == ["req-2"]
    assert [r.request_id for r in await store.usage.recent(status=500)] == ["req-3"]


async def test_spend_sums_cost_and_tokens_per_key_team_and_period(store: Store) -> None:
    await store.usage.insert_many(
        [
            usage(1, team="research"),
            usage(2, team="research", time=DAY_TWO),
            usage(3, key_id="key-b", team="ops", cost_usd=1.0),
        ]
    )
    cost, tokens = await store.usage.spend(key_id="key-a")
    assert (cost, tokens) == (pytest.approx(0.02), 30)
    assert (await store.usage.spend(team="ops"))[0] == pytest.approx(1.0)
    assert (await store.usage.spend(key_id="key-a", since=DAY_TWO))[1] == 15
    assert await store.usage.spend(key_id="nobody") == (0.0, 0)
    assert (await store.usage.spend())[1] == 45


def test_usage_record_ids_are_unique_and_fit_the_id_column() -> None:
    from modelway.store.records import UsageRecord

    ids = {UsageRecord(request_id="same", time=0.0).id for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(record_id) == 32 for record_id in ids)
