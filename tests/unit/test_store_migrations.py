"""The schema comes from migrations, and the migrations produce exactly the ORM metadata."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from typer.testing import CliRunner

from modelway.cli import app
from modelway.store import Store, database_url, display_url
from modelway.store.migrate import current_revision, head_revision
from modelway.store.tables import metadata


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


async def test_workers_starting_together_on_an_empty_file_migrate_it_once(
    tmp_path: Path,
) -> None:
    stores = await asyncio.gather(*(Store.open(sqlite_url(tmp_path)) for _ in range(4)))
    for opened in stores:
        assert await current_revision(opened.engine) == head_revision()
        await opened.aclose()


async def test_opening_again_keeps_the_data_and_migrates_nothing(tmp_path: Path) -> None:
    first = await Store.open(sqlite_url(tmp_path))
    session = await first.chats.create_session(title="kept")
    await first.aclose()
    second = await Store.open(sqlite_url(tmp_path))
    try:
        assert await second.chats.get_session(session.id) == session
    finally:
        await second.aclose()


async def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    store = await Store.open(sqlite_url(tmp_path))
    try:
        async with store.engine.connect() as connection:
            mode = (await connection.exec_driver_sql("PRAGMA journal_mode")).scalar()
            timeout = (await connection.exec_driver_sql("PRAGMA busy_timeout")).scalar()
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
