"""Without Redis each worker caches in memory: a clear made on one reaches the others
through the clear counts in the store, re-read every few seconds."""

from __future__ import annotations

from pathlib import Path

from modelway.cache import CacheControl, MemoryBackend, ResponseCache
from modelway.cache.clears import refreshing
from modelway.calls import Caller
from modelway.config import CacheSettings
from modelway.store import Store, database_url
from modelway.types import ChatRequest, ChatResponse, Message, TextPart
from tests.polling import eventually

RED = Caller(key_id="k1", name="k1", team="red")
BLUE = Caller(key_id="k2", name="k2", team="blue")


def _question() -> ChatRequest:
    return ChatRequest(
        model="m", messages=[Message(role="user", content=[TextPart("hi")])], temperature=0
    )


def _worker() -> ResponseCache:
    return ResponseCache(MemoryBackend(100_000), CacheSettings())


async def _store_answer(cache: ResponseCache, caller: Caller) -> None:
    call = await cache.begin(caller, "m", _question(), CacheControl(), None)
    await call.keep(ChatResponse(id="r", model="m", message=Message(role="assistant")), "p", "m")


async def _hit(cache: ResponseCache, caller: Caller) -> bool:
    call = await cache.begin(caller, "m", _question(), CacheControl(), None)
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
