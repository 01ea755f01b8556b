"""Providers connected at run time: listed without their keys, read back server side.

tests/integration/test_store_postgres.py runs these same tests against PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from modelway.errors import BadRequest
from modelway.store import Store, database_url


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(database_url({"MODELWAY_DATA_DIR": str(tmp_path)}))
    yield store
    await store.aclose()


async def test_a_saved_connection_is_listed_without_its_key(store: Store) -> None:
    await store.connections.save("openai", "sk-secret-key", None)
    [connection] = await store.connections.list()
    assert (connection.provider, connection.base_url, connection.has_key) == (
        "openai",
        None,
        True,
    )
    assert "sk-secret-key" not in repr(connection)


async def test_secrets_give_the_server_the_key_and_base_url(store: Store) -> None:
    await store.connections.save("openai", "sk-secret-key", None)
    await store.connections.save("ollama", None, "http://gpu-box:11434")
    assert await store.connections.secrets() == {
        "openai": ("sk-secret-key", None),
        "ollama": (None, "http://gpu-box:11434"),
    }
    listed = {c.provider: c.has_key for c in await store.connections.list()}
    assert listed == {"ollama": False, "openai": True}


async def test_saving_a_provider_again_replaces_its_connection(store: Store) -> None:
    await store.connections.save("openai", "sk-old", None)
    await store.connections.save("openai", "sk-new", "https://proxy.example/v1")
    assert await store.connections.secrets() == {"openai": ("sk-new", "https://proxy.example/v1")}
    assert len(await store.connections.list()) == 1


async def test_deleting_a_connection_forgets_it(store: Store) -> None:
    await store.connections.save("groq", "gsk-key", None)
    assert await store.connections.delete("groq") is True
    assert await store.connections.delete("groq") is False
    assert await store.connections.list() == []


async def test_a_provider_name_is_required(store: Store) -> None:
    with pytest.raises(BadRequest):
        await store.connections.save("", "key", None)
