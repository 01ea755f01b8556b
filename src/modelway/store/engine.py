"""SQLAlchemy Core on an asyncio driver, without ``sqlalchemy.ext.asyncio``.

``sqlalchemy.ext.asyncio`` imports the ORM with it (its session module), ~7 MB of every
worker's resident memory for a gateway that only ever uses Core. ``Database`` and
``Connection`` are the part of its ``AsyncEngine``/``AsyncConnection`` the store uses —
connect, begin, execute, commit, run_sync, the raw driver connection, dispose — built
the way SQLAlchemy builds them: a Core ``Engine`` created for an async driver
(``aiosqlite``, ``asyncpg``) whose calls run inside ``greenlet_spawn``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import URL, Engine, create_engine
from sqlalchemy.engine import Connection as SyncConnection
from sqlalchemy.engine import CursorResult, Dialect
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql.base import Executable
from sqlalchemy.util.concurrency import greenlet_spawn
from sqlalchemy.util.typing import TupleAny

T = TypeVar("T")


class Connection:
    """One pooled connection; every call runs the Core connection's in a greenlet."""

    __slots__ = ("sync_connection",)

    def __init__(self, sync_connection: SyncConnection) -> None:
        self.sync_connection = sync_connection

    @property
    def dialect(self) -> Dialect:
        return self.sync_connection.dialect

    async def execute(
        self,
        statement: Executable,
        parameters: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    ) -> CursorResult[*TupleAny]:
        """Run a statement; the rows are already fetched (the drivers buffer them)."""
        result: CursorResult[*TupleAny] = await greenlet_spawn(
            self.sync_connection.execute, statement, parameters, _require_await=True
        )
        return result

    async def commit(self) -> None:
        await greenlet_spawn(self.sync_connection.commit)

    async def run_sync(self, function: Callable[..., T], *args: Any) -> T:
        """``function(sync_connection, *args)`` where blocking Core calls are allowed."""
        return await greenlet_spawn(function, self.sync_connection, *args)

    async def invalidate(self) -> None:
        """Discard the connection: the pool opens a fresh one instead of handing it out."""
        await greenlet_spawn(self.sync_connection.invalidate)

    async def get_raw_connection(self) -> PoolProxiedConnection:
        """The pooled DBAPI connection (``.driver_connection`` is the driver's own)."""
        raw: PoolProxiedConnection = await greenlet_spawn(
            getattr, self.sync_connection, "connection"
        )
        return raw


class Database:
    """A pool of async-driver connections: ``async with database.connect() as c``."""

    def __init__(self, url: str | URL, **options: Any) -> None:
        self.sync_engine: Engine = create_engine(url, _is_async=True, **options)

    @property
    def url(self) -> URL:
        return self.sync_engine.url

    @property
    def dialect(self) -> Dialect:
        return self.sync_engine.dialect

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[Connection]:
        """A connection from the pool, returned to it (rolled back if unfinished) after."""
        sync_connection = await greenlet_spawn(self.sync_engine.connect)
        try:
            yield Connection(sync_connection)
        finally:
            await greenlet_spawn(sync_connection.close)

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[Connection]:
        """A connection in a transaction: committed at the end, rolled back on an error."""
        async with self.connect() as connection:
            transaction = await greenlet_spawn(connection.sync_connection.begin)
            try:
                yield connection
            except BaseException:
                await greenlet_spawn(transaction.rollback)
                raise
            await greenlet_spawn(transaction.commit)

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await greenlet_spawn(self.sync_engine.dispose)


def nul_replaced(row: Any) -> Any:
    """``row``'s strings (a row of parameters) with U+FFFD for each NUL.

    PostgreSQL text cannot hold NUL (asyncpg refuses to send one, failing the statement),
    and a caller's string may: a model name, a key's name, a filter.
    """
    if isinstance(row, dict):
        return {name: _text(value) for name, value in row.items()}
    if isinstance(row, list | tuple):
        return type(row)(_text(value) for value in row)
    return row


def _text(value: Any) -> Any:
    return value.replace("\x00", "\ufffd") if isinstance(value, str) else value
