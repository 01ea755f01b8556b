"""A budget set or changed counts the calls that ended just before, whose usage records the
batched writer has not stored yet: real SQLite store, real writer, the metered call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from modelway.calls import Accounts, Caller, Calls, seed_key_budget
from modelway.calls.spending import Spending
from modelway.config import Config
from modelway.engine import Engine
from modelway.errors import BudgetExceeded
from modelway.limits import Limits, MemoryLimiter, Period
from modelway.store import Store, UsageWriter, database_url
from modelway.store.records import KeyRecord
from tests.polling import WITHIN
from tests.unit.fakes import ScriptedBackend
from tests.unit.test_calls import PRICES, chat
from tests.unit.test_store_keys import cheap_argon2  # noqa: F401  (autouse)

#: Longer than any test: the writer stores nothing on its own, as under load it is late.
NEVER = 3600.0


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(database_url({"MODELWAY_DATA_DIR": str(tmp_path)}))
    yield store
    await store.aclose()


@pytest.fixture
async def calls(store: Store, tmp_path: Path) -> AsyncIterator[Calls]:
    writer = UsageWriter(store, tmp_path / "spill.jsonl", flush_interval=NEVER)
    writer.start()
    limits = Limits.from_environment(None)
    engine = Engine(Config(), {}, {"quiet": ScriptedBackend("quiet")}, rates=limits.rates)
    calls = Calls(engine, Accounts(limits, writer, PRICES, on_file=writer))
    yield calls
    await calls.aclose()


def caller(record: KeyRecord) -> Caller:
    return Caller(record.id, record.name, record.owner_user, record.owner_team, key=record)


async def spend(calls: Calls, record: KeyRecord) -> None:
    """One call of ``record``'s key, $7 (``PRICES``)."""
    async with calls.open(caller(record), "quiet/m", dialect="openai", request_id="r") as call:
        await call.complete(chat())


async def test_a_budget_set_just_after_a_call_counts_that_call(calls: Calls, store: Store) -> None:
    record, _ = await store.keys.create("ci")
    await spend(calls, record)  # $7, its record not stored yet
    edited = await store.keys.update(record.id, {"budget_usd": 5.0})
    assert edited is not None
    await seed_key_budget(calls.accounts, edited)
    with pytest.raises(BudgetExceeded):
        async with calls.open(caller(edited), "quiet/m", dialect="openai", request_id="r2"):
            pass


async def test_a_team_budget_made_just_after_a_call_counts_that_call(
    calls: Calls, store: Store
) -> None:
    record, _ = await store.keys.create("ci", owner_team="red")
    await spend(calls, record)
    await store.teams.create("red", budget_usd=5.0)
    accounts = calls.accounts
    await accounts.team_budgets.refresh(store, accounts.spending.seed)
    with pytest.raises(BudgetExceeded):
        async with calls.open(caller(record), "quiet/m", dialect="openai", request_id="r2"):
            pass


# --- the order of charges and seeds, over a ledger with round trips (as Redis is) ----------


class RoundTrips:
    """A budget ledger whose charges and seeds take effect when the test lets them arrive,
    as over Redis; a seed keeps the larger of what is counted and what is on file."""

    refill = None

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}
        self.charges_arrive = asyncio.Event()
        self.seeds_arrive = asyncio.Event()
        self.charges_arrive.set()
        self.seeds_arrive.set()

    async def check(self, scope: str, **limits: Any) -> None:
        return None

    async def charge(self, scope: str, *, usd: float, tokens: int, period: Period) -> None:
        await self.charges_arrive.wait()
        self.spent[scope] = self.spent.get(scope, 0.0) + usd

    async def seed(self, scope: str, period: Period, usd: float, tokens: int) -> None:
        await self.seeds_arrive.wait()
        self.spent[scope] = max(self.spent.get(scope, 0.0), usd)


class OnFile:
    """The spend on file: what the store and the writer hold."""

    def __init__(self, usd: float) -> None:
        self.usd = usd

    async def spend(self, **filters: Any) -> tuple[float, int]:
        await asyncio.sleep(0)  # a store read
        return self.usd, 0


def spending(ledger: RoundTrips, on_file: OnFile) -> Spending:
    return Spending(Limits(MemoryLimiter(), ledger), on_file)


async def turns(count: int = 20) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


async def test_a_charge_on_its_way_when_the_seed_reads_counts_once() -> None:
    ledger = RoundTrips()
    book = spending(ledger, OnFile(usd=1.0))  # the call's record is on file already...
    charges = book.charging([("key:k", "total")])
    ledger.charges_arrive.clear()
    charging = asyncio.create_task(book.charge(charges, usd=1.0, tokens=0))  # ...its charge not
    await turns()
    seeding = asyncio.create_task(book.seed("key:k", "total"))
    await turns()
    assert not seeding.done() and ledger.spent == {}  # the seed waits for the charge
    ledger.charges_arrive.set()
    await asyncio.gather(charging, seeding)
    assert ledger.spent == {"key:k": 1.0}


async def test_a_call_recorded_after_the_seed_read_is_charged_after_the_seed() -> None:
    ledger = RoundTrips()
    book = spending(ledger, OnFile(usd=5.0))  # earlier calls
    ledger.seeds_arrive.clear()
    seeding = asyncio.create_task(book.seed("key:k", "total"))
    await turns()  # read; the seed is on its way to the ledger
    charges = book.charging([("key:k", "total")])  # a call ends now
    charging = asyncio.create_task(book.charge(charges, usd=1.0, tokens=0))
    await turns()
    assert ledger.spent == {}  # the charge waits: arriving first, the seed would swallow it
    ledger.seeds_arrive.set()
    await asyncio.gather(seeding, charging)
    assert ledger.spent == {"key:k": 6.0}


async def test_a_charge_that_stops_waiting_for_the_seed_leaves_the_others_to_land(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("modelway.calls.spending.CHARGES_WAIT", 3600.0)
    ledger = RoundTrips()
    book = spending(ledger, OnFile(usd=5.0))
    ledger.seeds_arrive.clear()
    seeding = asyncio.create_task(book.seed("key:k", "total"))
    await turns()
    first, second = [
        asyncio.create_task(book.charge(book.charging([("key:k", "total")]), usd=1.0, tokens=0))
        for _ in range(2)
    ]
    await turns()
    first.cancel()  # its task ends (shutdown); the seed and the other charge go on
    await turns()
    ledger.seeds_arrive.set()
    await asyncio.gather(seeding, second)
    assert ledger.spent == {"key:k": 6.0}
    # Nothing is left counted as on its way: the next seed does not wait for it.
    await asyncio.wait_for(book.seed("key:k", "total"), timeout=WITHIN)


async def test_a_seed_that_cannot_read_starts_nothing() -> None:
    class Away:
        async def spend(self, **filters: Any) -> tuple[float, int]:
            raise OSError("the store is away")

    started: list[str] = []
    book = spending(RoundTrips(), Away())  # type: ignore[arg-type]
    with pytest.raises(OSError):
        await book.seed("team:red", "month", then=lambda: started.append("red"))
    assert started == []
    charges = book.charging([("team:red", "month")])
    await book.charge(charges, usd=1.0, tokens=0)  # nothing left waiting
