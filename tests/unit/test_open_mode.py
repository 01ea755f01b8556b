"""Open mode (no master key, no virtual key) ends soon after the first key is created,
without a call ever waiting on the store to find out — on an idle gateway too."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from modelway.calls import ANONYMOUS
from modelway.errors import AuthenticationError
from modelway.gateway import auth as auth_module
from modelway.gateway.auth import OPEN_MODE_RECHECK_SECONDS, Authenticator
from modelway.store import Store, database_url
from tests.polling import eventually


class Clock:
    def __init__(self) -> None:
        self.now = 5_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(database_url({"MODELWAY_DATA_DIR": str(tmp_path)}))
    yield store
    await store.aclose()


async def test_the_first_key_ends_open_mode_at_the_next_recheck(store: Store) -> None:
    clock = Clock()
    auth = Authenticator(store, None, clock=clock)
    assert await auth.refresh_open_mode()
    queries: list[bool] = []
    listed = store.keys.list

    async def counted_list(**options: bool) -> object:
        queries.append(True)
        return await listed(**options)

    store.keys.list = counted_list  # type: ignore[method-assign]
    _, plaintext = await store.keys.create("first")
    # Within the recheck interval the decision stands, and no call asks the store.
    assert await auth.caller(None) is ANONYMOUS
    assert queries == []
    clock.now += OPEN_MODE_RECHECK_SECONDS + 1
    # Due for a recheck: this call is answered at once by the last decision, and the
    # store is asked in the background, once however many calls come meanwhile.
    assert await auth.caller(None) is ANONYMOUS
    assert await auth.caller(None) is ANONYMOUS
    await eventually(lambda: not auth.is_open)
    assert queries == [True]
    with pytest.raises(AuthenticationError):
        await auth.caller(None)
    assert (await auth.caller(plaintext)).name == "first"


async def test_a_decision_left_stale_is_read_again_before_the_call(store: Store) -> None:
    # No watcher re-read it (an idle gateway whose loop had no turn, say): a call that
    # comes long after waits for the store rather than be let in on the old decision.
    clock = Clock()
    auth = Authenticator(store, None, clock=clock)
    assert await auth.refresh_open_mode()
    _, plaintext = await store.keys.create("first")
    clock.now += 2 * OPEN_MODE_RECHECK_SECONDS + 1
    with pytest.raises(AuthenticationError):
        await auth.caller(None)
    assert not auth.is_open
    assert (await auth.caller(plaintext)).name == "first"


async def test_an_idle_gateway_leaves_open_mode_when_the_first_key_appears(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth_module, "OPEN_MODE_RECHECK_SECONDS", 0.02)
    auth = Authenticator(store, None)
    assert await auth.refresh_open_mode()
    async with auth.watching_open_mode():
        await store.keys.create("first")
        # No call comes: the watcher alone finds the key.
        await eventually(lambda: not auth.is_open)
    with pytest.raises(AuthenticationError):
        await auth.caller(None)


async def test_the_watcher_stops_with_the_gateway(store: Store) -> None:
    auth = Authenticator(store, None)
    assert await auth.refresh_open_mode()
    async with auth.watching_open_mode():
        pass
    assert auth.is_open  # nothing re-read it, and nothing is left running
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    assert not [task for task in tasks if "watch" in repr(task.get_coro())]
