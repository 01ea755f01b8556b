"""Check a presented virtual key without paying Argon2 on every request.

A key is verified with Argon2 once per process, then remembered under the SHA-256 of
its text. A remembered key is re-read by id (one indexed SELECT) once its entry is
``REFRESH_AFTER`` seconds old, so a revocation reaches every replica within 5 seconds.
Refusals are remembered too, so a flood of wrong keys cannot make the server hash.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelway.errors import AuthenticationError
from modelway.store.argon2id import secret_matches
from modelway.store.keys import key_prefix
from modelway.store.records import KeyRecord

if TYPE_CHECKING:
    from modelway.store.database import Store

log = logging.getLogger("modelway.store")

#: Seconds a verified key is trusted before its row is read again.
REFRESH_AFTER = 4.0
#: Seconds a refusal is remembered.
REFUSAL_TTL = 10.0
#: Distinct keys remembered; the oldest entry goes when full.
MAX_ENTRIES = 10_000

INVALID = "invalid API key"
EXPIRED = "this API key has expired"
REVOKED = "this API key has been revoked"


@dataclass(slots=True)
class _Entry:
    record: KeyRecord | None  # None: refused with ``refusal``
    refusal: str
    checked_at: float  # time.monotonic()


class KeyVerifier:
    """``await verify(plaintext) -> KeyRecord``; raises AuthenticationError otherwise."""

    def __init__(self, store: Store) -> None:
        self._keys = store.keys
        self._entries: dict[bytes, _Entry] = {}
        self._running: dict[bytes, asyncio.Task[_Entry]] = {}

    async def verify(self, plaintext: str) -> KeyRecord:
        """The key's record if it is valid, unexpired and unrevoked."""
        digest = hashlib.sha256(plaintext.encode()).digest()
        entry = self._entries.get(digest)
        if entry is None or self._stale(entry):
            entry = await self._shared(digest, plaintext, entry)
        record = entry.record
        if record is None:
            raise AuthenticationError(entry.refusal)
        if record.expired(time.time()):
            raise AuthenticationError(EXPIRED)
        return record

    def forget(self, key_id: str) -> None:
        """Drop every remembered entry of one key (a local revocation applies at once)."""
        for digest, entry in list(self._entries.items()):
            if entry.record is not None and entry.record.id == key_id:
                del self._entries[digest]

    def _stale(self, entry: _Entry) -> bool:
        ttl = REFRESH_AFTER if entry.record is not None else REFUSAL_TTL
        return time.monotonic() - entry.checked_at >= ttl

    async def _shared(self, digest: bytes, plaintext: str, entry: _Entry | None) -> _Entry:
        """Run one check per distinct key at a time; concurrent callers await the same one."""
        task = self._running.get(digest)
        if task is None:
            task = asyncio.create_task(self._check(digest, plaintext, entry))
            self._running[digest] = task
            task.add_done_callback(functools.partial(self._finished, digest))
        # Shielded: a caller that goes away must not cancel the check others wait for.
        return await asyncio.shield(task)

    def _finished(self, digest: bytes, task: asyncio.Task[_Entry]) -> None:
        del self._running[digest]
        if not task.cancelled():
            task.exception()  # retrieved: every waiter has already seen it

    async def _check(self, digest: bytes, plaintext: str, entry: _Entry | None) -> _Entry:
        if entry is not None and entry.record is not None:
            fresh = await self._reread(entry)
        else:
            fresh = await self._verify_with_argon2(plaintext)
        self._remember(digest, fresh)
        return fresh

    async def _reread(self, entry: _Entry) -> _Entry:
        assert entry.record is not None
        try:
            record = await self._keys.get(entry.record.id)
        except Exception:
            # The store is briefly down: keep serving the key we verified, try again later.
            log.warning("could not re-read a key; keeping the cached one", exc_info=True)
            return _Entry(entry.record, "", time.monotonic())
        if record is None:
            return _Entry(None, INVALID, time.monotonic())
        if record.revoked:
            return _Entry(None, REVOKED, time.monotonic())
        return _Entry(record, "", time.monotonic())

    async def _verify_with_argon2(self, plaintext: str) -> _Entry:
        prefix = key_prefix(plaintext)
        candidates = [] if prefix is None else await self._keys.find_candidates(prefix)
        for candidate in candidates:
            if await secret_matches(candidate.key_hash, plaintext):
                if candidate.record.revoked:
                    return _Entry(None, REVOKED, time.monotonic())
                return _Entry(candidate.record, "", time.monotonic())
        return _Entry(None, INVALID, time.monotonic())

    def _remember(self, digest: bytes, entry: _Entry) -> None:
        self._entries.pop(digest, None)
        while len(self._entries) >= MAX_ENTRIES:
            del self._entries[next(iter(self._entries))]
        self._entries[digest] = entry
