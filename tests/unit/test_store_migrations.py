"""The schema comes from migrations, and the migrations produce exactly the ORM metadata."""

from __future__ import annotations

import fcntl
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from typer.testing import CliRunner

from modelway.cli import app
from modelway.store import Store, database_url, display_url
from modelway.store.database import create_engine
from modelway.store.location import sqlite_path
from modelway.store.migrate import (
    alembic_config,
    current_revision,
    head_revision,
    upgrade_to_head,
)
from modelway.store.tables import metadata, usage_records


def sqlite_url(directory: Path) -> str:
    return database_url({"MODELWAY_DATA_DIR": str(directory)})


async def schema_differences(store: Store) -> list[object]:
    async with store.engine.connect() as connection:
        return await connection.run_sync(
            lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"compare_type": True}), metadata
            )
        )


async def test_opening_an_empty_database_migrates_it_to_head(tmp_path: Path) -> None:
    store = await Store.open(sqlite_url(tmp_path))
    try:
        assert await current_revision(store.engine) == head_revision()
        async with store.engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        assert set(metadata.tables) <= tables
    finally:
        await store.aclose()


async def test_migrations_produce_exactly_the_table_definitions(tmp_path: Path) -> None:
    store = await Store.open(sqlite_url(tmp_path))
    try:
        assert await schema_differences(store) == []
    finally:
        await store.aclose()


# One gateway worker: says "ready" once imported, opens the store when told, logs what
# Alembic ran ("Running upgrade ..." once per revision applied).
_WORKER = """
import asyncio, logging, sys
from modelway.store import Store
logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
print("ready", flush=True)
sys.stdin.readline()
store = asyncio.run(Store.open(sys.argv[1]))
asyncio.run(store.aclose())
"""


def start_workers_together(url: str, count: int) -> list[subprocess.CompletedProcess[str]]:
    """Run ``count`` worker processes released at one instant; each one's exit and log."""
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    for worker in workers:  # every interpreter is up before any of them touches the file
        assert worker.stdout is not None and worker.stdout.readline() == "ready\n"
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    done = []
    for worker in workers:
        _, log = worker.communicate(timeout=120)
        done.append(subprocess.CompletedProcess(worker.args, worker.returncode, "", log))
    return done


def revisions_shipped() -> int:
    return len(list(ScriptDirectory.from_config(alembic_config()).walk_revisions()))


async def test_workers_starting_together_on_an_empty_file_migrate_it_once(
    tmp_path: Path,
) -> None:
    url, count = sqlite_url(tmp_path), 8
    workers = start_workers_together(url, count)

    for worker in workers:
        assert worker.returncode == 0, worker.stderr  # never "database is locked"
    migrations_run = sorted(worker.stderr.count("Running upgrade") for worker in workers)
    assert migrations_run == [0] * (count - 1) + [revisions_shipped()]  # one ran them all
    store = await Store.open(url)
    try:
        assert await current_revision(store.engine) == head_revision()
        assert await schema_differences(store) == []
    finally:
        await store.aclose()


async def test_a_starter_waits_for_the_migration_lock_and_then_gives_up_saying_why(
    tmp_path: Path,
) -> None:
    url = sqlite_url(tmp_path)
    database = sqlite_path(url)
    assert database is not None
    engine = create_engine(url)
    with (database.parent / f"{database.name}.migrate.lock").open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another process is migrating, and never finishes
        with pytest.raises(TimeoutError, match="waiting for another modelway process") as raised:
            await upgrade_to_head(engine, lock_timeout=0.2)
    await engine.dispose()
    assert str(database) in str(raised.value)
    # It waited without writing to the file (created empty and private, to be a database).
    assert database.stat().st_size == 0


async def test_opening_again_keeps_the_data_and_migrates_nothing(tmp_path: Path) -> None:
    first = await Store.open(sqlite_url(tmp_path))
    session = await first.chats.create_session(title="kept")
    await first.aclose()
    second = await Store.open(sqlite_url(tmp_path))
    try:
        assert await second.chats.get_session(session.id) == session
    finally:
        await second.aclose()


async def test_an_older_build_opens_a_database_a_newer_one_migrated(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A rollback: the newer build's revision is unknown here. The older build runs on the
    # database as it is (migrations only add), and says so, instead of failing to start.
    store = await Store.open(sqlite_url(tmp_path))
    session = await store.chats.create_session(title="made by the newer build")
    async with store.engine.begin() as connection:
        await connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    await store.aclose()
    with caplog.at_level(logging.WARNING, logger="modelway.store"):
        older = await Store.open(sqlite_url(tmp_path))
    try:
        assert await current_revision(older.engine) == "9999"  # left as the newer build made it
        assert await older.chats.get_session(session.id) == session
    finally:
        await older.aclose()
    assert any("newer than this gateway's newest" in message for message in caplog.messages)


async def test_a_database_behind_head_is_upgraded_on_open(tmp_path: Path) -> None:
    store = await Store.open(sqlite_url(tmp_path))
    async with store.engine.begin() as connection:

        def downgrade_to_base(sync: object) -> None:
            config = alembic_config()
            config.attributes["connection"] = sync
            command.downgrade(config, "base")

        await connection.run_sync(downgrade_to_base)
    assert await current_revision(store.engine) is None
    await store.aclose()
    reopened = await Store.open(sqlite_url(tmp_path))
    try:
        assert await current_revision(reopened.engine) == head_revision()
        assert await schema_differences(reopened) == []
    finally:
        await reopened.aclose()


def test_the_head_read_from_the_version_files_is_alembics_head() -> None:
    assert head_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()


async def test_current_revision_reads_what_alembic_reads(tmp_path: Path) -> None:
    store = await Store.open(sqlite_url(tmp_path))
    try:
        async with store.engine.connect() as connection:
            by_alembic = await connection.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )
        assert await current_revision(store.engine) == by_alembic == head_revision()
    finally:
        await store.aclose()


