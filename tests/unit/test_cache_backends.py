"""The in-memory cache backend: bounded by bytes (least recently used out first), TTLs on
an injected clock, ``claim`` as ``SET NX``, clearing by namespace."""

from __future__ import annotations

import logging

import pytest

from modelway.cache import MemoryBackend


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _slot_size(namespace: str, key: str, value: bytes) -> int:
    return len(namespace) + len(key) + len(value)


async def test_past_its_bytes_the_least_recently_used_entry_goes_first() -> None:
    item = _slot_size("ns", "a", b"x" * 100)
    cache = MemoryBackend(max_bytes=3 * item)
    for key in "abc":
        await cache.put("ns", key, b"x" * 100, ttl=60)
    assert await cache.get("ns", "a") is not None  # a is now the most recently used
    await cache.put("ns", "d", b"x" * 100, ttl=60)
    assert await cache.get("ns", "b") is None
    assert all([await cache.get("ns", key) for key in "acd"])
    assert cache.bytes == 3 * item
    assert (await cache.stats()).entries == 3


async def test_a_large_entry_evicts_as_many_as_it_needs_and_a_huge_one_is_not_kept() -> None:
    cache = MemoryBackend(max_bytes=1000)
    for key in "abcd":
        await cache.put("ns", key, b"x" * 200, ttl=60)
    await cache.put("ns", "big", b"y" * 500, ttl=60)
    assert [await cache.get("ns", key) is not None for key in "abcd"] == [
        False,
        False,
        True,
        True,
    ]
    await cache.put("ns", "huge", b"z" * 2000, ttl=60)
    assert await cache.get("ns", "huge") is None
    assert await cache.get("ns", "big") is not None  # the cache was not emptied for it
    assert cache.bytes <= cache.max_bytes


async def test_entries_expire_after_their_ttl_on_the_injected_clock() -> None:
    clock = Clock()
    cache = MemoryBackend(max_bytes=10_000, clock=clock)
    await cache.put("ns", "k", b"v", ttl=30)
    clock.now += 29.9
    assert await cache.get("ns", "k") == b"v"
    clock.now += 0.1
    assert await cache.get("ns", "k") is None
    assert cache.bytes == 0


async def test_a_claim_succeeds_once_until_the_key_expires_or_is_deleted() -> None:
    clock = Clock()
    cache = MemoryBackend(max_bytes=10_000, clock=clock)
    assert await cache.claim("ns", "idem", b"first", ttl=10)
    assert not await cache.claim("ns", "idem", b"second", ttl=10)
    assert await cache.get("ns", "idem") == b"first"
    await cache.delete("ns", "idem")
    assert await cache.claim("ns", "idem", b"third", ttl=10)
    clock.now += 10
    assert await cache.claim("ns", "idem", b"fourth", ttl=10)
    assert await cache.claim("other", "idem", b"theirs", ttl=10)  # namespaces apart


async def test_clearing_a_namespace_leaves_the_others() -> None:
    cache = MemoryBackend(max_bytes=10_000)
    await cache.put("team:red", "a", b"1", ttl=60)
    await cache.put("team:red", "b", b"2", ttl=60)
    await cache.put("team:blue", "a", b"3", ttl=60)
    assert await cache.clear("team:red") == 2
    assert await cache.get("team:blue", "a") == b"3"
    assert await cache.clear() == 1
    assert cache.bytes == 0


async def test_redis_down_is_one_outage_for_the_cache_and_the_limits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With Redis unreachable every request is a miss that runs (fail open), the outage is
    the limits' one (a single warning, not one per request), and during its pause the cache
    does not wait on Redis at all."""
    from redis.asyncio import Redis

    from modelway.cache import CacheControl, ResponseCache
    from modelway.calls import Caller
    from modelway.config import CacheSettings
    from modelway.limits.outage import RedisOutage
    from modelway.types import ChatRequest, Message, TextPart
    from tests.redis_server import free_port

    now = [1000.0]
    outage = RedisOutage(pause=5.0, clock=lambda: now[0])
    client = Redis(port=free_port(), socket_connect_timeout=1, socket_timeout=1)
    settings = CacheSettings(ttl=60, deterministic_only=False)
    cache = ResponseCache.build(settings, (), client, outage)
    caller = Caller(key_id="k1", name="k1", team=None)
    request = ChatRequest(model="m", messages=[Message(role="user", content=[TextPart("hello")])])
    with caplog.at_level(logging.WARNING):
        for _ in range(5):
            call = await cache.begin(caller, "m", request, CacheControl(), "idem-1")
            assert call.status == "miss" and call.entry is None
            call.land()  # as its metered call's end does: the next one is not its twin
    assert outage.down
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "Redis unreachable" in warnings[0].getMessage()
    await client.aclose()


async def test_idempotency_keys_outlive_answers_when_the_bytes_run_out() -> None:
    """A key evicted by answers let its repeat run upstream again: keys go only once no
    answer is left to drop."""
    cache = MemoryBackend(max_bytes=1000)
    await cache.put("ns", "idem:order-1", b"k" * 100, ttl=60)
    for key in "abcdef":
        await cache.put("ns", key, b"x" * 200, ttl=60)
    assert await cache.get("ns", "idem:order-1") == b"k" * 100
    assert cache.bytes <= 1000
    await cache.put("ns", "idem:order-2", b"k" * 900, ttl=60)  # no answer left to drop
    assert await cache.get("ns", "idem:order-1") is None
    assert (await cache.stats()).entries == 1
    assert await cache.clear("ns") == 1 and cache.bytes == 0
