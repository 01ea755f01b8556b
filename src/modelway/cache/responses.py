"""The response cache as a metered call uses it: look up, keep, and idempotency keys.

``ResponseCache.begin`` decides, for one chat request, whether the cache applies (the
alias's policy, determinism, ``Cache-Control``), and gives a ``CachedCall``: a ``hit``
with its entry, or a ``miss``/``bypass`` that runs upstream and ``keep``s the answer once
it ended cleanly. With an ``Idempotency-Key``, ``begin`` first claims the key: the first
request takes it and runs; a concurrent repeat waits until the first's answer is kept
(then it is a hit), the first failed (then it claims again), or ``idempotency_wait``
passes (409); a repeat with another body is a 422.

Identical cacheable requests are coalesced the same way: a miss while the identical
request is in flight in this process waits for its answer (then it is a hit) instead of
asking upstream again; if that request fails or its caller leaves, exactly one waiter
runs it next, the others waiting for that one; past ``wait`` seconds (the alias's total
timeout) a waiter runs beside it. Every such wait is on one future per request in flight
(``flights``), woken by its end with its answer: a repeat of an idempotency key polls
only while its first request runs in another process (Redis). What a request holds in
flight is let go when its call ends, however it ends (``keep``, ``abandon``, ``land``).

The backend failing (Redis down) never fails a call: the cache is skipped, and said so
in the log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Literal, TypeVar

from modelway.cache.backends import CacheBackend, CacheStats, MemoryBackend
from modelway.cache.entries import (
    Entry,
    IdempotencyRecord,
    decode_entry,
    decode_record,
    encode,
)
from modelway.cache.flights import Flight, Flights
from modelway.cache.keys import idempotency_slot, namespace_slot, request_key
from modelway.cache.policy import (
    DEFAULT_SETTINGS,
    CacheControl,
    CachePolicy,
    deterministic,
    namespace_of,
    policy_for,
)
from modelway.config import CacheSettings, ModelAlias, Timeouts
from modelway.errors import IdempotencyKeyInProgress, IdempotencyKeyReused
from modelway.types import ChatRequest, ChatResponse, MessageEnd, ResponseBuilder, StreamEvent

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from modelway.calls.caller import Caller
    from modelway.limits.outage import RedisOutage

log = logging.getLogger("modelway.cache")

CacheStatus = Literal["hit", "miss", "bypass"]
#: Seconds between looks at an idempotency key another request holds.
POLL_SECONDS = 0.02
#: Seconds a claimed key stays claimed should its request never say how it ended (its
#: process died): then a repeat runs it again.
CLAIM_SECONDS = 660.0
#: Seconds a request waits for an identical one in flight when its call gives no bound (the
#: metered call gives its alias's total timeout): then it runs beside it.
DEFAULT_WAIT = Timeouts().total
T = TypeVar("T")


class ResponseCache:
    """Cached answers and idempotency keys in one backend, with each alias's policy."""

    def __init__(
        self,
        backend: CacheBackend,
        settings: CacheSettings | None,
        models: Sequence[ModelAlias] = (),
        *,
        clock: Callable[[], float] = time.time,
        poll: float = POLL_SECONDS,
        outage: RedisOutage | None = None,
    ) -> None:
        self.backend = backend
        #: Redis's outage as every user of the limits' client sees it: one warning when it
        #: begins and one when it ends, and no waiting on Redis during its pause.
        self._outage = outage
        self.settings = settings or DEFAULT_SETTINGS
        self._default = policy_for(settings, None)
        self._policies = {alias.name: policy_for(settings, alias.cache) for alias in models}
        self._clock = clock
        self._poll = poll
        #: Clears counted in the store, by namespace (``*``: all), as this worker last read them.
        self._generations: dict[str, int] = {}
        #: This process's requests in flight: cached misses, and idempotency keys it holds.
        self.flights = Flights()

    @classmethod
    def build(
        cls,
        settings: CacheSettings | None,
        models: Sequence[ModelAlias],
        redis: Redis | None,
        outage: RedisOutage | None = None,
    ) -> ResponseCache:
        """In Redis when the limits have a client (``REDIS_URL``), else in this process."""
        if redis is None:
            max_bytes = (settings or DEFAULT_SETTINGS).max_bytes
            return cls(MemoryBackend(max_bytes), settings, models)
        from modelway.cache.redis_backend import RedisBackend

        return cls(RedisBackend(redis), settings, models, outage=outage)

    def policy(self, alias: str | None) -> CachePolicy | None:
        """How ``alias``'s answers are cached (None: not at all); other names: the section's."""
        if alias is None:
            return self._default
        return self._policies.get(alias, self._default)

    @property
    def shares_clears(self) -> bool:
        """Whether a clear reaches other workers only through the store (entries in memory)."""
        return isinstance(self.backend, MemoryBackend)

    def _token(self, namespace: str) -> str:
        """Where ``namespace``'s entries live now: its name and the clears it has seen."""
        generations = self._generations
        return namespace_slot(namespace, generations.get("*", 0), generations.get(namespace, 0))

    async def apply_clears(self, generations: dict[str, int], *, drop: bool = True) -> None:
        """Take the store's clear counts: drop what clears since the last read covered."""
        before = self._generations
        if generations == before:
            return
        if drop and generations.get("*", 0) != before.get("*", 0):
            await self.backend.clear()
        elif drop:
            for namespace, generation in generations.items():
                if before.get(namespace, 0) != generation:
                    await self.backend.clear(self._token(namespace))
        self._generations = dict(generations)

    def applies(self, alias: str | None, control: CacheControl, idempotent: bool) -> bool:
        """Cheap: whether a call of ``alias`` may involve the cache (translated then)."""
        return idempotent or (not control.moot and self.policy(alias) is not None)

    async def begin(
        self,
        caller: Caller,
        alias: str,
        request: ChatRequest,
        control: CacheControl,
        idempotency_key: str | None,
        wait: float = DEFAULT_WAIT,
    ) -> CachedCall:
        """The cache's part in one chat request; raises 422/409 for an idempotency key.

        A miss while the identical request is in flight in this process waits for its
        answer, ``wait`` seconds at most (see the module docstring).
        """
        policy = self.policy(alias)
        if policy is not None and (
            control.moot or (policy.deterministic_only and not deterministic(request))
        ):
            policy = None
        if policy is None and idempotency_key is None:
            return CachedCall(self, "", "", None, control, None)
        mode = policy.namespace if policy is not None else self.settings.namespace
        namespace = self._token(namespace_of(caller, mode))
        key = request_key(request, alias, namespace)
        slot = None
        if idempotency_key is not None:
            # A caller's own, whatever the alias's cache shares: on a ``shared`` alias one
            # tenant could otherwise block another's keys (422) or learn they were used.
            own = "team" if self.settings.namespace == "shared" else self.settings.namespace
            slot = (self._token(namespace_of(caller, own)), idempotency_slot(idempotency_key))
        call = CachedCall(self, namespace, key, policy, control, slot)
        try:
            await call.look_up(wait)
        except BaseException:
            # Refused (409, 422), or its caller left while it waited: free what it took.
            await call.abandon()
            raise
        return call

    async def stats(self) -> CacheStats:
        """What the backend holds."""
        return await self.backend.stats()

    async def clear(self, namespace: str | None = None) -> int:
        """Drop ``namespace``'s entries (every one when None) here; how many went."""
        return await self.backend.clear(None if namespace is None else self._token(namespace))

    async def aclose(self) -> None:
        await self.backend.aclose()

    async def safely(self, step: Awaitable[T], fallback: T) -> T:
        """``step``'s result, or ``fallback`` when the backend fails (logged, never raised)."""
        outage = self._outage
        if outage is not None and outage.skipping():
            close = getattr(step, "close", None)
            if close is not None:
                close()  # never awaited: Redis failed a moment ago
            return fallback
        try:
            result = await step
        except (OSError, TimeoutError, ConnectionError) as error:
            self._failed(error)
        except Exception as error:  # redis.exceptions.RedisError, without importing redis
            if type(error).__module__.split(".")[0] != "redis":
                raise
            self._failed(error)
        else:
            if outage is not None:
                outage.succeeded()
            return result
        return fallback

    def _failed(self, error: BaseException) -> None:
        if self._outage is not None:
            self._outage.failed(error)  # logged once per outage, with the limits' own
        else:
            log.warning("response cache unavailable, skipped: %s", type(error).__name__)

    def now(self) -> float:
        return self._clock()


