"""Entries in Redis, shared by every replica: ``REDIS_URL`` (the limits' own client).

Keys are ``<prefix>cache:<namespace digest>:<key>``: a namespace is cleared by scanning
its own prefix, and a namespace's name (a team's, a key's id) never appears in Redis.
Redis bounds memory itself (``maxmemory`` with an LRU policy); values expire by TTL.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from modelway.cache.backends import CacheStats

if TYPE_CHECKING:
    from redis.asyncio import Redis

#: Keys deleted per round trip when clearing.
_CLEAR_BATCH = 500


class RedisBackend:
    """The ``CacheBackend`` over one Redis client (owned by ``Limits``, closed there)."""

    def __init__(self, client: Redis, *, prefix: str = "mw:") -> None:
        self._client = client
        self._prefix = f"{prefix}cache:"

    def _key(self, namespace: str, key: str) -> str:
        return f"{self._prefix}{_digest(namespace)}:{key}"

    async def get(self, namespace: str, key: str) -> bytes | None:
        value = await self._client.get(self._key(namespace, key))
        return value if isinstance(value, bytes) else None

    async def put(self, namespace: str, key: str, value: bytes, ttl: float) -> None:
        await self._client.set(self._key(namespace, key), value, px=_milliseconds(ttl))

    async def claim(self, namespace: str, key: str, value: bytes, ttl: float) -> bool:
        taken = await self._client.set(
            self._key(namespace, key), value, px=_milliseconds(ttl), nx=True
        )
        return bool(taken)

    async def delete(self, namespace: str, key: str) -> None:
        await self._client.delete(self._key(namespace, key))

    async def clear(self, namespace: str | None = None) -> int:
        pattern = self._prefix + ("*" if namespace is None else f"{_digest(namespace)}:*")
        removed = 0
        batch: list[bytes] = []
        async for key in self._client.scan_iter(match=pattern, count=_CLEAR_BATCH):
            batch.append(key)
            if len(batch) >= _CLEAR_BATCH:
                removed += await self._client.unlink(*batch)
                batch = []
        if batch:
            removed += await self._client.unlink(*batch)
        return removed

    async def stats(self) -> CacheStats:
        entries = 0
        size = 0
        async for key in self._client.scan_iter(match=self._prefix + "*", count=_CLEAR_BATCH):
            entries += 1
            size += int(await self._client.strlen(key))
        return CacheStats("redis", entries, size, None)

    async def aclose(self) -> None:
        return None  # the client is the limits' and closes with them


def _digest(namespace: str) -> str:
    return hashlib.sha256(namespace.encode(errors="surrogatepass")).hexdigest()[:24]


def _milliseconds(ttl: float) -> int:
    return max(1, int(ttl * 1000))
