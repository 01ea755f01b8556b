"""Sliding-window rate limits shared by every gateway replica through Redis.

One Lua script (one EVALSHA round trip) checks and records requests and tokens together,
on the Redis server's clock; own code, not the ``limits`` package, whose moving window
stores one list entry per token and whose strategies check one limit per call.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from importlib import resources

from redis.asyncio import Redis
from redis.exceptions import RedisError

from modelway.errors import RateLimited
from modelway.limits.memory_rates import MemoryLimiter
from modelway.limits.outage import RedisOutage
from modelway.limits.tickets import UNLIMITED, Ticket, refusal

_SCRIPT = resources.files("modelway.limits").joinpath("sliding_window.lua").read_text()
_NOT_HIT = -1
_NEVER = -2
#: Scopes Redis's last counts are kept for before stale ones are swept (then twice the rest).
_FIRST_SWEEP = 1024


class RedisLimiter:
    """Per-scope RPM/TPM in Redis; same window, precision and headers as ``MemoryLimiter``.

    While Redis cannot be reached (see ``RedisOutage``) this replica limits on its own, in
    memory, to its share of each limit: the limit divided by ``replicas`` (the number of
    replicas sharing the Redis, from ``redis.replicas`` in modelway.yaml), never below 1.
    What it admits meanwhile is added to Redis once Redis answers again, and for one window
    after its last request in memory a request needs both Redis and the replica's share
    (another replica may not have told Redis yet). Its memory counts every request it
    admits, also while Redis answers, so an outage starts from this replica's part of the
    window, not from zero; and from no less than an equal part of what Redis last counted
    for the scope (within the window), so replicas that served unevenly before the outage
    still admit no more than the limit together. A replica started less than a window ago
    that Redis never told about a scope refuses it until Redis answers: it cannot know
    what the others admitted.
    """

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str = "mw:",
        window: float = 60.0,
        buckets: int = 60,
        clock_offset: float = 0.0,
        replicas: int = 1,
        outage: RedisOutage | None = None,
        local_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if replicas < 1:
            raise ValueError("replicas must be at least 1")
        self.window = window
        #: Seconds added to the Redis server's clock; lets tests move time without sleeping.
        self.clock_offset = clock_offset
        self.replicas = replicas
        self._prefix = prefix + "rate:"
        self._bucket_us = round(window * 1_000_000 / buckets)
        self._buckets = buckets
        self._script = client.register_script(_SCRIPT)
        self.outage = outage if outage is not None else RedisOutage()
        #: This replica's own admissions; it enforces the replica's share while Redis is down.
        self.local = MemoryLimiter(window=window, buckets=buckets, clock=local_clock)
        self._local_clock = local_clock
        self._started = local_clock()
        #: Until then (``local_clock``) the share is enforced beside Redis: see the class.
        self._both_until = 0.0
        #: Per scope, [requests, tokens] admitted in memory that Redis has not counted yet.
        self._owed: dict[str, list[int]] = {}
        #: Per scope, what Redis last counted in its window (requests, tokens) and when.
        self._seen: dict[str, tuple[int, int, float]] = {}
        self._sweep_seen_at = _FIRST_SWEEP
        #: Per scope, during an outage: what this replica's memory lacks of its equal part.
        self._missing: dict[str, tuple[int, int]] = {}

    async def admit(
        self, scope: str, *, rpm: int | None = None, tpm: int | None = None, tokens: int = 0
    ) -> Ticket:
        """Count one request reserving ``tokens``, or raise ``RateLimited`` and count nothing."""
        if rpm is None and tpm is None:
            return UNLIMITED
        if self.outage.skipping() or (self._owed and not await self._repay()):
            return await self._admit_locally(scope, rpm, tpm, tokens)
        counted = self._local_clock() < self._both_until
        beside: Ticket | None = None
        if counted:  # just after an outage: this replica's share too (on the safe side:
            # a request Redis then refuses stays counted here)
            beside = await self._admit_beside(scope, rpm, tpm, tokens)
        arguments = (
            "admit",
            self._bucket_us,
            self._buckets,
            round(self.clock_offset * 1_000_000),
            -1 if rpm is None else rpm,
            -1 if tpm is None else tpm,
            tokens,
        )
        try:
            reply = await self._script(keys=(self._prefix + scope,), args=arguments)
        except RedisError as error:
            self.outage.failed(error)
            if beside is not None:
                # Counted against the share in memory already: taken back before the
                # share is asked again, or a burst would spend it twice and be refused
                # for a whole window.
                self.local.release(beside)
            return await self._admit_locally(scope, rpm, tpm, tokens)
        self.outage.succeeded()
        if self._missing:
            # Redis answers: what an outage estimated of the others' part is over with it,
            # admitted in or not (the next outage estimates from what Redis says now).
            self._missing.clear()
        admitted, requests, used, bucket_or_wait, reset_or_wait = reply
        if len(self._seen) >= self._sweep_seen_at and scope not in self._seen:
            self._sweep_seen()
        self._seen[scope] = (requests, used, self._local_clock())
        if not admitted:
            raise refusal(
                rpm=rpm,
                tpm=tpm,
                requests_used=requests,
                tokens_used=used,
                tokens=tokens,
                requests_wait=_seconds(bucket_or_wait),
                tokens_wait=_seconds(reset_or_wait),
                window=self.window,
            )
        if not counted:
            self.local.count(scope, tokens)
        reset = reset_or_wait / 1_000_000
        ticket = Ticket(scope, bucket_or_wait, tokens, rpm, requests, tpm, used, reset)
        ticket.beside = beside
        return ticket

    async def _admit_beside(
        self, scope: str, rpm: int | None, tpm: int | None, tokens: int
    ) -> Ticket:
        """The request counted against this replica's share in memory, just after an outage.

        A request larger than the share but within the limit is not refused for it (it
        could never pass): its tokens are left to Redis. Its reservation is settled with
        the Redis ticket (``settle``), so the share holds what calls really used."""
        tpm_share = self.share(tpm)
        if tpm_share is not None and tokens > tpm_share and tpm is not None and tokens <= tpm:
            tpm_share = None
        try:
            return await self.local.admit(scope, rpm=self.share(rpm), tpm=tpm_share, tokens=tokens)
        except RateLimited as error:
            raise _outage_note(error, known=True, recovering=True) from None

    def _sweep_seen(self) -> None:
        """Forget counts older than the window (amortised: runs as the table doubles)."""
        oldest = self._local_clock() - self.window
        self._seen = {scope: seen for scope, seen in self._seen.items() if seen[2] >= oldest}
        self._sweep_seen_at = max(_FIRST_SWEEP, 2 * len(self._seen))

    def share(self, limit: int | None) -> int | None:
        """This replica's part of a limit while Redis is down (0 stays 0: it never passes)."""
        if limit is None or limit == 0:
            return limit
        return max(1, limit // self.replicas)

    async def _admit_locally(
        self, scope: str, rpm: int | None, tpm: int | None, tokens: int
    ) -> Ticket:
        """Admit against this replica's share in memory, and owe Redis the admission."""
        now = self._local_clock()
        self._both_until = now + self.window
        rpm_share, tpm_share = self.share(rpm), self.share(tpm)
        seen = self._seen.get(scope)
        if seen is None or now - seen[2] >= self.window:
            if now - self._started < self.window:
                # Started within the window and never told what the scope used there: the
                # other replicas may have used it all. (A replica up longer that has not
                # seen the scope for a window saw no traffic for it: the others saw little.)
                raise self._refuse_share(rpm, tpm, tokens, rpm or 0, tpm or 0, known=False)
        else:
            missing = self._missing.get(scope)
            if missing is None:
                # This replica's part counts as no less than an equal part of what Redis
                # counted: fixed at the outage's first admission of the scope.
                requests, used = self.local.usage(scope)
                missing = self._missing[scope] = (
                    max(0, -(-seen[0] // self.replicas) - requests),
                    max(0, -(-seen[1] // self.replicas) - used),
                )
            if rpm_share is not None:
                rpm_share -= missing[0]
            if tpm_share is not None:
                tpm_share -= missing[1]
            requests_out = rpm_share is not None and rpm_share <= 0
            tokens_out = tpm_share is not None and tpm_share <= 0
            if requests_out or tokens_out:
                raise self._refuse_share(
                    rpm if requests_out else None,
                    tpm if tokens_out else None,
                    tokens,
                    seen[0],
                    seen[1],
                )
        try:
            ticket = await self.local.admit(scope, rpm=rpm_share, tpm=tpm_share, tokens=tokens)
        except RateLimited as error:
            raise _outage_note(error, known=True) from None
        ticket.local = True
        self._owe(scope, 1, tokens)
        return ticket

    def _refuse_share(
        self,
        rpm: int | None,
        tpm: int | None,
        tokens: int,
        requests_used: int,
        tokens_used: int,
        *,
        known: bool = True,
    ) -> Exception:
        """The refusal when this replica's share is used up, by what Redis last counted or
        for want of knowing; it may pass once Redis answers again (tried after the pause).
        Its message says which: the "used" figures of a worker that knows nothing are
        the limit itself, not anything counted."""
        wait = self.outage.pause
        error = refusal(
            rpm=rpm,
            tpm=tpm,
            requests_used=requests_used,
            tokens_used=tokens_used,
            tokens=tokens,
            requests_wait=None if rpm is None else wait,
            tokens_wait=None if tpm is None else wait,
            window=self.window,
        )
        return _outage_note(error, known=known)

    def _owe(self, scope: str, requests: int, tokens: int) -> None:
        owed = self._owed.get(scope)
        if owed is None:
            self._owed[scope] = [requests, tokens]
        else:
            owed[0] += requests
            owed[1] += tokens

    async def _repay(self) -> bool:
        """Add what was admitted in memory to Redis; False (still owed) if Redis fails."""
        owed, self._owed = self._owed, {}
        pending = list(owed.items())
        try:
            while pending:
                scope, (requests, tokens) = pending[-1]
                arguments = (
                    "add",
                    self._bucket_us,
                    self._buckets,
                    round(self.clock_offset * 1_000_000),
                    requests,
                    max(0, tokens),
                )
                await self._script(keys=(self._prefix + scope,), args=arguments)
                pending.pop()
        except RedisError as error:
            for scope, (requests, tokens) in pending:
                self._owe(scope, requests, tokens)
            self.outage.failed(error)
            return False
        self._missing.clear()  # the outage is over for this replica's limits
        self.outage.succeeded()
        return True

    async def settle(self, ticket: Ticket, actual_tokens: int) -> None:
        """Refund unused reserved tokens where they were counted; charge extra ones to now."""
        if ticket.beside is not None:
            await self.local.settle(ticket.beside, actual_tokens)
        delta = actual_tokens - ticket.tokens
        if ticket is UNLIMITED or delta == 0:
            return
        if ticket.local or self.outage.skipping():
            if ticket.local:
                await self.local.settle(ticket, actual_tokens)
            else:
                ticket.tokens = actual_tokens
            if delta > 0:
                self._owe(ticket.scope, 0, delta)  # counted in Redis once it answers
            return
        ticket.tokens = actual_tokens
        arguments = (
            "settle",
            self._bucket_us,
            self._buckets,
            round(self.clock_offset * 1_000_000),
            delta,
            ticket.bucket,
        )
        try:
            await self._script(keys=(self._prefix + ticket.scope,), args=arguments)
        except RedisError as error:
            self.outage.failed(error)
            if delta > 0:
                self._owe(ticket.scope, 0, delta)
        else:
            self.outage.succeeded()


def _seconds(wait_us: int) -> float | None:
    """A script's wait in seconds: None if that limit was not hit, infinity if it never frees."""
    if wait_us == _NOT_HIT:
        return None
    if wait_us == _NEVER:
        return float("inf")
    return max(0.0, wait_us / 1_000_000)


def _outage_note(error: RateLimited, *, known: bool, recovering: bool = False) -> RateLimited:
    """``error`` saying it was refused in an outage, by a share: its figures are this
    worker's share of the limit, or (``known`` false) the limit itself, not a count;
    ``recovering``: in the window after an outage, while other workers may not have
    told Redis what they admitted meanwhile."""
    why = (
        "this worker admits only its share of the limit"
        if known
        else "this worker started within the window and cannot tell what other workers used"
    )
    if recovering:
        note = (
            "The shared limiter, Redis, was unreachable within the last window: until "
            "every worker has told it what they admitted meanwhile, this worker admits "
            "only its share of the limit."
        )
    else:
        note = f"The shared limiter, Redis, is unreachable: {why}."
    error.message = f"{error.message} ({note})"
    error.args = (error.message,)
    return error