# A fresh interpreter: this test module has imported Alembic already.
_OPEN_AT_HEAD = """
import asyncio, sys
from modelway.store import Store
store = asyncio.run(Store.open(sys.argv[1]))
asyncio.run(store.aclose())
print("alembic imported" if "alembic" in sys.modules else "alembic not imported")
"""


def test_opening_a_database_already_at_head_does_not_import_alembic(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    first = subprocess.run(
        [sys.executable, "-c", _OPEN_AT_HEAD, url], capture_output=True, text=True, check=True
    )
    assert first.stdout.strip() == "alembic imported"  # an empty file: migrated
    again = subprocess.run(
        [sys.executable, "-c", _OPEN_AT_HEAD, url], capture_output=True, text=True, check=True
    )
    assert again.stdout.strip() == "alembic not imported"


async def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    store = await Store.open(sqlite_url(tmp_path))
    try:
        async with store.engine.connect() as connection:
            mode = (await connection.execute(text("PRAGMA journal_mode"))).scalar()
            timeout = (await connection.execute(text("PRAGMA busy_timeout"))).scalar()
        assert mode == "wal"
        assert timeout == 5000
    finally:
        await store.aclose()


async def test_ping_says_whether_the_database_answers(tmp_path: Path) -> None:
    store = await Store.open(sqlite_url(tmp_path))
    assert await store.ping()
    await store.aclose()


def test_without_database_url_the_store_is_a_sqlite_file_in_the_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "nested" / "data"
    url = database_url({"MODELWAY_DATA_DIR": str(data)})
    assert url == f"sqlite+aiosqlite:///{data.resolve()}/modelway.db"
    assert data.is_dir()
    assert data.stat().st_mode & 0o077 == 0  # private: it holds provider keys and chats


@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
def test_postgres_urls_get_the_async_driver(scheme: str) -> None:
    url = database_url({"DATABASE_URL": f"{scheme}://app:s3cret@db:5432/modelway"})
    assert url == "postgresql+asyncpg://app:s3cret@db:5432/modelway"


def test_a_database_the_store_does_not_run_on_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="PostgreSQL or SQLite, not 'mysql'"):
        database_url({"DATABASE_URL": "mysql://app:s3cret@db/modelway"})


def test_libpq_sslmode_becomes_asyncpgs_ssl() -> None:
    url = database_url({"DATABASE_URL": "postgres://app@db/modelway?sslmode=require"})
    assert url == "postgresql+asyncpg://app@db/modelway?ssl=require"


def test_a_url_shown_to_people_hides_the_password() -> None:
    shown = display_url("postgresql+asyncpg://app:s3cret@db:5432/modelway")
    assert "s3cret" not in shown
    assert shown == "postgresql+asyncpg://app:***@db:5432/modelway"


