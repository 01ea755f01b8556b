"""Self-service accounts: unique emails, Argon2id passwords, one vague refusal.

tests/integration/test_store_postgres.py runs these same tests against PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from modelway.errors import AuthenticationError, BadRequest
from modelway.store import Store, database_url
from modelway.store.tables import users
from tests.unit.test_store_keys import cheap_argon2  # noqa: F401  (autouse)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(database_url({"MODELWAY_DATA_DIR": str(tmp_path)}))
    yield store
    await store.aclose()


async def test_a_registered_user_authenticates_with_their_password(store: Store) -> None:
    user = await store.users.register("Alice@Example.com", "correct horse")
    assert user.email == "alice@example.com"
    assert await store.users.authenticate("alice@example.com ", "correct horse") == user
    assert await store.users.get(user.id) == user


async def test_only_an_argon2id_hash_of_the_password_is_stored(store: Store) -> None:
    await store.users.register("alice@example.com", "correct horse")
    async with store.engine.connect() as connection:
        row = (await connection.execute(select(users))).one()
    assert row.password_hash.startswith("$argon2id$")
    assert "correct horse" not in " ".join(str(value) for value in row)


async def test_an_email_registers_once(store: Store) -> None:
    await store.users.register("alice@example.com", "correct horse")
    with pytest.raises(BadRequest, match="already exists"):
        await store.users.register("ALICE@example.com", "another password")


@pytest.mark.parametrize("email", ["", "alice", "alice@", "@example.com", "a b@example.com"])
async def test_a_malformed_email_is_a_bad_request(store: Store, email: str) -> None:
    with pytest.raises(BadRequest, match="email"):
        await store.users.register(email, "correct horse")


async def test_a_short_password_is_a_bad_request(store: Store) -> None:
    with pytest.raises(BadRequest, match="password"):
        await store.users.register("alice@example.com", "short")


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("alice@example.com", "wrong password"),
        ("nobody@example.com", "correct horse"),
        ("not an email", "correct horse"),
    ],
)
async def test_wrong_credentials_get_one_message_that_reveals_nothing(
    store: Store, email: str, password: str
) -> None:
    await store.users.register("alice@example.com", "correct horse")
    with pytest.raises(AuthenticationError) as refused:
        await store.users.authenticate(email, password)
    assert refused.value.message == "wrong email or password"
