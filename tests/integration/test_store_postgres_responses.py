"""The stored-responses specifications (tests/unit/test_store_responses.py) on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import text

from modelway.store import Store, database_url
from modelway.store.tables import metadata
from tests.postgres import PostgresServer, running_postgres
from tests.unit.test_store_responses import *  # noqa: F403

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