def test_db_upgrade_migrates_the_data_dirs_database_and_says_where_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("MODELWAY_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert f"{tmp_path / 'data' / 'modelway.db'}" in result.output
    assert f"revision {head_revision()}" in result.output
    assert (tmp_path / "data" / "modelway.db").exists()


async def test_usage_records_written_before_cache_write_tokens_read_back_with_none(
    tmp_path: Path,
) -> None:
    store = await Store.open(sqlite_url(tmp_path))
    async with store.engine.begin() as connection:

        def downgrade_to_0001(sync: object) -> None:
            config = alembic_config()
            config.attributes["connection"] = sync
            command.downgrade(config, "0001")

        await connection.run_sync(downgrade_to_0001)
        await connection.execute(
            text(
                "INSERT INTO usage_records (id, request_id, time, day, status, prompt_tokens,"
                " completion_tokens, cached_tokens, usage_estimated, cost_usd, latency_ms,"
                " stream, retries, cache_hit) VALUES ('r1', 'q1', 0, '1970-01-01', 200, 1210,"
                " 5, 1000, false, 0.001, 1.0, false, 0, false)"
            )
        )
    await store.aclose()
    reopened = await Store.open(sqlite_url(tmp_path))
    try:
        (record,) = await reopened.usage.recent()
        assert (record.prompt_tokens, record.cached_tokens) == (1210, 1000)
        assert record.cache_write_tokens == 0
    finally:
        await reopened.aclose()


async def test_migration_0005_rolls_up_the_records_already_stored(tmp_path: Path) -> None:
    from modelway.store.dashboard import UsageFilters
    from tests.unit.test_store_rollups import START, assert_matches, traffic

    # Revision 0004 has no ``unpriced``: the records it held read back priced.
    records = [msgspec.structs.replace(record, unpriced=False) for record in traffic(700, seed=21)]
    await rolled_up_by_the_migration(sqlite_url(tmp_path), records)
    reopened = await Store.open(sqlite_url(tmp_path))
    try:
        for dimensions in ({}, {"key_id": "k2"}, {"model": "m1", "team": "t1"}):
            filters = UsageFilters(start=START, end=START + 3 * 86_400, **dimensions)
            chosen = [
                record
                for record in records
                if all(getattr(record, name) == value for name, value in dimensions.items())
            ]
            assert_matches(await reopened.dashboard.totals(filters), chosen)
    finally:
        await reopened.aclose()


#: Usage record fields added after revision 0004.
_AFTER_0004 = frozenset({"cost_saved_usd", "unpriced"})


def _at_0004(record: Any) -> dict[str, Any]:
    """A usage record's columns as revision 0004 had them."""
    row: dict[str, Any] = msgspec.to_builtins(record)
    return {name: value for name, value in row.items() if name not in _AFTER_0004}


async def rolled_up_by_the_migration(url: str, records: list[Any]) -> None:
    """Store ``records`` at revision 0004 (no roll-ups), then migrate to head."""
    store = await Store.open(url)
    async with store.engine.begin() as connection:

        def downgrade_to_0004(sync: object) -> None:
            config = alembic_config()
            config.attributes["connection"] = sync
            command.downgrade(config, "0004")

        await connection.run_sync(downgrade_to_0004)
        await connection.execute(
            usage_records.insert(),
            [{**_at_0004(record), "day": "2025-03-01"} for record in records],
        )
    await store.aclose()
    migrated = await Store.open(url)
    await migrated.aclose()


async def test_migration_0007_gives_usage_records_already_stored_no_saved_cost(
    tmp_path: Path,
) -> None:
    from modelway.store.records import UsageRecord

    store = await Store.open(sqlite_url(tmp_path))
    async with store.engine.begin() as connection:

        def downgrade_to_0006(sync: object) -> None:
            config = alembic_config()
            config.attributes["connection"] = sync
            command.downgrade(config, "0006")

        await connection.run_sync(downgrade_to_0006)
        assert "cost_saved_usd" not in await connection.run_sync(
            lambda sync: {c["name"] for c in inspect(sync).get_columns("usage_records")}
        )
        old = UsageRecord(request_id="before-0007", time=1.0, cost_usd=0.5)
        await connection.execute(usage_records.insert(), [{**_at_0004(old), "day": "1970-01-01"}])
    await store.aclose()
    reopened = await Store.open(sqlite_url(tmp_path))
    try:
        stored = await reopened.usage.get(old.id)
        assert stored is not None and stored.cost_saved_usd == 0.0 and stored.cost_usd == 0.5
    finally:
        await reopened.aclose()


async def test_migration_0011_marks_records_already_stored_priced_and_counts_new_unpriced_ones(
    tmp_path: Path,
) -> None:
    from modelway.store.dashboard import UsageFilters
    from modelway.store.records import UsageRecord

    store = await Store.open(sqlite_url(tmp_path))
    async with store.engine.begin() as connection:

        def downgrade_to_0010(sync: object) -> None:
            config = alembic_config()
            config.attributes["connection"] = sync
            command.downgrade(config, "0010")

        await connection.run_sync(downgrade_to_0010)
        for table in ("usage_records", "usage_hourly"):
            assert "unpriced" not in await connection.run_sync(
                lambda sync, name=table: {c["name"] for c in inspect(sync).get_columns(name)}
            )
        old = UsageRecord(request_id="before-0011", time=3600.0, cost_usd=0.0)
        row = {**msgspec.to_builtins(old), "day": "1970-01-01"}
        del row["unpriced"]
        await connection.execute(usage_records.insert(), [row])
    await store.aclose()
    reopened = await Store.open(sqlite_url(tmp_path))
    try:
        stored = await reopened.usage.get(old.id)
        assert stored is not None and stored.unpriced is False
        new = UsageRecord(request_id="after-0011", time=3600.0, unpriced=True)
        await reopened.usage.insert_many([new])
        fetched = await reopened.usage.get(new.id)
        assert fetched is not None and fetched.unpriced is True
        totals = await reopened.dashboard.totals(UsageFilters(start=0.0, end=7200.0))
        assert (totals.requests, totals.unpriced_requests) == (1, 1)  # the old one: no roll-up
        (row_summary,) = await reopened.usage.summary(by="day")
        assert (row_summary.requests, row_summary.unpriced_requests) == (2, 1)
    finally:
        await reopened.aclose()
