"""The store against a real PostgreSQL server: the SQLite specifications, plus an outage.

The repository tests are the unit modules' own, imported so pytest runs them again here
with the ``store`` fixture below (PostgreSQL) in place of theirs (SQLite in a tmp dir).
One server serves the whole session; every test starts from empty tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import msgspec
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from modelway.cli import app
from modelway.store import Store, UsageRecord, UsageWriter, database_url
from modelway.store.database import create_engine
from modelway.store.migrate import (
    PG_MIGRATION_LOCK,
    current_revision,
    head_revision,
    upgrade_to_head,
)
from modelway.store.tables import metadata, usage_records
from tests.polling import eventually
from tests.postgres import PostgresServer, running_postgres
from tests.unit.test_store_admin import *  # noqa: F403
from tests.unit.test_store_chats import *  # noqa: F403
from tests.unit.test_store_connections import *  # noqa: F403
from tests.unit.test_store_keys import *  # noqa: F403
from tests.unit.test_store_migrations import revisions_shipped, rolled_up_by_the_migration
from tests.unit.test_store_rollups import *  # noqa: F403
from tests.unit.test_store_usage import *  # noqa: F403
from tests.unit.test_store_users import *  # noqa: F403
from tests.unit.test_store_verifier import *  # noqa: F403
from tests.unit.test_store_writer import *  # noqa: F403

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with running_postgres() as server:
        yield server


@pytest.fixture
async def store(postgres: PostgresServer) -> AsyncIterator[Store]:
    store = await Store.open(database_url({"DATABASE_URL": postgres.url}))
    async with store.engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {', '.join(metadata.tables)} CASCADE"))
    yield store
    await store.aclose()


async def test_postgres_is_migrated_to_head_with_exactly_the_table_definitions(
    store: Store,
) -> None:
    assert await current_revision(store.engine) == head_revision()
    async with store.engine.connect() as connection:
        differences = await connection.run_sync(
            lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"compare_type": True}), metadata
            )
        )
    assert differences == []


async def test_workers_starting_together_on_an_empty_database_migrate_it_once(
    postgres: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    url = database_url({"DATABASE_URL": postgres.create_database("fresh_for_race")})
    caplog.set_level(logging.INFO, logger="alembic.runtime.migration")
    stores = await asyncio.gather(*(Store.open(url) for _ in range(8)))
    for opened in stores:
        assert await current_revision(opened.engine) == head_revision()
        await opened.aclose()
    applied = [r.getMessage() for r in caplog.records if "Running upgrade" in r.getMessage()]
    assert len(applied) == revisions_shipped()  # each revision ran once, in one worker


async def test_a_starter_waits_for_the_advisory_lock_and_then_gives_up_saying_why(
    postgres: PostgresServer,
) -> None:
    url = database_url({"DATABASE_URL": postgres.create_database("fresh_for_lock")})
    holder, starter = create_engine(url), create_engine(url)
    try:
        async with holder.connect() as migrating:  # another process, migrating for ever
            await migrating.execute(text(f"SELECT pg_advisory_lock({PG_MIGRATION_LOCK})"))
            with pytest.raises(TimeoutError, match="waiting for another modelway process"):
                await upgrade_to_head(starter, lock_timeout=0.2)
        assert await current_revision(starter) is None  # it waited and migrated nothing
    finally:
        await holder.dispose()
        await starter.dispose()


async def test_a_writer_under_load_loses_and_doubles_nothing_across_a_postgres_restart(
    postgres: PostgresServer, store: Store, tmp_path: Path
) -> None:
    spill = tmp_path / "usage-spill.jsonl"
    writer = UsageWriter(
        store, spill, batch_size=50, flush_interval=0.01, max_buffer=300, max_backoff=0.2
    )
    writer.start()
    sent: list[str] = []

    async def load(count: int) -> None:
        for _ in range(count):
            record = UsageRecord(request_id=f"req-{len(sent)}", time=1_700_000_000.0 + len(sent))
            sent.append(record.request_id)
            writer.record(record)
            if len(sent) % 25 == 0:
                await asyncio.sleep(0.001)  # requests arrive over time, not all at once

    await load(1000)
    await asyncio.to_thread(postgres.stop)
    await load(1500)
    await eventually(spill.exists)  # past max_buffer: records went to the local file
    await asyncio.to_thread(postgres.start)
    await load(1000)
    await eventually(lambda: writer.pending == 0 and not spill.exists())
    await writer.aclose()

    async with store.engine.connect() as connection:
        stored = list((await connection.execute(select(usage_records.c.request_id))).scalars())
        rows = (await connection.execute(select(func.count()).select_from(usage_records))).scalar()
    assert rows == len(sent) == 3500
    assert sorted(stored) == sorted(sent)


async def test_a_postgres_restart_is_one_warning_with_its_cause_and_one_when_it_ends(
    postgres: PostgresServer, store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    writer = UsageWriter(
        store, tmp_path / "spill.jsonl", flush_interval=0.01, max_backoff=0.05,
        outage=store.outage,
    )  # fmt: skip
    writer.start()
    with caplog.at_level(logging.INFO, logger="modelway"):
        await asyncio.to_thread(postgres.stop)
        try:
            assert await store.ping() is False
            for number in range(20):
                writer.record(UsageRecord(request_id=f"outage-{number}", time=1_700_000_000.0))
            await eventually(lambda: store.outage.down and writer.store_errors >= 2)
            assert await store.ping() is False
        finally:
            await asyncio.to_thread(postgres.start)
        await eventually(lambda: writer.pending == 0)
        assert await store.ping() is True
    await writer.aclose()
    lines = [
        (record.levelno, record.getMessage())
        for record in caplog.records
        if record.levelno >= logging.WARNING
    ]
    assert len(lines) == 2, lines
    assert lines[0][1].startswith("store unreachable (") and "spill" in lines[0][1]
    assert lines[1][1].startswith("store answers again after ")
    assert all(record.exc_info is None for record in caplog.records)  # no traceback


def test_db_upgrade_on_postgres_masks_the_password(
    postgres: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with_password = postgres.url.replace("postgres@", "postgres:hunter2@")
    monkeypatch.setenv("DATABASE_URL", with_password)
    result = CliRunner().invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "hunter2" not in result.output
    assert "postgresql+asyncpg://postgres:***@127.0.0.1" in result.output


async def test_migration_0005_rolls_up_the_records_already_stored_on_postgres(
    postgres: PostgresServer,
) -> None:
    from modelway.store.dashboard import UsageFilters
    from tests.unit.test_store_rollups import START, assert_matches, traffic

    url = database_url({"DATABASE_URL": postgres.create_database("back_fill")})
    # Revision 0004 has no ``unpriced``: the records it held read back priced.
    records = [msgspec.structs.replace(record, unpriced=False) for record in traffic(700, seed=21)]
    await rolled_up_by_the_migration(url, records)
    reopened = await Store.open(url)
    try:
        filters = UsageFilters(start=START, end=START + 3 * 86_400, key_id="k3")
        chosen = [record for record in records if record.key_id == "k3"]
        assert_matches(await reopened.dashboard.totals(filters), chosen)
        assert_matches(
            await reopened.dashboard.totals(UsageFilters(start=START, end=START + 3 * 86_400)),
            records,
        )
    finally:
        await reopened.aclose()


@pytest.mark.parametrize("after", [0.0, 0.002, 0.01])
async def test_an_insert_cut_short_leaves_no_connection_mid_operation(
    store: Store, after: float
) -> None:
    # The writer's timeout cancels an insert on the driver's own connection; handed out
    # again mid-operation, its next user met "another operation is in progress".
    batch = [UsageRecord(request_id=f"cut-{n}", time=1.0) for n in range(2_000)]
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(after):
            await store.usage.insert_many(batch)
    for attempt in range(3):  # every pooled connection is fit for the next user
        more = [UsageRecord(request_id=f"next-{attempt}", time=2.0)]
        await store.usage.insert_many(more)
    assert {r.request_id for r in await store.usage.recent(limit=5)} >= {"next-2"}


async def test_a_relayed_response_id_given_twice_keeps_its_first_owner(store: Store) -> None:
    # PostgreSQL's own ON CONFLICT (the unit test runs on SQLite): the second save was a
    # unique-key error, the caller's 500.
    day = 86_400.0
    await store.responses.save_relayed("resp_1", "key:a", "openai", "up1", keep_seconds=day)
    await store.responses.save_relayed("resp_1", "key:b", "custom", "up9", keep_seconds=day)
    assert await store.responses.relayed_owner("resp_1") == "key:a"
    await store.responses.save_relayed("resp_2", "key:b", "custom", "up9", keep_seconds=-1.0)
    await store.responses.save_relayed("resp_2", "key:c", "openai", "up1", keep_seconds=day)
    assert await store.responses.relayed_owner("resp_2") == "key:c"  # the first had expired
