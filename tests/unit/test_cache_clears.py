"""Without Redis each worker caches in memory: a clear made on one reaches the others
through the clear counts in the store, re-read every few seconds."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelway.cache import CacheControl, MemoryBackend, ResponseCache
from modelway.cache.clears import refreshing
from modelway.calls import Caller
from modelway.config import CacheSettings
from modelway.store import Store, database_url
from modelway.types import ChatRequest, ChatResponse, Message, TextPart
from tests.polling import eventually

RED = Caller(key_id="k1", name="k1", team="red")
BLUE = Caller(key_id="k2", name="k2", team="blue")


def _question(text: str = "hi") -> ChatRequest:
    return ChatRequest(
        model="m", messages=[Message(role="user", content=[TextPart(text)])], temperature=0
    )


def _worker() -> ResponseCache:
    return ResponseCache(MemoryBackend(100_000), CacheSettings())


async def _store_answer(cache: ResponseCache, caller: Caller) -> None:
    call = await cache.begin(caller, "m", _question(), CacheControl(), None)
    await call.keep(ChatResponse(id="r", model="m", message=Message(role="assistant")), "p", "m")


async def _hit(cache: ResponseCache, caller: Caller) -> bool:
    call = await cache.begin(caller, "m", _question(), CacheControl(), None)
    call.land()  # as a metered call's end does: a miss no longer in flight
    return call.status == "hit"


async def test_a_clear_on_one_worker_empties_the_others_at_their_next_read(
    tmp_path: Path,
) -> None:
    store = await Store.open(database_url({"MODELWAY_DATA_DIR": str(tmp_path)}))
    one, other = _worker(), _worker()
    try:
        for cache in (one, other):
            await _store_answer(cache, RED)
            await _store_answer(cache, BLUE)
        async with refreshing(other, store.cache_clears.generations, every=0.05):
            # What the admin route does on the worker that answers it.
            await one.clear("team:red")
            await store.cache_clears.bump("team:red")
            await one.apply_clears(await store.cache_clears.generations())
            assert not await _hit(one, RED) and await _hit(one, BLUE)
            await eventually(lambda: _gone(other, RED))
            assert await _hit(other, BLUE)
            # A red answer stored after the clear is served again.
            await _store_answer(other, RED)
            assert await _hit(other, RED)
            await one.clear(None)
            await store.cache_clears.bump(None)
            await eventually(lambda: _gone(other, BLUE))
    finally:
        await store.aclose()


async def _gone(cache: ResponseCache, caller: Caller) -> bool:
    return not await _hit(cache, caller)


async def test_clear_counts_start_at_one_and_count_up(tmp_path: Path) -> None:
    store = await Store.open(database_url({"MODELWAY_DATA_DIR": str(tmp_path)}))
    try:
        assert await store.cache_clears.generations() == {}
        await store.cache_clears.bump("team:red")
        await store.cache_clears.bump("team:red")
        await store.cache_clears.bump(None)
        assert await store.cache_clears.generations() == {"team:red": 2, "*": 1}
    finally:
        await store.aclose()


async def test_a_team_whose_name_spells_a_cleared_namespace_is_still_its_own(
    tmp_path: Path,
) -> None:
    x = Caller(key_id="k1", name="k1", team="x")
    lookalike = Caller(key_id="k2", name="k2", team="x#0.1")
    store = await Store.open(database_url({"MODELWAY_DATA_DIR": str(tmp_path)}))
    cache = _worker()
    try:
        await store.cache_clears.bump("team:x")
        await cache.apply_clears(await store.cache_clears.generations())
        # Team x's idempotency key: the other team's repeat of it is a run of its own.
        order = _question("pay once")
        first = await cache.begin(x, "m", order, CacheControl(), "order-1")
        answer = ChatResponse(id="x-only", model="m", message=Message(role="assistant"))
        await first.keep(answer, "p", "m")
        other = await cache.begin(lookalike, "m", order, CacheControl(), "order-1")
        assert other.status == "miss" and other.entry is None
        # And team x's cached answer.
        await _store_answer(cache, x)
        assert await _hit(cache, x) and not await _hit(cache, lookalike)
    finally:
        await store.aclose()


async def test_the_whole_caches_row_cannot_be_bumped_as_a_namespace(tmp_path: Path) -> None:
    store = await Store.open(database_url({"MODELWAY_DATA_DIR": str(tmp_path)}))
    try:
        with pytest.raises(ValueError, match="bump\\(None\\)"):
            await store.cache_clears.bump("*")
        assert await store.cache_clears.generations() == {}
    finally:
        await store.aclose()
