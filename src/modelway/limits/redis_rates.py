"""Sliding-window rate limits shared by every gateway replica through Redis.

One Lua script (one EVALSHA round trip) checks and records requests and tokens together,
on the Redis server's clock; own code, not the ``limits`` package, whose moving window
stores one list entry per token and whose strategies check one limit per call.
"""

from __future__ import annotations

from importlib import resources

from redis.asyncio import Redis
from redis.exceptions import RedisError

from modelway.limits.outage import RedisOutage
from modelway.limits.tickets import UNLIMITED, Ticket, refusal

_SCRIPT = resources.files("modelway.limits").joinpath("sliding_window.lua").read_text()
_NOT_HIT = -1
_NEVER = -2


class RedisLimiter:
    """Per-scope RPM/TPM in Redis; same window, precision and headers as ``MemoryLimiter``.

    When Redis cannot be reached it fails open (see ``RedisOutage``): the request passes
    with no rate-limit headers, and the outage is logged.
    """

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str = "mw:",
        window: float = 60.0,
        buckets: int = 60,
        clock_offset: float = 0.0,
    ) -> None:
        self.window = window
        #: Seconds added to the Redis server's clock; lets tests move time without sleeping.
        self.clock_offset = clock_offset
        self._prefix = prefix + "rate:"
        self._bucket_us = round(window * 1_000_000 / buckets)
        self._buckets = buckets
        self._script = client.register_script(_SCRIPT)
        self.outage = RedisOutage("rate limits")

    async def admit(
        self, scope: str, *, rpm: int | None = None, tpm: int | None = None, tokens: int = 0
    ) -> Ticket:
        """Count one request reserving ``tokens``, or raise ``RateLimited`` and count nothing."""
        if (rpm is None and tpm is None) or self.outage.skipping():
            return UNLIMITED
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
            return UNLIMITED
        self.outage.succeeded()
        admitted, requests, used, bucket_or_wait, reset_or_wait = reply
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
        reset = reset_or_wait / 1_000_000
        return Ticket(scope, bucket_or_wait, tokens, rpm, requests, tpm, used, reset)

    async def settle(self, ticket: Ticket, actual_tokens: int) -> None:
        """Refund unused reserved tokens where they were counted; charge extra ones to now."""
        delta = actual_tokens - ticket.tokens
        if ticket is UNLIMITED or delta == 0 or self.outage.skipping():
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
        else:
            self.outage.succeeded()


def _seconds(wait_us: int) -> float | None:
    """A script's wait in seconds: None if that limit was not hit, infinity if it never frees."""
    if wait_us == _NOT_HIT:
        return None
    if wait_us == _NEVER:
        return float("inf")
    return max(0.0, wait_us / 1_000_000)
