"""The ``Store``: one async engine, migrated at open, and a repository per table group."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable
from typing import Any, TypeVar

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from modelway.errors import StoreUnavailable
from modelway.outages import Outage, transient
from modelway.store.admin_sessions import AdminSessionRepository
from modelway.store.cache_clears import CacheClearRepository
from modelway.store.chats import ChatRepository
from modelway.store.connections import ConnectionRepository
from modelway.store.dashboard import DashboardQueries
from modelway.store.engine import Database, nul_replaced
from modelway.store.keys import KeyRepository
from modelway.store.location import display_url, sqlite_path
from modelway.store.migrate import upgrade_to_head
from modelway.store.responses import ResponseRepository
from modelway.store.teams import TeamRepository
from modelway.store.usage import UsageRepository
from modelway.store.users import UserRepository

T = TypeVar("T")
log = logging.getLogger("modelway.store")
# aiosqlite logs every statement with its parameters at DEBUG; those include saved
# provider keys, so it never logs below INFO whatever the root level is.
logging.getLogger("aiosqlite").setLevel(logging.INFO)

#: How long SQLite waits for another writer before giving up (milliseconds).
SQLITE_BUSY_TIMEOUT_MS = 5000
#: How long opening a PostgreSQL connection may take (seconds).
CONNECT_TIMEOUT = 5.0
#: How long a readiness ping may take (seconds).
PING_TIMEOUT = 2.0
#: What the gateway does while the store is down (the outage's warning says it).
WHILE_DOWN = "usage records wait in memory and the spill file, keys already verified keep working"


class Store:
    """The gateway's persistent state; open with ``await Store.open(url)``."""

    def __init__(self, engine: Database) -> None:
        self.engine = engine
        self.keys = KeyRepository(engine)
        self.users = UserRepository(engine)
        self.usage = UsageRepository(engine)
        self.dashboard = DashboardQueries(engine)
        self.chats = ChatRepository(engine)
        self.connections = ConnectionRepository(engine)
        self.responses = ResponseRepository(engine)
        self.teams = TeamRepository(engine)
        self.admin_sessions = AdminSessionRepository(engine)
        self.cache_clears = CacheClearRepository(engine)
        #: Whether the store is down as this process last saw it; its users report here.
        self.outage = Outage("store", WHILE_DOWN, logger=log)

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True) -> Store:
        """Connect to ``url`` and (unless told not to) apply every pending migration."""
        engine = create_engine(url)
        try:
            if migrate:
                await upgrade_to_head(engine)
        except BaseException:
            await engine.dispose()
            raise
        log.info("store open", extra={"database": display_url(url)})
        return cls(engine)

    @property
    def display_url(self) -> str:
        """Where the data lives, password masked."""
        return display_url(self.engine.url)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    async def reading(self, query: Awaitable[T]) -> T:
        """``query``'s answer; ``StoreUnavailable`` (503) when the store cannot give it,
        the outage reported once (``outage``), anything else logged with its traceback."""
        try:
            answer = await query
        except Exception as error:
            if transient(error):
                self.outage.failed(error)
            else:
                log.warning("a store read failed", exc_info=True)
            raise StoreUnavailable(
                "the gateway's store is unreachable; try again shortly"
            ) from None
        return answer

    async def ping(self) -> bool:
        """Whether the database answers a trivial query within ``PING_TIMEOUT`` seconds."""
        try:
            async with asyncio.timeout(PING_TIMEOUT), self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as error:  # any failure means "unreachable"; the reason goes to the log
            if transient(error):
                self.outage.failed(error)
            else:
                log.warning("store ping failed", exc_info=True)
            return False
        self.outage.succeeded()
        return True

    async def aclose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


def create_engine(url: str) -> Database:
    """An async engine tuned for the backend: a busy timeout for SQLite connections.

    WAL mode is set once, at start, under the migration lock (``upgrade_to_head``): it
    stays in the file, and two connections switching to it at once fail instead of waiting.
    """
    parsed = make_url(url)
    options: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_path(parsed)
        if path is None:
            # In-memory: every connection would otherwise see its own empty database.
            options["poolclass"] = StaticPool
        elif path.parent.is_dir():
            # SQLite would create it 0644 (its journals take the same mode): it holds
            # provider keys and chat history, so only this user may read it.
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        options["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        engine = Database(parsed, **options)
        event.listen(engine.sync_engine, "connect", _configure_sqlite)
        return engine
    if parsed.get_backend_name() == "postgresql":
        # Connections die when PostgreSQL restarts; pre-ping replaces them instead of failing.
        options["pool_pre_ping"] = True
        options["connect_args"] = {"timeout": CONNECT_TIMEOUT}
        engine = Database(parsed, **options)
        event.listen(engine.sync_engine, "before_cursor_execute", _without_nul, retval=True)
        return engine
    return Database(parsed, **options)


def _without_nul(
    connection: Any,
    cursor: Any,
    statement: str,
    parameters: Any,
    context: Any,
    executemany: bool,
) -> tuple[str, Any]:
    """Every statement's parameters as PostgreSQL text can hold them (``nul_replaced``)."""
    if executemany:
        return statement, [nul_replaced(row) for row in parameters]
    return statement, nul_replaced(parameters)


def _configure_sqlite(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # Writers in several workers queue for the write lock instead of failing at once.
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
