"""Run the package's Alembic migrations on an async engine, one process at a time.

Alembic (with Mako, about 10 MB resident) is imported only when the database is behind
the newest revision. The common start, a database already at head, costs one plain
query: the head is read from the version files and the database's revision from the
``alembic_version`` table, the same table and column Alembic reads.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import fcntl
import functools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from modelway.store.engine import Database
from modelway.store.location import sqlite_path

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

MIGRATIONS = Path(__file__).parent / "migrations"
#: Alembic's default version table (``env.py`` does not rename it).
VERSION_TABLE = "alembic_version"
#: Arbitrary constant naming the PostgreSQL advisory lock that serialises migrations.
_PG_MIGRATION_LOCK = 0x6D6F64656C776179  # "modelway"


def alembic_config() -> AlembicConfig:
    """An Alembic config pointing at the migrations shipped in this package."""
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


@functools.cache
def head_revision() -> str | None:
    """The newest revision the package ships.

    Read from the version files' ``revision``/``down_revision`` assignments; a history
    that is not one straight line (a branch, a merge) is left to Alembic to resolve.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in sorted((MIGRATIONS / "versions").glob("*.py")):
        for statement in ast.parse(path.read_text(), str(path)).body:
            target, value = _assignment(statement)
            if target == "revision" and isinstance(value, str):
                revisions.add(value)
            elif target == "down_revision" and isinstance(value, str):
                parents.add(value)
            elif target == "down_revision" and value is not None:
                return _alembic_head()  # a merge revision: several parents
    heads = revisions - parents
    if len(heads) == 1:
        return heads.pop()
    return _alembic_head() if revisions else None


def _assignment(statement: ast.stmt) -> tuple[str | None, object]:
    """``name = literal`` or ``name: type = literal`` at module level, else ``(None, None)``."""
    if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
        target, value = statement.targets[0], statement.value
    elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
        target, value = statement.target, statement.value
    else:
        return None, None
    if not isinstance(target, ast.Name):
        return None, None
    try:
        return target.id, ast.literal_eval(value)
    except ValueError:
        return None, None


def _alembic_head() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def upgrade_to_head(engine: Database) -> None:
    """Apply every pending migration; concurrent workers wait for the first one to finish."""
    if await current_revision(engine) == head_revision():
        return  # the common start: nothing to do, no lock to take, Alembic not imported
    async with _migration_lock(engine), engine.begin() as connection:
        await connection.run_sync(_upgrade)


async def current_revision(engine: Database) -> str | None:
    """The revision the database is at (None when it was never migrated)."""
    async with engine.connect() as connection:
        return await connection.run_sync(_current)


def _upgrade(connection: Connection) -> None:
    from alembic import command

    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _current(connection: Connection) -> str | None:
    # What Alembic's MigrationContext.get_current_revision reads, without importing Alembic.
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    versions = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars()
    found = list(versions)
    if len(found) > 1:
        # Several heads (a branched history): Alembic's own check refuses it, in its words.
        from alembic.runtime.migration import MigrationContext

        return MigrationContext.configure(connection).get_current_revision()
    return found[0] if found else None


@contextlib.asynccontextmanager
async def _migration_lock(engine: Database) -> AsyncIterator[None]:
    """Several gateway workers start at once; only one may create the tables."""
    database = sqlite_path(engine.url)
    if database is not None:
        lock_path = database.with_name(database.name + ".migrate.lock")
        handle = await asyncio.to_thread(_locked_file, lock_path)
        try:
            yield
        finally:
            handle.close()
    elif engine.dialect.name == "postgresql":
        async with engine.connect() as connection:
            await connection.execute(text(f"SELECT pg_advisory_lock({_PG_MIGRATION_LOCK})"))
            try:
                yield
            finally:
                await connection.execute(text(f"SELECT pg_advisory_unlock({_PG_MIGRATION_LOCK})"))
                await connection.commit()
    else:
        yield


def _locked_file(path: Path) -> TextIO:
    handle = path.open("a")
    fcntl.flock(handle, fcntl.LOCK_EX)
    return handle