class CachedCall:
    """One request's use of the cache: its status, the entry of a hit, and keeping the answer."""

    __slots__ = (
        "_cache",
        "_claimed",
        "_control",
        "_flight",
        "_key",
        "_key_flight",
        "_namespace",
        "_policy",
        "_slot",
        "entry",
        "status",
        "stored_bytes",
    )

    def __init__(
        self,
        cache: ResponseCache,
        namespace: str,
        key: str,
        policy: CachePolicy | None,
        control: CacheControl,
        slot: tuple[str, str] | None,
    ) -> None:
        self._cache = cache
        self._namespace = namespace
        self._key = key
        self._policy = policy
        self._control = control
        self._slot = slot
        self._claimed = False
        #: The slot this request holds in flight in this process (waited for by its twins).
        self._flight: Flight | None = None
        #: The same for its idempotency key, while claimed (waited for by its repeats here).
        self._key_flight: Flight | None = None
        #: ``hit`` (``entry`` answers), ``miss`` (run and kept: in the cache, or under the
        #: idempotency key) or ``bypass`` (run, not kept).
        self.status: CacheStatus = "bypass" if policy is None and slot is None else "miss"
        self.entry: Entry | None = None
        #: Bytes of the answer ``keep`` stored in the cache (not counting the idempotency key).
        self.stored_bytes = 0

    @property
    def namespace(self) -> str:
        return self._namespace

    async def look_up(self, wait: float = DEFAULT_WAIT) -> None:
        """Claim the idempotency key or find its answer; then the cache, unless ``no-cache``;
        on a miss, the answer of the identical request in flight here (``wait`` s at most)."""
        if self._slot is not None:
            entry = await self._idempotent_answer(self._slot)
            if entry is not None:
                self._hit(entry)
                return
        policy, control = self._policy, self._control
        if policy is None or control.no_cache:
            return
        cache = self._cache
        until: float | None = None
        while True:
            data = await cache.safely(cache.backend.get(self._namespace, self._key), None)
            entry = None if data is None else decode_entry(data)
            if (
                entry is not None
                and control.max_age is not None
                and cache.now() - entry.stored_at >= control.max_age
            ):
                # Older than the caller accepts (to the instant, not the whole second the
                # ``Age`` header says: ``max-age=0`` is never a hit): asked again, refreshed.
                entry = None
            if entry is not None or not control.shares:
                break
            flights = cache.flights
            flight, mine = flights.take((self._namespace, self._key))
            if mine:  # the first: it runs, and its twins wait for it
                self._flight = flight
                break
            if until is None:
                until = asyncio.get_running_loop().time() + wait
            try:
                answer = await flights.wait(flight, until)
            except TimeoutError:
                break  # waited long enough: it runs beside the first
            entry = None if answer is None else decode_entry(answer)
            if entry is not None:
                break
            # The first failed: look again (the one that ran next may have answered by
            # now), and take its place if not.
        if entry is None:
            return
        self._hit(entry)
        if self._claimed:  # the key this request took answers its repeats with this entry
            await self._answer_key(entry)

    def _hit(self, entry: Entry) -> None:
        self.status = "hit"
        self.entry = entry

    async def _idempotent_answer(self, slot: tuple[str, str]) -> Entry | None:
        """None once this request holds the key; the first request's answer otherwise."""
        cache = self._cache
        backend = cache.backend
        pending = encode(IdempotencyRecord(self._key))
        deadline = time.monotonic() + cache.settings.idempotency_wait
        owner, name = slot
        while True:
            claim = backend.claim(owner, name, pending, CLAIM_SECONDS)
            if await cache.safely(claim, True):  # Redis down: run it (fail open)
                self._claimed = True
                flight, mine = cache.flights.take(slot)
                if mine:  # its repeats in this process wait for it here, not in the backend
                    self._key_flight = flight
                return None
            data = await cache.safely(backend.get(owner, name), None)
            record = None if data is None else decode_record(data)
            if record is not None:
                if record.fingerprint != self._key:
                    raise IdempotencyKeyReused(
                        "Idempotency-Key: already used with a different request"
                    )
                if record.entry is not None:
                    return record.entry
            left = deadline - time.monotonic()
            if left <= 0:
                raise IdempotencyKeyInProgress(
                    "Idempotency-Key: its first request is still running; try again shortly"
                )
            first = cache.flights.flying(slot)
            if first is None:  # it runs in another process: look again shortly
                await asyncio.sleep(cache._poll)
                continue
            try:
                answer = await cache.flights.wait(first, asyncio.get_running_loop().time() + left)
            except TimeoutError:
                continue  # out of time: a last look, then 409
            entry = None if answer is None else decode_entry(answer)
            if entry is not None:
                return entry

    async def keep(self, response: ChatResponse, provider: str, model: str) -> int:
        """Store a cleanly ended answer (as policy, ``no-store`` and the key say); its bytes."""
        policy, slot = self._policy, self._slot
        store = policy is not None and not self._control.no_store
        if not store and not (slot is not None and self._claimed):
            return 0
        cache = self._cache
        if not response.created:
            # Stamped now, before the caller's answer is encoded from it: otherwise each
            # encoding (this answer, every replay) says its own second in ``created``.
            response.created = int(cache.now())
        entry = Entry(response, provider, model, cache.now())
        data = encode(entry)
        stored = 0
        try:
            if store:
                assert policy is not None
                put = cache.backend.put(self._namespace, self._key, data, policy.ttl)
                await cache.safely(put, None)
                stored = self.stored_bytes = len(data)
        finally:
            # Once stored, so a request arriving now finds it; its twins waiting here get it
            # even if the backend did not keep it (down, or the answer too large for it).
            self._land(data)
        if slot is not None and self._claimed:
            await self._answer_key(entry, data)
        return stored

    async def _answer_key(self, entry: Entry, data: bytes | None = None) -> None:
        """Keep ``entry`` (``data`` encoded) under the idempotency key this request claimed."""
        assert self._slot is not None
        cache = self._cache
        record = encode(IdempotencyRecord(self._key, entry))
        ttl = cache.settings.idempotency_ttl
        owner, name = self._slot
        try:
            await cache.safely(cache.backend.put(owner, name, record, ttl), None)
            self._claimed = False
        finally:
            flight = self._key_flight
            if flight is not None:
                self._key_flight = None
                cache.flights.land(self._slot, flight, data or encode(entry))

    async def kept(
        self, events: AsyncIterator[StreamEvent], provider: str, model: str
    ) -> AsyncGenerator[StreamEvent, None]:
        """``events`` passed on; once they ended cleanly, the answer they make is kept.

        Cleanly: the finish marker (``MessageEnd``) came, no error followed and the caller
        read to the end. Otherwise nothing is stored and the idempotency key is freed.
        """
        builder = ResponseBuilder()
        ended = False
        try:
            async for event in events:
                builder.add(event)
                if isinstance(event, MessageEnd):
                    ended = True
                yield event
            if ended:
                await self.keep(builder.result(), provider, model)
        finally:
            try:
                await events.aclose()  # type: ignore[attr-defined]
            finally:
                await self.abandon()  # nothing once kept

    async def abandon(self) -> None:
        """The request failed or was cancelled: free what it holds — its slot in flight (one
        of its twins waiting here runs next) and its idempotency key (for a repeat)."""
        self._land(None)
        try:
            if self._slot is not None and self._claimed:
                self._claimed = False
                cache = self._cache
                owner, name = self._slot
                await cache.safely(cache.backend.delete(owner, name), None)
        finally:
            self.land()  # once the key is free: a repeat woken here claims it

    def land(self) -> None:
        """Leave whatever this request still holds in flight, without an answer: its waiters
        run (one of them) or look again. The metered call's end does it, whatever the end."""
        if self._flight is not None:
            self._land(None)
        flight = self._key_flight
        if flight is not None:
            self._key_flight = None
            assert self._slot is not None
            self._cache.flights.land(self._slot, flight, None)

    def _land(self, answer: bytes | None) -> None:
        """Leave this request's slot in flight, its twins waiting here getting ``answer``."""
        flight = self._flight
        if flight is not None:
            self._flight = None
            self._cache.flights.land((self._namespace, self._key), flight, answer)
