"""The admin dashboard's queries at a million usage records, on SQLite and PostgreSQL.

Seeds ``--records`` usage records over the last 30 days (50 keys in 10 teams, 8 models
on 4 providers, ~3 % errors, half of them streamed) through ``UsageRepository.insert_many``
— the writer's own path, so the hourly roll-ups are built as in production — then
times every dashboard question server side (the store call) and once more through the
ASGI app (httpx, in process), and prints the worst of ``--runs`` runs of each. Not a
test: figures for docs/benchmarks.md.

    .venv/bin/python -m bench.admin --records 1000000 --store both
    .venv/bin/python -m bench.admin --records 100000 --store sqlite --plans
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from modelway.config import parse_config
from modelway.gateway.app import create_app
from modelway.store import Store, UsageRecord, database_url
from modelway.store.dashboard import Bucket, BudgetOwner, DashboardQueries, UsageFilters
from modelway.store.records import new_usage_id

MASTER = "mw-master-key-for-the-admin-benchmark-0123"
DAY = 86_400
SPAN_DAYS = 30
BATCH = 20_000
#: Server-side targets of issue 17 (ms): dashboard views, request-log pages.
VIEW_TARGET, PAGE_TARGET = 300.0, 100.0
MODELS = {
    "gpt-4o": "openai",
    "gpt-4o-mini": "openai",
    "o3": "openai",
    "claude-sonnet-4-5": "anthropic",
    "claude-haiku-4-5": "anthropic",
    "gemini-2.5-pro": "gemini",
    "gemini-2.5-flash": "gemini",
    "llama-3.3-70b": "groq",
}
ALIASES = {"gpt-4o": "smart", "claude-sonnet-4-5": "smart", "gpt-4o-mini": "fast"}
ERRORS = [(429, "rate_limited"), (502, "upstream_error"), (400, "invalid_request_error")]


class Seeded:
    """What the timed queries ask about: the keys made, the range, a record's id."""

    def __init__(self, keys: list[Any], start: float, end: float, some_id: str) -> None:
        self.keys = keys
        self.start = start
        self.end = end
        self.some_id = some_id


def traffic(count: int, keys: list[Any], start: float, end: float) -> Iterator[list[UsageRecord]]:
    """``count`` records in time order, ``BATCH`` at a time (as a writer's batches come)."""
    chance = random.Random(17)
    models = list(MODELS)
    weights = [chance.uniform(0.5, 3) for _ in keys]  # some keys far busier than others
    step = (end - start) / count
    batch: list[UsageRecord] = []
    for n in range(count):
        key = chance.choices(keys, weights)[0]
        model = models[n % 7 if n % 13 else 7]
        failed = chance.random() < 0.03
        status, error_type = chance.choice(ERRORS) if failed else (200, None)
        stream = chance.random() < 0.5
        latency = chance.lognormvariate(7.0, 0.9)
        prompt = chance.randrange(20, 8000)
        completion = 0 if failed else chance.randrange(1, 1500)
        batch.append(
            UsageRecord(
                request_id=f"req-{n}",
                time=start + n * step + chance.uniform(0, step),
                key_id=key.id,
                team=key.owner_team,
                dialect="openai" if n % 3 else "anthropic",
                alias=ALIASES.get(model),
                provider=MODELS[model],
                model=model,
                status=status,
                error_type=error_type,
                prompt_tokens=prompt,
                completion_tokens=completion,
                cached_tokens=prompt // 4 if n % 5 == 0 else 0,
                cost_usd=(prompt * 2.5 + completion * 10) / 1e6,
                latency_ms=latency,
                ttft_ms=latency * chance.uniform(0.05, 0.4) if stream and not failed else None,
                stream=stream,
                id=new_usage_id(),
            )
        )
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


