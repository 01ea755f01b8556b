"""The usage writer: batched off the hot path, and nothing lost or doubled when the store fails."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sqlalchemy import select

from modelway.store import Store, UsageRecord, UsageWriter, database_url
from modelway.store.spill import SpillFile
from modelway.store.tables import usage_records
from modelway.store.usage import UsageRepository
from tests.polling import eventually


class Outage:
    """Stands in for the usage repository; while ``down`` every insert fails as a dead DB would."""

    def __init__(self, usage: UsageRepository) -> None:
        self._usage = usage
        self.down = False
        self.batches: list[int] = []

    async def insert_many(self, records: Sequence[UsageRecord]) -> None:
        if self.down:
            raise ConnectionRefusedError("database unreachable")
        self.batches.append(len(records))
        await self._usage.insert_many(records)

    async def spend(self, **filters: Any) -> tuple[float, int]:
        return await self._usage.spend(**filters)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(database_url({"MODELWAY_DATA_DIR": str(tmp_path)}))
    yield store
    await store.aclose()


@pytest.fixture
def outage(store: Store) -> Outage:
    outage = Outage(store.usage)
    store.usage = outage  # type: ignore[assignment]
    return outage


@pytest.fixture
def spill_path(tmp_path: Path) -> Path:
    return tmp_path / "usage-spill.jsonl"


def records(count: int, start: int = 0) -> list[UsageRecord]:
    return [
        UsageRecord(request_id=f"req-{n}", time=1_700_000_000.0 + n)
        for n in range(start, start + count)
    ]


def spilled(path: Path) -> int:
    """How many records the spill file holds."""
    return len(path.read_bytes().splitlines())


def write_spill(path: Path, batch: list[UsageRecord], torn_tail: bytes) -> None:
    """A spill file as a crash in the middle of an append leaves it."""
    path.write_bytes(b"".join(msgspec.json.encode(r) + b"\n" for r in batch) + torn_tail)


async def stored_ids(store: Store) -> list[str]:
    async with store.engine.connect() as connection:
        return list((await connection.execute(select(usage_records.c.request_id))).scalars())


async def test_recorded_usage_reaches_the_store_in_batches(
    store: Store, outage: Outage, spill_path: Path
) -> None:
    writer = UsageWriter(store, spill_path, batch_size=10, flush_interval=0.01)
    writer.start()
    for record in records(25):
        writer.record(record)
    await eventually(lambda: sum(outage.batches) == 25)
    await writer.aclose()
    assert max(outage.batches) <= 10
    assert sorted(await stored_ids(store)) == sorted(r.request_id for r in records(25))


class Gated(Outage):
    """An insert that takes until the test lets it finish."""

    def __init__(self, usage: UsageRepository) -> None:
        super().__init__(usage)
        self.gate = asyncio.Event()
        self.done = asyncio.Event()

    async def insert_many(self, records: Sequence[UsageRecord]) -> None:
        self.batches.append(len(records))
        await self.gate.wait()
        await self._usage.insert_many(records)
        self.done.set()


async def test_records_that_arrive_during_a_flush_wait_for_the_next_batch(
    store: Store, spill_path: Path
) -> None:
    # Draining them as they come would be a transaction per few records under load.
    gated = Gated(store.usage)
    store.usage = gated  # type: ignore[assignment]
    writer = UsageWriter(store, spill_path, batch_size=10, flush_interval=3600)
    writer.start()
    for record in records(10):
        writer.record(record)
    await eventually(lambda: gated.batches == [10])
    for record in records(3, start=10):
        writer.record(record)  # while the batch is being written
    gated.gate.set()
    await gated.done.wait()
    for _ in range(20):
        await asyncio.sleep(0)
    assert gated.batches == [10]
    assert writer.queued == 3
    for record in records(7, start=13):
        writer.record(record)  # a full batch again
    await eventually(lambda: gated.batches == [10, 10])
    await writer.aclose()
    assert sorted(await stored_ids(store)) == sorted(r.request_id for r in records(20))


async def test_closing_flushes_what_is_still_buffered(store: Store, spill_path: Path) -> None:
    writer = UsageWriter(store, spill_path, flush_interval=60)
    writer.start()
    for record in records(7):
        writer.record(record)
    assert writer.pending == 7
    await writer.aclose()
    assert len(await stored_ids(store)) == 7
    assert writer.pending == 0


async def test_records_taken_before_start_are_kept(store: Store, spill_path: Path) -> None:
    writer = UsageWriter(store, spill_path)
    for record in records(3):
        writer.record(record)
    await writer.aclose()
    assert len(await stored_ids(store)) == 3


async def test_an_outage_buffers_then_spills_and_recovery_stores_everything_once(
    store: Store, outage: Outage, spill_path: Path
) -> None:
    writer = UsageWriter(
        store, spill_path, batch_size=5, flush_interval=0.01, max_buffer=10, max_backoff=0.02
    )
    writer.start()
    outage.down = True
    for record in records(40):
        writer.record(record)
    await eventually(lambda: spill_path.exists() and writer.pending == 40)
    assert 40 - spilled(spill_path) <= 10  # memory stays bounded
    outage.down = False
    await eventually(lambda: writer.pending == 0 and not spill_path.exists())
    await writer.aclose()
    assert sorted(await stored_ids(store)) == sorted(r.request_id for r in records(40))


async def test_shutdown_during_an_outage_spills_everything_and_the_next_start_replays_it(
    store: Store, outage: Outage, spill_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    writer = UsageWriter(store, spill_path, flush_interval=60, close_timeout=0.5)
    writer.start()
    outage.down = True
    for record in records(12):
        writer.record(record)
    await writer.aclose()
    assert spilled(spill_path) == 12
    assert await stored_ids(store) == []

    outage.down = False
    caplog.set_level(logging.INFO, logger="modelway.store")
    restarted = UsageWriter(store, spill_path, flush_interval=0.01)
    restarted.start()
    await eventually(lambda: not spill_path.exists())
    await restarted.aclose()
    assert len(await stored_ids(store)) == 12
    # The operator is told how many came back (it said 0 whatever it replayed).
    assert "usage spill file replayed into the store: 12 records" in caplog.messages


async def test_a_replay_skips_records_already_stored_and_a_torn_last_line(
    store: Store, spill_path: Path
) -> None:
    batch = records(6)
    await store.usage.insert_many(batch[:3])  # stored, but the spill was written anyway
    write_spill(spill_path, batch, torn_tail=b'{"request_id": "torn')
    writer = UsageWriter(store, spill_path, flush_interval=0.01)
    writer.start()
    await eventually(lambda: not spill_path.exists())
    await writer.aclose()
    assert sorted(await stored_ids(store)) == sorted(r.request_id for r in batch)


async def test_a_store_that_hangs_at_shutdown_cannot_hold_the_records_hostage(
    store: Store, spill_path: Path
) -> None:
    class Hanging:
        async def insert_many(self, records: Sequence[UsageRecord]) -> None:
            await asyncio.Event().wait()

    store.usage = Hanging()  # type: ignore[assignment]
    writer = UsageWriter(store, spill_path, flush_interval=60, close_timeout=0.2)
    writer.start()
    for record in records(4):
        writer.record(record)
    await writer.aclose()
    assert spilled(spill_path) == 4


def test_an_append_waiting_on_a_replay_goes_to_a_fresh_file(tmp_path: Path) -> None:
    spill = SpillFile(tmp_path / "spill.jsonl")
    spill.append(records(2))
    replay = spill.claim()
    assert replay is not None
    assert SpillFile(spill.path).claim() is None  # one replayer at a time
    appender = threading.Thread(target=spill.append, args=(records(1, start=100),))
    appender.start()  # blocks on the replay's lock
    assert [r.request_id for r in replay.read_batch(10)] == ["req-0", "req-1"]
    replay.remove()
    replay.close()
    appender.join()
    fresh = spill.claim()
    assert fresh is not None
    assert [r.request_id for r in fresh.read_batch(10)] == ["req-100"]
    fresh.close()


# --- a full disk: neither the store nor the spill file takes records -------------------------


async def test_with_nowhere_to_write_memory_stays_bounded_drops_are_counted_and_logged(
    store: Store, outage: Outage, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "full").touch()
    spill_path = tmp_path / "full" / "usage-spill.jsonl"  # cannot be written, as on a full disk
    writer = UsageWriter(
        store, spill_path, batch_size=5, flush_interval=0.01, max_buffer=10, max_backoff=0.02
    )
    writer.start()
    outage.down = True
    for record in records(30):
        writer.record(record)
    await eventually(lambda: writer.dropped == 20)
    assert not writer.writable
    assert writer.pending == 10
    assert any(r.levelname == "ERROR" and "dropped" in r.getMessage() for r in caplog.records)
    outage.down = False  # space returns: the store takes what was held
    await eventually(lambda: writer.pending == 0 and writer.writable)
    await writer.aclose()
    assert sorted(await stored_ids(store)) == sorted(r.request_id for r in records(10, 20))


async def test_shutdown_with_nowhere_to_write_says_how_many_records_were_lost(
    store: Store, outage: Outage, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "full").touch()
    spill_path = tmp_path / "full" / "usage-spill.jsonl"
    writer = UsageWriter(store, spill_path, flush_interval=60, close_timeout=0.2)
    writer.start()
    outage.down = True
    for record in records(7):
        writer.record(record)
    await writer.aclose()
    assert writer.dropped == 7
    [said] = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert said.levelname == "ERROR" and "dropped 7 usage records" in said.getMessage()


async def test_a_store_failure_makes_the_held_records_durable_at_once(
    store: Store, outage: Outage, spill_path: Path
) -> None:
    writer = UsageWriter(store, spill_path, flush_interval=0.01, max_buffer=1000)
    writer.start()
    outage.down = True
    for record in records(3):
        writer.record(record)
    # Far below max_buffer, yet on disk: a crash now would lose nothing.
    await eventually(lambda: spill_path.exists() and spilled(spill_path) == 3)
    assert writer.writable
    outage.down = False
    await eventually(lambda: writer.pending == 0 and not spill_path.exists())
    await writer.aclose()


# --- the spend on file: the store plus the records held, each once -------------------------


def spent(count: int, start: int = 0, key_id: str = "k") -> list[UsageRecord]:
    """Records of ``key_id`` costing $1 and 3 tokens each."""
    return [
        UsageRecord(
            request_id=f"req-{n}",
            time=1_700_000_000.0 + n,
            key_id=key_id,
            cost_usd=1.0,
            prompt_tokens=2,
            completion_tokens=1,
        )
        for n in range(start, start + count)
    ]


async def test_the_spend_holds_the_records_not_stored_yet(store: Store, spill_path: Path) -> None:
    writer = UsageWriter(store, spill_path, flush_interval=3600)
    writer.start()
    for record in [*spent(2), *spent(1, start=2, key_id="other")]:
        writer.record(record)
    assert await writer.spend(key_id="k") == (2.0, 6)
    assert await writer.spend(key_id="k", since=1_700_000_001.0) == (1.0, 3)
    await writer.aclose()
    assert await writer.spend(key_id="k") == (2.0, 6)  # now from the store alone


async def test_the_spend_counts_a_batch_being_stored_once(store: Store, spill_path: Path) -> None:
    gated = Gated(store.usage)
    store.usage = gated  # type: ignore[assignment]
    writer = UsageWriter(store, spill_path, batch_size=10, flush_interval=3600)
    writer.start()
    for record in spent(10):
        writer.record(record)
    await eventually(lambda: gated.batches == [10])  # stored, not yet out of memory
    for record in spent(3, start=10):
        writer.record(record)
    reading = asyncio.create_task(writer.spend(key_id="k"))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not reading.done()  # it waits for the batch rather than count it twice or never
    gated.gate.set()
    assert await reading == (13.0, 39)
    await writer.aclose()


async def test_the_spend_is_exact_while_records_come_and_batches_are_stored(
    store: Store, spill_path: Path
) -> None:
    """Whenever it is read, the spend is every record queued until the reading returned:
    none counted twice as a batch leaves memory, none missed."""
    writer = UsageWriter(store, spill_path, batch_size=7, flush_interval=0.001)
    writer.start()
    queued = 0
    read = asyncio.Event()

    async def calls_ending() -> None:
        nonlocal queued
        for number, record in enumerate(spent(400)):
            writer.record(record)
            queued += 1
            await asyncio.sleep(0)
            if number % 40 == 39:  # readings come between these, however slow the store
                read.clear()
                await read.wait()

    ending = asyncio.create_task(calls_ending())
    readings = 0
    while not ending.done():
        usd, tokens = await writer.spend(key_id="k")
        assert (usd, tokens) == (queued, 3 * queued)
        readings += 1
        read.set()
    await ending
    await writer.aclose()
    assert readings >= 10 and writer.written == 400


async def test_records_spilled_while_the_store_was_down_count_once_it_answers(
    store: Store, outage: Outage, spill_path: Path
) -> None:
    writer = UsageWriter(store, spill_path, flush_interval=0.01)
    writer.start()
    outage.down = True
    for record in spent(5):
        writer.record(record)
    await eventually(lambda: spill_path.exists() and spilled(spill_path) == 5)
    outage.down = False
    assert await writer.spend(key_id="k") == (5.0, 15)
    await writer.aclose()
    assert len(await stored_ids(store)) == 5


class SlowSpend(Outage):
    """A store whose first reading of the spend hangs until the test lets it go."""

    def __init__(self, usage: UsageRepository) -> None:
        super().__init__(usage)
        self.gate = asyncio.Event()
        self.readings = 0

    async def spend(self, **filters: Any) -> tuple[float, int]:
        self.readings += 1
        if self.readings == 1:
            await self.gate.wait()
        return await self._usage.spend(**filters)


async def test_a_store_slow_to_read_the_spend_does_not_hold_the_writer_back(
    store: Store,
    spill_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The reading held the writer's lock for as long as the store took: every record
    # stayed in memory meanwhile, and a stopping process could neither store nor spill.
    monkeypatch.setattr("modelway.store.writer.SPEND_WAIT", 0.05)
    slow = SlowSpend(store.usage)
    store.usage = slow  # type: ignore[assignment]
    writer = UsageWriter(store, spill_path, batch_size=2, flush_interval=0.01)
    writer.start()
    with caplog.at_level(logging.WARNING, logger="modelway.store"):
        reading = asyncio.create_task(writer.spend(key_id="k"))
        await eventually(lambda: slow.readings == 1)
        for record in spent(2):
            writer.record(record)
        await eventually(lambda: writer.written == 2)  # stored, the first reading still hung
        # Read again from the store alone: before or after the two were stored in it.
        assert await reading in {(0.0, 0), (2.0, 6)}
    assert "store slow to read the spend" in caplog.text
    assert not slow.gate.is_set() and slow.readings == 2
    slow.gate.set()
    await writer.aclose()


async def test_a_writer_stuck_storing_leaves_the_spend_to_the_store(
    store: Store,
    spill_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr("modelway.store.writer.SPEND_WAIT", 0.05)
    gated = Gated(store.usage)
    store.usage = gated  # type: ignore[assignment]
    writer = UsageWriter(store, spill_path, batch_size=2, flush_interval=3600)
    writer.start()
    for record in spent(2):
        writer.record(record)
    await eventually(lambda: gated.batches == [2])
    with caplog.at_level(logging.WARNING, logger="modelway.store"):
        assert await writer.spend(key_id="k") == (0.0, 0)  # not stored, and not counted twice
    assert "reading stored spend without the records it holds" in caplog.text
    gated.gate.set()
    await writer.aclose()
