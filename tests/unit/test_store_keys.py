"""Virtual keys: shown once, stored as an Argon2id hash plus a lookup prefix, revocable.

tests/integration/test_store_postgres.py runs these same tests against PostgreSQL.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from modelway.errors import BadRequest
from modelway.store import Store, argon2id, database_url
from modelway.store.tables import api_keys


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2id with minimal cost: the same algorithm and format, milliseconds per hash."""
    monkeypatch.setattr(
        argon2id, "_HASHER", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(database_url({"MODELWAY_DATA_DIR": str(tmp_path)}))
    yield store
    await store.aclose()


async def test_a_key_is_mw_and_at_least_32_url_safe_characters(store: Store) -> None:
    record, plaintext = await store.keys.create("ci")
    assert re.fullmatch(r"mw-[A-Za-z0-9_-]{32,}", plaintext)
    assert record.prefix == plaintext[3:11]


async def test_only_an_argon2id_hash_and_the_prefix_are_stored(store: Store) -> None:
    record, plaintext = await store.keys.create("ci")
    async with store.engine.connect() as connection:
        row = (await connection.execute(select(api_keys))).one()
    stored = " ".join(str(value) for value in row)
    assert plaintext not in stored
    assert row.key_hash.startswith("$argon2id$")
    assert row.prefix == record.prefix


async def test_a_key_keeps_every_setting(store: Store) -> None:
    expiry = time.time() + 3600
    record, _ = await store.keys.create(
        "team-a",
        owner_user="alice",
        owner_team="research",
        models=["gpt-4o*", "anthropic/*"],
        rpm=60,
        tpm=100_000,
        budget_usd=25.5,
        budget_tokens=1_000_000,
        budget_period="day",
        expires_at=expiry,
        metadata={"cost_center": "42", "tags": ["a", "b"]},
    )
    read = await store.keys.get(record.id)
    assert read == record
    assert read is not None
    assert read.models == ("gpt-4o*", "anthropic/*")
    assert (read.rpm, read.tpm, read.budget_usd, read.budget_tokens) == (
        60,
        100_000,
        25.5,
        1_000_000,
    )
    assert (read.budget_period, read.expires_at) == ("day", expiry)
    assert read.metadata == {"cost_center": "42", "tags": ["a", "b"]}
    assert (read.owner_user, read.owner_team) == ("alice", "research")
    assert read.revoked_at is None and not read.revoked


async def test_a_keys_repr_shows_neither_the_key_nor_its_hash(store: Store) -> None:
    record, plaintext = await store.keys.create("ci")
    [candidate] = await store.keys.find_candidates(record.prefix)
    assert plaintext not in repr(record)
    assert "argon2" not in repr(record)
    assert candidate.key_hash not in repr(candidate)


async def test_keys_are_listed_newest_first(store: Store) -> None:
    first, _ = await store.keys.create("first")
    second, _ = await store.keys.create("second")
    assert [k.id for k in await store.keys.list()] == [second.id, first.id]


async def test_revoking_a_key_marks_it_and_hides_it_from_the_active_list(store: Store) -> None:
    record, _ = await store.keys.create("ci")
    assert await store.keys.revoke(record.id) is True
    revoked = await store.keys.get(record.id)
    assert revoked is not None and revoked.revoked
    assert await store.keys.list(include_revoked=False) == []
    assert [k.id for k in await store.keys.list()] == [record.id]


async def test_revoking_twice_or_an_unknown_key_reports_false(store: Store) -> None:
    record, _ = await store.keys.create("ci")
    await store.keys.revoke(record.id)
    assert await store.keys.revoke(record.id) is False
    assert await store.keys.revoke("no-such-key") is False


async def test_an_unknown_key_id_reads_as_none(store: Store) -> None:
    assert await store.keys.get("no-such-key") is None


async def test_candidates_are_the_keys_sharing_a_prefix(store: Store) -> None:
    record, _ = await store.keys.create("ci")
    [candidate] = await store.keys.find_candidates(record.prefix)
    assert candidate.record == record
    assert await store.keys.find_candidates("zzzzzzzz") == []


@pytest.mark.parametrize(
    ("settings", "complaint"),
    [
        ({"name": " "}, "name"),
        ({"name": "n" * 201}, "at most 200 characters"),
        ({"name": "laptop\n2099-01-01 INFO forged"}, "control"),
        ({"name": "x", "budget_period": "week"}, "period"),
        ({"name": "x", "rpm": -1}, "rpm"),
        ({"name": "x", "budget_usd": -1.0}, "budget_usd"),
    ],
)
async def test_impossible_settings_are_a_bad_request(
    store: Store, settings: dict[str, object], complaint: str
) -> None:
    with pytest.raises(BadRequest, match=complaint):
        await store.keys.create(**settings)  # type: ignore[arg-type]
