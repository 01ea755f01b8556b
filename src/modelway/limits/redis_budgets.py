"""Spending budgets shared by every gateway replica through Redis.

One hash per scope and period window (``mw:budget:<scope>:2026-11``) with fields ``usd``
and ``tokens``, increased atomically; day and month windows expire on their own. Expiry is
set as a time to live, never as an absolute time: Redis's clock and the replica's need not
agree (with ``EXPIREAT``, a Redis clock an hour ahead of the replica's drops the window at
once and the budget is never enforced).

Redis is a shared counter, not the ledger of record: a window it has not filled from the
store when a budget is checked (Redis flushed, restarted without its data, new to an
install, or a new period) is filled from the spend on file first (``refill``: the
store's usage and this process's records not stored yet), once per window. Filling
keeps the larger of what Redis counts and what is on file, field by field, and marks the
window ``filled``: a call charged between a flush and the next check (its charge makes
the window anew) no longer passes for the whole period's spend.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

from modelway.limits.budgets import Period, PeriodWindow, Refill, exceeded
from modelway.limits.outage import RedisOutage

logger = logging.getLogger("modelway.limits")

#: A finished window lingers this long (seconds) so replicas with a late clock still see it.
_EXPIRY_GRACE = 3600
#: After the store failed to say a window's spend, checks go on unfilled this long (s)
#: before asking again, rather than query a store that is away on every call.
_REFILL_RETRY_SECONDS = 5.0
#: KEYS[1] the window; ARGV usd, tokens, seconds to live ('' forever). Each field becomes
#: the larger of Redis's count and the store's; the window is marked filled.
_SEED = """
for i, field in ipairs({'usd', 'tokens'}) do
  local counted = tonumber(redis.call('HGET', KEYS[1], field) or '0')
  if tonumber(ARGV[i]) > counted then redis.call('HSET', KEYS[1], field, ARGV[i]) end
end
redis.call('HSET', KEYS[1], 'filled', '1')
if ARGV[3] ~= '' then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
return 1
"""


class RedisBudgetBook:
    """Budgets in Redis; fails open (unchecked, uncharged, logged) while Redis is unreachable."""

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str = "mw:",
        clock: Callable[[], float] = time.time,
        outage: RedisOutage | None = None,
    ) -> None:
        self._client = client
        self._prefix = prefix + "budget:"
        self._windows = PeriodWindow(clock)
        self.outage = outage if outage is not None else RedisOutage()
        #: Fills a window Redis does not hold from the spend on file (``calls.spending``).
        self.refill: Refill | None = None
        self._refilling: dict[str, asyncio.Future[None]] = {}
        #: Windows whose refill failed: not asked again before this (monotonic) time.
        self._refill_after: dict[str, float] = {}
        self._seed = client.register_script(_SEED)

    async def check(
        self, scope: str, *, usd: float | None = None, tokens: int | None = None, period: Period
    ) -> None:
        """Raise ``BudgetExceeded`` when this period's spend has reached a limit."""
        if (usd is None and tokens is None) or self.outage.skipping():
            return
        key, _ = self._key(scope, period)
        try:
            usd_spent, tokens_spent, filled = await self._client.hmget(
                key, ("usd", "tokens", "filled")
            )
            if filled is None and self.refill is not None and self._may_refill(key):
                await self._refill_window(key, scope, period)
                usd_spent, tokens_spent = await self._client.hmget(key, ("usd", "tokens"))
        except RedisError as error:
            self.outage.failed(error)
            return
        self.outage.succeeded()
        refusal = exceeded(
            period,
            usd_limit=usd,
            tokens_limit=tokens,
            usd_spent=float(usd_spent or 0),
            tokens_spent=int(tokens_spent or 0),
            windows=self._windows,
        )
        if refusal is not None:
            raise refusal

    async def charge(self, scope: str, *, usd: float, tokens: int, period: Period) -> None:
        """Add a finished call's cost and tokens to this period's spend (one atomic round trip)."""
        if self.outage.skipping():
            return
        key, time_to_live = self._key(scope, period)
        async with self._client.pipeline(transaction=True) as pipeline:
            pipeline.hincrbyfloat(key, "usd", usd)
            pipeline.hincrby(key, "tokens", tokens)
            if time_to_live is not None:
                pipeline.expire(key, time_to_live)
            await self._run(pipeline)

    async def seed(self, scope: str, period: Period, usd: float, tokens: int) -> None:
        """Fill this period's spend from stored usage: the larger of it and Redis's count."""
        key, time_to_live = self._key(scope, period)
        arguments = (repr(float(usd)), int(tokens), "" if time_to_live is None else time_to_live)
        try:
            await self._seed(keys=[key], args=arguments)
        except RedisError as error:
            self.outage.failed(error)
        else:
            self.outage.succeeded()

    def _may_refill(self, key: str) -> bool:
        after = self._refill_after.get(key)
        if after is None:
            return True
        if time.monotonic() < after:
            return False
        del self._refill_after[key]
        return True

    async def _refill_window(self, key: str, scope: str, period: Period) -> None:
        """Fill a window Redis does not hold from the store; concurrent checks of it wait
        for one look-up. A store that fails leaves the window to the charges to come."""
        pending = self._refilling.get(key)
        if pending is not None:
            await asyncio.shield(pending)
            return
        done = self._refilling[key] = asyncio.get_running_loop().create_future()
        try:
            assert self.refill is not None
            try:
                await self.refill(scope, period)  # reads the spend on file, then ``seed``
            except Exception:
                logger.warning(
                    "could not read %s's stored spend for its budget", scope, exc_info=True
                )
                self._refill_after[key] = time.monotonic() + _REFILL_RETRY_SECONDS
        finally:
            del self._refilling[key]
            done.set_result(None)

    def _key(self, scope: str, period: Period) -> tuple[str, int | None]:
        """The window's key, and the seconds it should live (None: forever)."""
        window, _ = self._windows.current(period)
        seconds_left = self._windows.seconds_left(period)
        key = f"{self._prefix}{scope}:{window}"
        return key, None if seconds_left is None else math.ceil(seconds_left) + _EXPIRY_GRACE

    async def _run(self, pipeline: Pipeline) -> None:
        try:
            await pipeline.execute()
        except RedisError as error:
            self.outage.failed(error)
        else:
            self.outage.succeeded()
