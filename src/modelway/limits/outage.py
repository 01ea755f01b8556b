"""While Redis is unreachable: skip it for a moment, limit in memory, and say so once each way."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from modelway.outages import Outage

logger = logging.getLogger("modelway.limits")

#: Seconds to stop asking an unreachable Redis before trying again.
PAUSE_AFTER_ERROR = 1.0


class RedisOutage(Outage):
    """Remembers a Redis failure so calls skip Redis until the pause is over.

    Meanwhile rate limits fall back to each replica's in-memory share of the limit (see
    ``RedisLimiter``) and budgets are not checked: a shared limiter going down should not
    take every replica down with it. One outage is one warning when it begins (with its
    cause) and one when it ends, whichever of rates, budgets or ``Limits.ping`` saw it.
    """

    #: Outages begun in this process, over every instance (``modelway_redis_fail_open_total``).
    episodes = 0

    __slots__ = ("_pause", "_skip_until", "_watch")

    def __init__(
        self,
        consequence: str = "rate limits fall back to each replica's share in memory, "
        "budgets are not checked",
        *,
        pause: float = PAUSE_AFTER_ERROR,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__("Redis", consequence, logger=logger, clock=clock)
        self._pause = pause
        self._watch = clock
        self._skip_until = 0.0

    @property
    def pause(self) -> float:
        """Seconds Redis is left alone after a failure."""
        return self._pause

    def skipping(self) -> bool:
        """True while a recent failure says not to wait on Redis."""
        return self.down and self._watch() < self._skip_until

    def failed(self, error: BaseException) -> bool:
        """Record a failure: Redis is skipped for the pause; the first is logged."""
        self._skip_until = self._watch() + self._pause
        began = super().failed(error)
        if began:
            RedisOutage.episodes += 1
        return began
