"""The ``Limits`` the gateway holds for its lifetime: rate limits and budgets, memory or Redis."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelway.limits.budgets import BudgetBook, BudgetLedger
from modelway.limits.memory_rates import MemoryLimiter
from modelway.limits.outage import RedisOutage
from modelway.limits.tickets import RateLimiter

if TYPE_CHECKING:
    # redis.asyncio costs ~20 MB resident: imported only when REDIS_URL is set.
    from redis.asyncio import Redis

#: Seconds to wait on Redis (to connect, for an answer) before limiting in memory.
REDIS_TIMEOUT = 0.5
#: Connections per process; a check holds one for a single round trip.
REDIS_CONNECTIONS = 64


class Limits:
    """Rate limits (``rates``) and budgets (``budgets``), in memory or in one shared Redis."""

    def __init__(
        self,
        rates: RateLimiter,
        budgets: BudgetLedger,
        *,
        redis: Redis | None = None,
        outage: RedisOutage | None = None,
    ) -> None:
        self.rates = rates
        self.budgets = budgets
        self._redis = redis
        #: Whether Redis is down as this process last saw it (rates, budgets, ``ping``).
        self.outage = outage

    @classmethod
    def from_environment(
        cls,
        redis_url: str | None,
        *,
        prefix: str = "mw:",
        timeout: float = REDIS_TIMEOUT,
        replicas: int = 1,
    ) -> Limits:
        """In memory when ``redis_url`` is None, else through one pooled Redis client.

        ``timeout`` bounds each wait on Redis (a pooled connection, connecting, an answer)
        before this replica limits in memory to its share, the limit divided by
        ``replicas``. Nothing connects yet; a malformed URL raises ``ValueError``
        (without the URL, which may hold a password).
        """
        if redis_url is None:
            return cls(MemoryLimiter(), BudgetBook())
        from redis.asyncio import BlockingConnectionPool, Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        from modelway.limits.redis_budgets import RedisBudgetBook
        from modelway.limits.redis_rates import RedisLimiter

        try:
            # A burst waits briefly for a pooled connection instead of failing at once.
            pool = BlockingConnectionPool.from_url(
                redis_url,
                max_connections=REDIS_CONNECTIONS,
                timeout=timeout,
                socket_connect_timeout=timeout,
                socket_timeout=timeout,
                # One quick retry heals a pooled connection Redis closed; more would stall requests.
                retry=Retry(NoBackoff(), 1),
            )
        except ValueError as error:
            raise ValueError(f"redis.url / REDIS_URL is not a Redis URL: {error}") from None
        client = Redis.from_pool(pool)
        outage = RedisOutage()  # one per process: one outage is two log lines, not six
        return cls(
            RedisLimiter(client, prefix=prefix, replicas=replicas, outage=outage),
            RedisBudgetBook(client, prefix=prefix, outage=outage),
            redis=client,
            outage=outage,
        )

    @property
    def redis(self) -> Redis | None:
        """The shared Redis client (None in memory); the response cache uses it too."""
        return self._redis

    @property
    def backend(self) -> str:
        """``"redis"`` or ``"memory"``, for logs and health."""
        return "memory" if self._redis is None else "redis"

    async def ping(self) -> bool:
        """Whether limits are shared: always in memory; with Redis, whether it answers.

        A failed ping starts an outage (logged once) as a failed call does, so an outage
        shows in ``/health`` and the metrics even when no limited call is made.
        """
        if self._redis is None or self.outage is None:
            return True
        from redis.exceptions import RedisError  # loaded already: there is a client

        try:
            answered = bool(await self._redis.ping())
        except RedisError as error:
            self.outage.failed(error)
            return False
        self.outage.succeeded()
        return answered

    async def aclose(self) -> None:
        """Close the Redis connection pool, if any."""
        if self._redis is not None:
            await self._redis.aclose()
