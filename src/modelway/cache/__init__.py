"""The response cache and idempotency keys (docs/cache.md), used by the metered call.

``policy`` (the ``cache:`` settings per alias, ``Cache-Control``, determinism),
``keys`` (the dialect-independent request key), ``entries`` (canonical answers as
bytes, replayed as streams), ``backends`` (the Protocol and the in-memory LRU),
``redis_backend`` (shared by replicas), ``flights`` (requests in flight in this process:
identical ones wait for the first) and ``responses`` (lookup, keep, idempotency).
"""

from modelway.cache.backends import CacheBackend, CacheStats, MemoryBackend
from modelway.cache.entries import Entry, replay
from modelway.cache.keys import request_key
from modelway.cache.policy import (
    NO_DIRECTIVES,
    CacheControl,
    CachePolicy,
    deterministic,
    namespace_of,
    parse_cache_control,
    parse_namespace,
    policy_for,
)
from modelway.cache.responses import CachedCall, CacheStatus, ResponseCache

__all__ = [
    "NO_DIRECTIVES",
    "CacheBackend",
    "CacheControl",
    "CachePolicy",
    "CacheStats",
    "CacheStatus",
    "CachedCall",
    "Entry",
    "MemoryBackend",
    "ResponseCache",
    "deterministic",
    "namespace_of",
    "parse_cache_control",
    "parse_namespace",
    "policy_for",
    "replay",
    "request_key",
]
