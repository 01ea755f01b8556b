"""Where entries live: one small Protocol, kept in memory here or in Redis (``redis_backend``).

Every value is bytes under a ``(namespace, key)`` pair with a time-to-live. ``claim`` is
the one atomic step idempotency keys need (Redis's ``SET NX``): of every caller that
claims a key, one wins; the others read what it leaves there.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple, Protocol

from modelway.cache.keys import IDEMPOTENCY_PREFIX


class CacheStats(NamedTuple):
    """What a backend holds: entries and their bytes, against its bound (None: unbounded)."""

    backend: str
    entries: int
    bytes: int
    max_bytes: int | None


class CacheBackend(Protocol):
    """Bytes under ``(namespace, key)`` with a TTL; ``claim`` sets only an absent key."""

    async def get(self, namespace: str, key: str) -> bytes | None:
        """The value, or None when absent or expired."""
        ...

    async def put(self, namespace: str, key: str, value: bytes, ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds, replacing any."""
        ...

    async def claim(self, namespace: str, key: str, value: bytes, ttl: float) -> bool:
        """Store ``value`` for ``ttl`` seconds only if the key is absent; whether it was."""
        ...

    async def delete(self, namespace: str, key: str) -> None:
        """Remove the key, if present."""
        ...

    async def clear(self, namespace: str | None = None) -> int:
        """Remove every key of ``namespace`` (of all when None); how many went."""
        ...

    async def stats(self) -> CacheStats:
        """What the backend holds now."""
        ...

    async def aclose(self) -> None:
        """Release connections (none in memory)."""
        ...


class MemoryBackend:
    """One process's entries, least recently used dropped first past ``max_bytes``.

    Hand-written over ``OrderedDict``s: the bound is in bytes, which ``functools`` and
    ``cachetools``'s count-bounded caches do not keep. Expiry is checked when a key is read
    (and expired keys met on the way are dropped), on ``clock`` (monotonic, injectable).
    Idempotency keys (``keys.IDEMPOTENCY_PREFIX``) are held apart and dropped only when no
    cached answer is left to drop: evicted by answers, a key's repeat ran again. Invariant:
    ``bytes`` is the sum of the sizes of the values held, never above ``max_bytes``.
    Nothing here awaits, so no step is interleaved with another.
    """

    def __init__(self, max_bytes: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_bytes = max_bytes
        self._clock = clock
        self._answers: OrderedDict[tuple[str, str], tuple[float, bytes]] = OrderedDict()
        self._keys: OrderedDict[tuple[str, str], tuple[float, bytes]] = OrderedDict()
        self.bytes = 0

    def _held(self, slot: tuple[str, str]) -> OrderedDict[tuple[str, str], tuple[float, bytes]]:
        return self._keys if slot[1].startswith(IDEMPOTENCY_PREFIX) else self._answers

    def _live(self, slot: tuple[str, str]) -> bytes | None:
        held = self._held(slot)
        item = held.get(slot)
        if item is None:
            return None
        expires, value = item
        if expires <= self._clock():
            self._remove(slot)
            return None
        held.move_to_end(slot)
        return value

    def _remove(self, slot: tuple[str, str]) -> None:
        _, value = self._held(slot).pop(slot)
        self.bytes -= _size(slot, value)

    async def get(self, namespace: str, key: str) -> bytes | None:
        return self._live((namespace, key))

    async def put(self, namespace: str, key: str, value: bytes, ttl: float) -> None:
        slot = (namespace, key)
        held = self._held(slot)
        if slot in held:
            self._remove(slot)
        size = _size(slot, value)
        if size > self.max_bytes:
            return  # larger than the whole cache: kept nowhere rather than emptying it
        while self.bytes + size > self.max_bytes:
            # The least recently used answer; an idempotency key only when none is left.
            self._remove(next(iter(self._answers or self._keys)))
        held[slot] = (self._clock() + ttl, value)
        self.bytes += size

    async def claim(self, namespace: str, key: str, value: bytes, ttl: float) -> bool:
        if self._live((namespace, key)) is not None:
            return False
        await self.put(namespace, key, value, ttl)
        return True

    async def delete(self, namespace: str, key: str) -> None:
        slot = (namespace, key)
        if slot in self._held(slot):
            self._remove(slot)

    async def clear(self, namespace: str | None = None) -> int:
        doomed = [
            slot
            for held in (self._answers, self._keys)
            for slot in held
            if namespace is None or slot[0] == namespace
        ]
        for slot in doomed:
            self._remove(slot)
        return len(doomed)

    async def stats(self) -> CacheStats:
        entries = len(self._answers) + len(self._keys)
        return CacheStats("memory", entries, self.bytes, self.max_bytes)

    async def aclose(self) -> None:
        return None


def _size(slot: tuple[str, str], value: bytes) -> int:
    """What an item counts against the bound: its value and its key."""
    return len(value) + len(slot[0]) + len(slot[1])
