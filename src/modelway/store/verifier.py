"""Check a presented virtual key without paying Argon2 on every request.

A key is verified with Argon2 once per process, then remembered under the SHA-256 of
its text. A remembered key is re-read by id (one indexed SELECT) once its entry is
``REFRESH_AFTER`` seconds old, so a revocation reaches every replica within 5 seconds;
sooner where it is told (``expire``: this worker's own changes, and with Redis every
other worker's, ``gateway.key_changes``).

Refusals are remembered apart (``REFUSAL_TTL`` seconds, at most ``MAX_REFUSALS``), so
one wrong key presented again is not hashed again, and no number of wrong keys can
push a verified key out of its own table. Argon2 (64 MiB and ~50-200 ms of a core a
run) runs in a thread, at most ``concurrent`` runs at once with at most ``waiting``
more in line (``CheckQueue``: callers from addresses that have not failed go first; a
check the line has no room for is refused at once, ``ServerBusy``). Who may ask for a
check at all is the gateway's to limit (``gateway.key_attempts``): ``remembered``
answers without Argon2, ``check`` may run it.
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
from modelway.outages import transient
from modelway.store.argon2id import secret_matches
from modelway.store.check_queue import CheckQueue
from modelway.store.keys import key_prefix
from modelway.store.records import KeyRecord

if TYPE_CHECKING:
    from modelway.store.database import Store

log = logging.getLogger("modelway.store")

#: Seconds a verified key is trusted before its row is read again.
REFRESH_AFTER = 4.0
#: Seconds a refusal is remembered.
REFUSAL_TTL = 10.0
#: Verified keys remembered; the oldest entry goes when full. Only a valid key gets in.
MAX_ENTRIES = 10_000
#: Refused keys remembered, apart from the verified ones; the oldest goes when full.
MAX_REFUSALS = 10_000

INVALID = "invalid API key"
EXPIRED = "this API key has expired"
REVOKED = "this API key has been revoked"


#: When an entry told to expire counts as checked: always stale.
_EXPIRED = float("-inf")
#: Key ids one running check remembers being told of; past it, it counts as told of all.
MAX_TOLD = 1_000


@dataclass(slots=True)
class _Entry:
    record: KeyRecord | None  # None: refused with ``refusal``
    refusal: str
    checked_at: float  # time.monotonic()


class _Told:
    """The key ids told changed while one check ran (compared by identity, one per check)."""

    __slots__ = ("_every", "_ids")

    def __init__(self) -> None:
        self._ids: set[str] = set()
        self._every = False

    def add(self, key_id: str) -> None:
        if len(self._ids) < MAX_TOLD:
            self._ids.add(key_id)
        else:  # told of more than one check keeps: as good as told of every key
            self._every = True

    def of(self, key_id: str) -> bool:
        return self._every or key_id in self._ids


class KeyVerifier:
    """``await verify(plaintext) -> KeyRecord``; raises AuthenticationError otherwise.

    ``concurrent`` Argon2 runs at once, ``waiting`` more queued (``server.key_checks``).
    """

    def __init__(self, store: Store, *, concurrent: int = 1, waiting: int = 32) -> None:
        self._keys = store.keys
        self._outage = store.outage
        self._verified: dict[bytes, _Entry] = {}
        #: The digest each remembered key's entry is under, by key id (for ``expire``).
        self._digests: dict[str, bytes] = {}
        self._refused: dict[bytes, _Entry] = {}
        self._running: dict[bytes, asyncio.Task[_Entry]] = {}
        #: The ids told changed (``expire``) during each check now running: a check whose
        #: key was told of while it ran may have read the row before the change, so its
        #: answer is re-read at the next use. Other keys' changes leave it alone.
        self._told_during: set[_Told] = set()
        self._queue = CheckQueue(concurrent, waiting)

    @property
    def checks_waiting(self) -> int:
        """Argon2 runs waiting for a free slot right now."""
        return self._queue.waiting

    async def verify(self, plaintext: str) -> KeyRecord:
        """The key's record if it is valid, unexpired and unrevoked."""
        record = await self.remembered(plaintext)
        return record if record is not None else await self.check(plaintext)

    async def remembered(self, plaintext: str) -> KeyRecord | None:
        """The record of a key verified before, None for a key never verified or refused.

        Never runs Argon2 (a stale entry is re-read by id); raises AuthenticationError
        for a key refused within ``REFUSAL_TTL`` or one expired or revoked since.
        """
        digest = hashlib.sha256(plaintext.encode()).digest()
        entry = self._verified.get(digest)
        if entry is None:
            refused = self._refused.get(digest)
            if refused is None or self._stale(refused):
                return None
            raise AuthenticationError(refused.refusal)
        if self._stale(entry):
            entry = await self._shared(digest, plaintext, entry, False)
        return _valid(entry)

    async def check(self, plaintext: str, suspect: bool = False) -> KeyRecord:
        """Verify a key not remembered against the stored hashes with its prefix (Argon2).

        ``suspect``: it comes from an address with recent failures, so it waits behind
        every check that does not.
        """
        digest = hashlib.sha256(plaintext.encode()).digest()
        return _valid(await self._shared(digest, plaintext, None, suspect))

    def expire(self, key_id: str) -> None:
        """One key changed in the store (revoked, edited): its next use re-reads its row,
        and, until a re-read succeeds, is refused while the store cannot be read."""
        for told in self._told_during:
            told.add(key_id)
        digest = self._digests.get(key_id)
        entry = self._verified.get(digest) if digest is not None else None
        if entry is not None:
            entry.checked_at = _EXPIRED

    def expire_all(self) -> None:
        """Any key may have changed (announcements may have been missed): each one's next
        use re-reads its row, served from memory as usual while the store cannot be read,
        since nothing says this key did change."""
        stale = time.monotonic() - REFRESH_AFTER
        for entry in self._verified.values():
            entry.checked_at = min(entry.checked_at, stale)

    def _stale(self, entry: _Entry) -> bool:
        ttl = REFRESH_AFTER if entry.record is not None else REFUSAL_TTL
        return time.monotonic() - entry.checked_at >= ttl

    async def _shared(
        self, digest: bytes, plaintext: str, entry: _Entry | None, suspect: bool
    ) -> _Entry:
        """Run one check per distinct key at a time; concurrent callers await the same one."""
        task = self._running.get(digest)
        if task is None:
            task = asyncio.create_task(self._check(digest, plaintext, entry, suspect))
            self._running[digest] = task
            task.add_done_callback(functools.partial(self._finished, digest))
        # Shielded: a caller that goes away must not cancel the check others wait for.
        return await asyncio.shield(task)

    def _finished(self, digest: bytes, task: asyncio.Task[_Entry]) -> None:
        del self._running[digest]
        if not task.cancelled():
            task.exception()  # retrieved: every waiter has already seen it

    async def _check(
        self, digest: bytes, plaintext: str, entry: _Entry | None, suspect: bool
    ) -> _Entry:
        told = _Told()
        self._told_during.add(told)
        try:
            if entry is not None and entry.record is not None:
                fresh = await self._reread(entry)
            else:
                fresh = await self._verify_with_argon2(plaintext, suspect)
        finally:
            self._told_during.discard(told)
        if fresh.record is not None and told.of(fresh.record.id):
            fresh.checked_at = _EXPIRED  # read maybe before a change it was told of meanwhile
        self._remember(digest, fresh)
        return fresh

    async def _reread(self, entry: _Entry) -> _Entry:
        assert entry.record is not None
        told = entry.checked_at == _EXPIRED  # it changed: what we remember may be revoked
        try:
            record = await self._keys.get(entry.record.id)
        except Exception as error:
            if told:
                raise  # refused (503) until its row can be read: it may have been revoked
            # The store is briefly down: keep serving the key we verified, try again later.
            if transient(error):
                self._outage.failed(error)  # logged once per outage
            else:
                log.warning("could not re-read a key; keeping the cached one", exc_info=True)
            return _Entry(entry.record, "", time.monotonic())
        if record is None:
            return _Entry(None, INVALID, time.monotonic())
        if record.revoked:
            return _Entry(None, REVOKED, time.monotonic())
        return _Entry(record, "", time.monotonic())

    async def _verify_with_argon2(self, plaintext: str, suspect: bool) -> _Entry:
        prefix = key_prefix(plaintext)
        candidates = [] if prefix is None else await self._keys.find_candidates(prefix)
        for candidate in candidates:
            # The check is a shielded task: no caller's cancellation frees the slot early.
            async with self._queue.slot(suspect):
                matches = await secret_matches(candidate.key_hash, plaintext)
            if matches:
                if candidate.record.revoked:
                    return _Entry(None, REVOKED, time.monotonic())
                return _Entry(candidate.record, "", time.monotonic())
        return _Entry(None, INVALID, time.monotonic())

    def _remember(self, digest: bytes, entry: _Entry) -> None:
        if entry.record is None:
            self._forget(self._verified.pop(digest, None))
            _put(self._refused, digest, entry, MAX_REFUSALS)
        else:
            self._refused.pop(digest, None)
            for evicted in _put(self._verified, digest, entry, MAX_ENTRIES):
                self._forget(evicted)
            self._digests[entry.record.id] = digest

    def _forget(self, entry: _Entry | None) -> None:
        """Drop a verified entry that left the table from the index by key id."""
        if entry is not None and entry.record is not None:
            self._digests.pop(entry.record.id, None)


def _valid(entry: _Entry) -> KeyRecord:
    record = entry.record
    if record is None:
        raise AuthenticationError(entry.refusal)
    if record.expired(time.time()):
        raise AuthenticationError(EXPIRED)
    return record


def _put(entries: dict[bytes, _Entry], digest: bytes, entry: _Entry, limit: int) -> list[_Entry]:
    """Insert as the newest entry; the oldest go while the table is full (returned)."""
    entries.pop(digest, None)
    evicted = []
    while len(entries) >= limit:
        evicted.append(entries.pop(next(iter(entries))))
    entries[digest] = entry
    return evicted