async def seed(store: Store, count: int) -> Seeded:
    """Make 50 keys (a third with a USD budget) and ``count`` records; print the rate."""
    keys = []
    for n in range(50):
        record, _ = await store.keys.create(
            f"key-{n:02d}",
            owner_team=f"team-{n % 10}",
            budget_usd=100.0 if n % 3 == 0 else None,
            budget_period=("day", "month", "total")[n % 3],
        )
        keys.append(record)
    end = time.time()
    start = end - SPAN_DAYS * DAY
    began = time.perf_counter()
    some_id = ""
    for batch in traffic(count, keys, start, end):
        await store.usage.insert_many(batch)
        some_id = batch[len(batch) // 2].id
    took = time.perf_counter() - began
    print(f"  seeded {count:,} records in {took:.1f} s ({took / count * 1e6:.0f} µs a record)")
    return Seeded(keys, start, end, some_id)


Query = Callable[[], Awaitable[Any]]


def store_queries(store: Store, seeded: Seeded) -> list[tuple[str, float, Query]]:
    """(name, target ms, call) for every dashboard question asked of the store."""
    end = seeded.end
    key = seeded.keys[7]
    board = store.dashboard
    queries: list[tuple[str, float, Query]] = []

    def view(name: str, call: Query) -> None:
        queries.append((name, VIEW_TARGET, call))

    def page(name: str, call: Query) -> None:
        queries.append((name, PAGE_TARGET, call))

    dimensions: list[tuple[str, dict[str, Any]]] = [
        ("", {}),
        (" key", {"key_id": key.id}),
        (" team", {"team": key.owner_team}),
        (" model", {"model": "gpt-4o"}),
        (" provider", {"provider": "anthropic"}),
        (" alias", {"alias": "smart"}),
        (" key+model", {"key_id": key.id, "model": "gpt-4o"}),
    ]
    for days in (7, 31):
        for label, dims in dimensions:
            filters = UsageFilters(start=end - days * DAY, end=end, **dims)
            view(f"series hour {days} d{label}", _series(board, filters, "hour"))
            view(f"series day {days} d{label}", _series(board, filters, "day"))
    month = UsageFilters(start=end - 31 * DAY, end=end)
    view("totals 31 d", _totals(board, month))
    view(
        "totals 31 d model+provider",
        _totals(board, UsageFilters(start=month.start, end=end, model="o3", provider="openai")),
    )
    for by in ("key_id", "model", "team", "provider", "alias"):
        view(f"top {by} 31 d", _top(board, month, by))
    view(
        "top key_id 31 d model",
        _top(board, UsageFilters(start=month.start, end=end, model="o3"), "key_id"),
    )
    owners = [
        BudgetOwner(kind="key", id=k.id, name=k.name, budget_usd=k.budget_usd,
                    budget_period=k.budget_period, since=k.created_at, key_ids=(k.id,))
        for k in seeded.keys if k.budget_usd is not None
    ]  # fmt: skip
    view("budgets burn-down", lambda: board.burn_down(owners, time.time()))
    middle = (seeded.start + end) / 2
    log_filters: list[tuple[str, dict[str, Any]]] = [
        ("", {}),
        (" key", {"key_id": key.id}),
        (" model", {"model": "o3"}),
        (" provider", {"provider": "gemini"}),
        (" status 429", {"status": 429}),
        (" error_type", {"error_type": "upstream_error"}),
        (" key+from/to", {"key_id": key.id, "start": middle - DAY, "end": middle}),
    ]
    for label, chosen in log_filters:
        page(f"log first page{label}", _log_page(store, None, chosen))
        page(f"log deep page{label}", _log_page(store, (middle, "~"), chosen))
    page("log one record", lambda: store.usage.get(seeded.some_id))
    return queries


def _series(board: DashboardQueries, filters: UsageFilters, bucket: Bucket) -> Query:
    return lambda: board.series(filters, bucket)


def _totals(board: DashboardQueries, filters: UsageFilters) -> Query:
    return lambda: board.totals(filters)


def _top(board: DashboardQueries, filters: UsageFilters, by: Any) -> Query:
    return lambda: board.top(filters, by, 10)


def _log_page(store: Store, before: tuple[float, str] | None, filters: dict[str, Any]) -> Query:
    return lambda: store.usage.page(50, before, **filters)


def http_queries(seeded: Seeded) -> list[tuple[str, float, str]]:
    """(name, target ms, path) for the same questions through the admin API."""
    key = seeded.keys[7]
    return [
        ("GET series hour (7 d)", VIEW_TARGET, "/admin/api/usage/series?bucket=hour"),
        ("GET series day 31 d key", VIEW_TARGET,
         f"/admin/api/usage/series?bucket=day&key_id={key.id}&from="
         + time.strftime("%Y-%m-%d", time.gmtime(seeded.end - 30 * DAY))),
        ("GET totals (7 d)", VIEW_TARGET, "/admin/api/usage/totals"),
        ("GET top model (7 d)", VIEW_TARGET, "/admin/api/usage/top?by=model"),
        ("GET top key (7 d)", VIEW_TARGET, "/admin/api/usage/top?by=key"),
        ("GET budgets", VIEW_TARGET, "/admin/api/usage/budgets"),
        ("GET requests", PAGE_TARGET, "/admin/api/requests?limit=50"),
        ("GET requests provider", PAGE_TARGET, "/admin/api/requests?limit=50&provider=groq"),
        ("GET request by id", PAGE_TARGET, f"/admin/api/requests/{seeded.some_id}"),
    ]  # fmt: skip


async def worst_of(runs: int, call: Query) -> float:
    """The slowest of ``runs`` calls, in milliseconds (after one untimed warm-up)."""
    await call()
    worst = 0.0
    for _ in range(runs):
        began = time.perf_counter()
        await call()
        worst = max(worst, time.perf_counter() - began)
    return worst * 1000


@contextlib.asynccontextmanager
async def admin_http(url: str, data_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    environ = {"MODELWAY_DATA_DIR": str(data_dir), "MODELWAY_MASTER_KEY": MASTER}
    if url.startswith("postgres"):
        environ["DATABASE_URL"] = url
    app = create_app(parse_config("", environ), environ)
    async with (
        app.lifespan(),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://gateway",
            headers={"authorization": f"Bearer {MASTER}"},
        ) as client,
    ):
        yield client


async def print_plans(store: Store, seeded: Seeded) -> None:
    """How the database runs a request-log page with each filter."""
    explain = "EXPLAIN QUERY PLAN" if store.dialect == "sqlite" else "EXPLAIN"
    for column, value in (
        ("key_id", f"'{seeded.keys[7].id}'"),
        ("model", "'o3'"),
        ("provider", "'gemini'"),
        ("status", "429"),
        ("error_type", "'upstream_error'"),
    ):
        sql = (
            f"{explain} SELECT * FROM usage_records WHERE {column} = {value}"
            f" AND (time, id) < ({(seeded.start + seeded.end) / 2}, '~')"
            " ORDER BY time DESC, id DESC LIMIT 50"
        )
        async with store.engine.connect() as connection:
            rows = (await connection.execute(text(sql))).all()
        print(f"  {column}: " + " | ".join(str(row[-1]) for row in rows))


async def run_one(
    url: str, data_dir: Path, count: int, runs: int, plans: bool
) -> dict[str, tuple[float, float]]:
    store = await Store.open(url)
    timings: dict[str, tuple[float, float]] = {}
    try:
        seeded = await seed(store, count)
        if store.dialect == "postgresql":
            async with store.engine.connect() as connection:
                await connection.execute(text("ANALYZE"))
                await connection.commit()
        if plans:
            await print_plans(store, seeded)
        for name, target, call in store_queries(store, seeded):
            timings[name] = (await worst_of(runs, call), target)
        async with admin_http(url, data_dir) as client:
            for name, target, path in http_queries(seeded):

                async def get(path: str = path) -> None:
                    response = await client.get(path)
                    response.raise_for_status()

                timings[name] = (await worst_of(runs, get), target)
    finally:
        await store.aclose()
    return timings


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--plans", action="store_true", help="print request-log query plans")
    arguments = parser.parse_args()
    results: dict[str, dict[str, tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="modelway-bench-admin-") as scratch:
        if arguments.store in ("sqlite", "both"):
            data_dir = Path(scratch, "sqlite")
            data_dir.mkdir()  # noqa: ASYNC240 (before anything runs)
            print("SQLite")
            url = database_url({"MODELWAY_DATA_DIR": str(data_dir)})
            results["SQLite"] = await run_one(
                url, data_dir, arguments.records, arguments.runs, arguments.plans
            )
        if arguments.store in ("postgres", "both"):
            from tests.postgres import running_postgres  # the tests' throwaway server

            print("PostgreSQL")
            with running_postgres() as server:
                url = database_url({"DATABASE_URL": server.url})
                results["PostgreSQL"] = await run_one(
                    url, Path(scratch), arguments.records, arguments.runs, arguments.plans
                )
    print_table(results, arguments.records, arguments.runs)


def print_table(
    results: dict[str, dict[str, tuple[float, float]]], records: int, runs: int
) -> None:
    stores = list(results)
    names = list(next(iter(results.values())))
    print(f"\n{records:,} usage records; worst of {runs} runs, milliseconds\n")
    target_of = {name: target for name, (_, target) in next(iter(results.values())).items()}
    print("| Query | " + " | ".join(stores) + " | Target |")
    print("|---|" + "---:|" * len(stores) + "---:|")
    missed = 0
    for name in names:
        cells = []
        for store in stores:
            took, target = results[store][name]
            missed += took >= target
            cells.append(f"{took:.1f}" + ("" if took < target else " ✗"))
        print(f"| {name} | " + " | ".join(cells) + f" | < {target_of[name]:.0f} |")
    print(f"\n{missed} over target")


if __name__ == "__main__":
    asyncio.run(main())
