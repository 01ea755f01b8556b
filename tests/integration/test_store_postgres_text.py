"""What only PostgreSQL does to the store: text that cannot hold NUL, and row locks.

Callers' strings with NUL in them, on PostgreSQL, whose text cannot hold one.

A model name, a key's name or a filter is the caller's, and JSON lets it hold ``\\u0000``.
asyncpg refused to send such a string, so the statement failed: a 500 on the admin API,
and a usage record that could never be written, retried for ever with every record
batched beside it. The store now writes U+FFFD in its place.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from modelway.errors import BadRequest
from modelway.store import Store, UsageRecord, UsageWriter, database_url
from modelway.store.tables import metadata
from tests.polling import eventually
from tests.postgres import PostgresServer, running_postgres
from tests.unit.test_store_keys import cheap_argon2  # noqa: F401  (autouse)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
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


async def test_a_keys_owners_with_nul_are_stored_with_a_replacement_character(
    store: Store,
) -> None:
    with pytest.raises(BadRequest, match="control"):  # a name is shown in request lines
        await store.keys.create("a\x00b")
    with pytest.raises(BadRequest, match="control"):  # a team's name too
        await store.keys.create("ab", owner_team="t\x00")
    record, _ = await store.keys.create("ab", owner_user="\x00", owner_team="t")
    stored = await store.keys.get(record.id)
    assert stored is not None
    assert (stored.name, stored.owner_user, stored.owner_team) == ("ab", "\ufffd", "t")


async def test_filters_with_nul_match_nothing(store: Store) -> None:
    await store.usage.insert_many([UsageRecord(request_id="r", time=1.0, model="m")])
    assert await store.keys.get("\x00") is None
    assert await store.keys.revoke("\x00") is False
    assert await store.usage.recent(model="\x00") == []
    assert await store.usage.recent(key_id="\x00") == []
    assert await store.usage.summary(key_id="\x00") == []


async def test_a_usage_record_with_nul_is_written_with_those_beside_it(
    store: Store, tmp_path: Path
) -> None:
    writer = UsageWriter(store, tmp_path / "spill.jsonl", flush_interval=0.01)
    writer.start()
    try:
        writer.record(UsageRecord(request_id="poisoned", time=1.0, model="e\x00cho", alias="a\x00"))
        writer.record(UsageRecord(request_id="beside", time=2.0, model="echo"))

        async def both() -> list[UsageRecord] | None:
            found = await store.usage.recent(limit=10)
            return found if len(found) == 2 else None

        found = await eventually(both)
    finally:
        await writer.aclose()
    stored = {record.request_id: record for record in found}
    assert (stored["poisoned"].model, stored["poisoned"].alias) == ("e\ufffdcho", "a\ufffd")
    assert not (tmp_path / "spill.jsonl").exists()


async def test_a_key_for_an_account_being_deleted_waits_for_the_deletion_then_is_refused(
    store: Store,
) -> None:
    # Sign-up's key and the account's deletion, at once: the key's insert holds a share
    # lock on the account's row, so it waits for the deletion to commit and finds no
    # account, instead of slipping in after the deletion revoked the keys it could see.
    from sqlalchemy import delete

    from modelway.errors import NotFound
    from modelway.store.tables import users

    user = await store.users.register("lee@example.com", "correct horse")
    async with store.engine.begin() as deleting:
        await deleting.execute(delete(users).where(users.c.id == user.id))
        creating = asyncio.create_task(
            store.keys.create("laptop", owner_user="lee@example.com", account=user.id)
        )

        async def waiting_on_a_lock() -> bool:
            async with store.engine.connect() as watcher:
                locks = await watcher.execute(
                    text("SELECT count(*) FROM pg_locks WHERE NOT granted")
                )
                return bool(locks.scalar())

        await eventually(waiting_on_a_lock)
    with pytest.raises(NotFound):
        await creating
    assert await store.keys.list() == []
