"""Failing open while Redis is unreachable: skip it for a moment and say so loudly, once."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

logger = logging.getLogger("modelway.limits")

#: Seconds to stop asking an unreachable Redis before trying again.
PAUSE_AFTER_ERROR = 1.0


class RedisOutage:
    """Remembers a Redis failure so calls skip Redis (unlimited) until the pause is over.

    Failing open is deliberate: a shared limiter going down should not take every replica
    down with it; providers still enforce their own limits, and usage records still land.
    """

    #: Outages begun in this process, over every instance (``modelway_redis_fail_open_total``).
    episodes = 0

    __slots__ = ("_clock", "_down", "_pause", "_skip_until", "_what")

    def __init__(
        self,
        what: str,
        *,
        pause: float = PAUSE_AFTER_ERROR,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._what = what
        self._pause = pause
        self._clock = clock
        self._skip_until = 0.0
        self._down = False

    @property
    def down(self) -> bool:
        """Whether the last call to Redis failed."""
        return self._down

    def skipping(self) -> bool:
        """True while a recent failure says not to wait on Redis."""
        return self._down and self._clock() < self._skip_until

    def failed(self, error: Exception) -> None:
        """Record a failure; the first of an outage is logged as an error."""
        self._skip_until = self._clock() + self._pause
        if not self._down:
            self._down = True
            RedisOutage.episodes += 1
            logger.error(
                "%s: Redis is unreachable (%s: %s); failing open, %s are NOT enforced "
                "until it answers again",
                self._what,
                type(error).__name__,
                error,
                self._what,
            )

    def succeeded(self) -> None:
        """Record a working call; the end of an outage is logged."""
        if self._down:
            self._down = False
            logger.warning("%s: Redis answers again; enforcing %s", self._what, self._what)
