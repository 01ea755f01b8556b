"""Budgets in a real redis-server, through the in-process gateway and its real SQLite store:
a budget made or filled while calls end counts each of them once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from modelway.calls import Accounts, Calls, seed_budgets
from modelway.config import Config
from modelway.engine import Engine
from modelway.errors import BudgetExceeded
from modelway.limits import Limits
from modelway.providers.transport import MockReply, UpstreamRequest
from modelway.store import Store, UsageWriter, database_url
from tests.polling import eventually
from tests.redis_server import running_redis
from tests.unit.fakes import ScriptedBackend
from tests.unit.gateways import Setup, in_process_gateway, openai_upstream
from tests.unit.test_budget_seeding import NEVER, caller, spend
from tests.unit.test_calls import PRICES
from tests.unit.test_store_keys import cheap_argon2  # noqa: F401  (autouse)

pytestmark = pytest.mark.integration

CHAT = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
#: One call's cost: 5 prompt tokens at $0.15/M and 1 completion token at $0.60/M.
ONE_CALL = 5 * 0.15e-6 + 1 * 0.60e-6


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with running_redis() as url:
        yield url


async def flushed(redis_url: str) -> Redis:
    client = Redis.from_url(redis_url)
    await client.flushdb()
    return client


async def new_key(setup: Setup, **settings: object) -> dict[str, Any]:
    answer = await setup.http.post("/admin/api/keys", json={"name": "k", **settings})
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


async def chat(setup: Setup, key: dict[str, Any]) -> httpx.Response:
    return await setup.http.post(
        "/v1/chat/completions", json=CHAT, headers={"authorization": f"Bearer {key['key']}"}
    )


def writer_of(setup: Setup) -> UsageWriter:
    writer = setup.state.calls.accounts.recorder
    assert isinstance(writer, UsageWriter)
    return writer


async def test_a_call_that_ends_while_a_new_team_budget_is_seeded_is_charged(
    redis_url: str, tmp_path: Path
) -> None:
    """The team's budget is made in the admin API while a call of the team is in flight;
    the call ends while this worker seeds the budget in Redis (a round trip). Before, the
    worker knew the budget only after the seed: the call was charged nowhere, and its
    record was not in the spend the seed had read."""
    answer_now = asyncio.Event()
    asked = asyncio.Event()

    async def slow_upstream(request: UpstreamRequest) -> MockReply:
        asked.set()
        await answer_now.wait()
        return openai_upstream(request)

    client = await flushed(redis_url)
    config = f"redis:\n  url: {redis_url}\n"
    try:
        async with in_process_gateway(tmp_path, config, slow_upstream) as gateway:
            key = await new_key(gateway, owner_team="ml")
            in_flight = asyncio.create_task(chat(gateway, key))
            await eventually(asked.is_set, what="the call reached the upstream")
            writer = writer_of(gateway)
            budgets = gateway.state.calls.accounts.limits.budgets
            seed = budgets.seed

            async def seed_as_the_call_ends(*args: Any) -> None:
                if args[0] == "team:ml" and not answer_now.is_set():
                    recorded = writer.queued + writer.written
                    answer_now.set()
                    await eventually(
                        lambda: writer.queued + writer.written > recorded,
                        what="the call's usage record",
                    )
                await seed(*args)

            budgets.seed = seed_as_the_call_ends  # type: ignore[method-assign]
            made = await gateway.http.post(
                "/admin/api/teams", json={"name": "ml", "budget_usd": 1.0}
            )
            assert made.status_code == 201, made.text
            assert (await in_flight).status_code == 200

            async def charged() -> float:
                usd = await client.hget(next(iter(await client.keys("mw:budget:team:ml:*"))), "usd")
                return float(usd or 0)

            assert await eventually(charged, what="the call charged to the team") == (
                pytest.approx(ONE_CALL)
            )
    finally:
        await client.aclose()


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
