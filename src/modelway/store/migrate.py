"""Run the package's Alembic migrations on an async engine, one process at a time.

Gateway workers start together. "Read the revision, migrate if behind" runs under a
lock (a lock file beside a SQLite database, an advisory lock on PostgreSQL), so one
starter migrates and the others wait, find the work done, and start.

Alembic (with Mako, about 10 MB resident) is imported only when the database is behind
the newest revision. The common start, a database already at head, costs one plain
query (on SQLite, under the lock, after a WAL pragma): the head is read from the
version files and the database's revision from the ``alembic_version`` table, the
same table and column Alembic reads.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import fcntl
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from modelway.store.engine import Connection as AsyncConnection
from modelway.store.engine import Database
from modelway.store.location import display_url, sqlite_path

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

log = logging.getLogger("modelway.store")
MIGRATIONS = Path(__file__).parent / "migrations"
#: Alembic's default version table (``env.py`` does not rename it).
VERSION_TABLE = "alembic_version"
#: Arbitrary constant naming the PostgreSQL advisory lock that serialises migrations.
PG_MIGRATION_LOCK = 0x6D6F64656C776179  # "modelway"
#: How long a starter waits for another process's migration (seconds): generous, as
#: batch mode rebuilding a large SQLite table can take minutes.
MIGRATION_LOCK_TIMEOUT = 300.0
#: How often a waiting starter tries the lock again (seconds).
_LOCK_RETRY_INTERVAL = 0.05


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


@functools.cache
def known_revisions() -> frozenset[str]:
    """Every revision the package ships."""
    found: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        for statement in ast.parse(path.read_text(), str(path)).body:
            target, value = _assignment(statement)
            if target == "revision" and isinstance(value, str):
                found.add(value)
    return frozenset(found)


def _ahead(revision: str | None) -> bool:
    """Whether the database is at a revision this package does not know: a newer build
    migrated it, and this one is the older build of a rollback (or of a rolling update's
    restarted pod). It runs on it as it is, said once: migrations only add tables and
    columns (docs/store.md), so an older build's queries still work there."""
    if revision is None or revision in known_revisions():
        return False
    log.warning(
        "the store is at revision %s, newer than this gateway's newest (%s): running on it "
        "unchanged, as an older build may (migrations only add); upgrade this gateway",
        revision,
        head_revision(),
        extra={"revision": revision, "known_head": head_revision()},
    )
    return True


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


async def upgrade_to_head(
    engine: Database, *, lock_timeout: float = MIGRATION_LOCK_TIMEOUT
) -> None:
    """Apply every pending migration; concurrent starters wait for the first one to finish.

    Raises ``TimeoutError`` when another process holds the migration lock longer than
    ``lock_timeout`` seconds.
    """
    database = sqlite_path(engine.url)
    if database is not None:
        # Every starter locks before its first statement: two connections turning a new file
        # to WAL both read it, then both ask to write, and SQLite fails the second at once
        # with "database is locked" (waiting would deadlock), whatever the busy timeout.
        lock_file = database.with_name(database.name + ".migrate.lock")
        async with _locked_file(lock_file, lock_timeout, str(database)):
            async with engine.connect() as connection:
                await connection.execute(text("PRAGMA journal_mode=WAL"))  # kept in the file
            async with engine.begin() as connection:
                await connection.run_sync(_upgrade_if_behind)
        return
    current = await current_revision(engine)
    if current == head_revision() or _ahead(current):
        return  # the common start: nothing to do, no lock to take, Alembic not imported
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await _take_postgres_lock(connection, lock_timeout, display_url(engine.url))
        await connection.run_sync(_upgrade_if_behind)


async def current_revision(engine: Database) -> str | None:
    """The revision the database is at (None when it was never migrated)."""
    async with engine.connect() as connection:
        return await connection.run_sync(_current)


def _upgrade_if_behind(connection: Connection) -> None:
    # Read again under the lock: a starter that waited finds the work done, and a
    # process that migrates nothing never imports Alembic.
    current = _current(connection)
    if current != head_revision() and not _ahead(current):
        _upgrade(connection)


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
async def _locked_file(path: Path, lock_timeout: float, database: str) -> AsyncIterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the block."""
    # flock rather than SQLite's own locks: taking it touches nothing SQLite reads, and
    # the kernel drops it when its holder dies, so a crashed starter never blocks the next.
    handle = await asyncio.to_thread(path.open, "a")

    async def take() -> bool:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    try:
        await _wait_for(take, lock_timeout, f"{database} (lock file {path})")
        yield
    finally:
        handle.close()  # releases the lock


async def _take_postgres_lock(
    connection: AsyncConnection, lock_timeout: float, database: str
) -> None:
    """Take the migration advisory lock until ``connection``'s transaction ends.

    Commit, rollback or a dropped connection releases it: no pooled connection is ever
    left holding it.
    """

    async def take() -> bool:
        statement = text(f"SELECT pg_try_advisory_xact_lock({PG_MIGRATION_LOCK})")
        return bool((await connection.execute(statement)).scalar())

    await _wait_for(take, lock_timeout, f"{database} (advisory lock {PG_MIGRATION_LOCK:#x})")


async def _wait_for(take: Callable[[], Awaitable[bool]], lock_timeout: float, what: str) -> None:
    """Try ``take`` until it succeeds; ``TimeoutError`` naming ``what`` after ``lock_timeout`` s."""
    deadline = time.monotonic() + lock_timeout
    while not await take():
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"gave up after {lock_timeout:g} s waiting for another modelway process to finish "
                f"migrating {what}; is a `modelway db upgrade` or gateway start still running?"
            )
        await asyncio.sleep(_LOCK_RETRY_INTERVAL)
