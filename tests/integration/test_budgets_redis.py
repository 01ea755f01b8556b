"""Budgets in a real redis-server, through the in-process gateway and its real SQLite store:
a budget made or filled while calls end counts each of them once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from modelway.calls import Accounts, Calls, seed_budgets
from modelway.config import Config
from modelway.engine import Engine
from modelway.errors import BudgetExceeded
from modelway.limits import Limits
from modelway.store import Store, UsageWriter, database_url
from tests.redis_server import running_redis
from tests.unit.fakes import ScriptedBackend
from tests.unit.test_budget_seeding import NEVER, caller, spend
from tests.unit.test_calls import PRICES
from tests.unit.test_store_keys import cheap_argon2  # noqa: F401  (autouse)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with running_redis() as url:
        yield url


async def flushed(redis_url: str) -> Redis:
    client = Redis.from_url(redis_url)
    await client.flushdb()
    return client


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(database_url({"MODELWAY_DATA_DIR": str(tmp_path)}))
    yield store
    await store.aclose()


async def test_a_window_redis_lost_is_filled_with_the_calls_not_stored_yet(
    redis_url: str, store: Store, tmp_path: Path
) -> None:
    """Redis restarts without its data just after a call: the next check fills the
    window from the spend on file, which must hold that call though the batched writer
    has not stored its record yet."""
    client = await flushed(redis_url)
    limits = Limits.from_environment(redis_url)
    writer = UsageWriter(store, tmp_path / "spill.jsonl", flush_interval=NEVER)
    writer.start()
    engine = Engine(Config(), {}, {"quiet": ScriptedBackend("quiet")}, rates=limits.rates)
    calls = Calls(engine, Accounts(limits, writer, PRICES, on_file=writer))
    try:
        await seed_budgets(store, calls.accounts, ())  # Redis: windows filled on demand
        record, _ = await store.keys.create("ci", budget_usd=5.0, budget_period="total")
        await spend(calls, record)  # $7: charged in Redis, its record still in memory
        await client.flushdb()
        with pytest.raises(BudgetExceeded):
            async with calls.open(caller(record), "quiet/m", dialect="openai", request_id="r2"):
                pass
    finally:
        await calls.aclose()
        await client.aclose()
