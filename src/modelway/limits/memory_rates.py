"""Sliding-window rate limits in this process's memory.

Own code, not the ``limits`` package: it checks one limit per call (no atomic requests +
tokens admission), cannot settle a token reservation, and costs 9-17 µs a check here.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from modelway.limits.tickets import UNLIMITED, Ticket, refusal

#: Scopes are swept for idleness once the table passes this size (then twice its live size).
_FIRST_SWEEP = 1024


class _Usage:
    """One scope's live buckets, oldest first, as ``[bucket, requests, tokens]``, and their sums."""

    __slots__ = ("buckets", "requests", "tokens")

    def __init__(self) -> None:
        self.buckets: deque[list[int]] = deque()
        self.requests = 0
        self.tokens = 0


class MemoryLimiter:
    """Per-scope RPM/TPM over a sliding window split in ``buckets`` sub-buckets.

    Usage is never forgotten early: it counts for between one window and one window plus
    one bucket (60-61 s by default), so no instant can see twice the limit admitted.
    """

    def __init__(
        self,
        *,
        window: float = 60.0,
        buckets: int = 60,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window = window
        self._buckets = buckets
        self._bucket_seconds = window / buckets
        self._clock = clock
        self._scopes: dict[str, _Usage] = {}
        self._sweep_at = _FIRST_SWEEP

    async def admit(
        self, scope: str, *, rpm: int | None = None, tpm: int | None = None, tokens: int = 0
    ) -> Ticket:
        """Count one request reserving ``tokens``, or raise ``RateLimited`` and count nothing."""
        if rpm is None and tpm is None:
            return UNLIMITED
        now = self._clock()
        bucket = int(now / self._bucket_seconds)
        usage = self._live_usage(scope, bucket)
        if (rpm is not None and usage.requests >= rpm) or (
            tpm is not None and usage.tokens + tokens > tpm
        ):
            raise self._refuse(usage, now, rpm, tpm, tokens)
        _add(usage, bucket, tokens)
        reset = (usage.buckets[0][0] + self._buckets + 1) * self._bucket_seconds - now
        return Ticket(scope, bucket, tokens, rpm, usage.requests, tpm, usage.tokens, reset)

    def usage(self, scope: str) -> tuple[int, int]:
        """Requests and tokens the scope has in the window now."""
        usage = self._live_usage(scope, int(self._clock() / self._bucket_seconds))
        return usage.requests, usage.tokens

    def count(self, scope: str, tokens: int) -> None:
        """Record one request admitted elsewhere (never refused, no ticket)."""
        bucket = int(self._clock() / self._bucket_seconds)
        _add(self._live_usage(scope, bucket), bucket, tokens)

    def release(self, ticket: Ticket) -> None:
        """Take back what ``admit`` counted for ``ticket`` (if still in the window): the
        request is to be admitted another way, and must not count twice."""
        if ticket is UNLIMITED:
            return
        usage = self._live_usage(ticket.scope, int(self._clock() / self._bucket_seconds))
        for entry in reversed(usage.buckets):
            if entry[0] == ticket.bucket:
                entry[1] -= 1
                entry[2] -= ticket.tokens
                usage.requests -= 1
                usage.tokens -= ticket.tokens
                return
            if entry[0] < ticket.bucket:
                return

    async def settle(self, ticket: Ticket, actual_tokens: int) -> None:
        """Refund unused reserved tokens where they were counted; charge extra ones to now."""
        delta = actual_tokens - ticket.tokens
        if ticket is UNLIMITED or delta == 0:
            return
        ticket.tokens = actual_tokens
        bucket = int(self._clock() / self._bucket_seconds)
        usage = self._live_usage(ticket.scope, bucket)
        buckets = usage.buckets
        if delta > 0:
            if buckets and buckets[-1][0] == bucket:
                buckets[-1][2] += delta
            else:
                buckets.append([bucket, 0, delta])
            usage.tokens += delta
            return
        for entry in reversed(buckets):
            if entry[0] == ticket.bucket:
                refund = min(-delta, entry[2])
                entry[2] -= refund
                usage.tokens -= refund
                return
            if entry[0] < ticket.bucket:
                return  # the reservation already left the window

    def _live_usage(self, scope: str, bucket: int) -> _Usage:
        """The scope's usage with buckets older than the window dropped."""
        usage = self._scopes.get(scope)
        if usage is None:
            if len(self._scopes) >= self._sweep_at:
                self._sweep_idle(bucket)
            usage = self._scopes[scope] = _Usage()
            return usage
        buckets = usage.buckets
        oldest_live = bucket - self._buckets
        while buckets and buckets[0][0] < oldest_live:
            _, requests, tokens = buckets.popleft()
            usage.requests -= requests
            usage.tokens -= tokens
        return usage

    def _sweep_idle(self, bucket: int) -> None:
        """Forget scopes with nothing left in the window (amortised: runs as the table doubles)."""
        oldest_live = bucket - self._buckets
        idle = [
            scope
            for scope, usage in self._scopes.items()
            if not usage.buckets or usage.buckets[-1][0] < oldest_live
        ]
        for scope in idle:
            del self._scopes[scope]
        self._sweep_at = max(_FIRST_SWEEP, 2 * len(self._scopes))

    def _refuse(
        self, usage: _Usage, now: float, rpm: int | None, tpm: int | None, tokens: int
    ) -> Exception:
        """The refusal, with how long until enough usage leaves the window."""
        requests_wait = tokens_wait = None
        if rpm is not None and usage.requests >= rpm:
            requests_wait = self._wait_until_freed(usage, now, usage.requests - rpm + 1, 1)
        if tpm is not None and usage.tokens + tokens > tpm:
            tokens_wait = self._wait_until_freed(usage, now, usage.tokens + tokens - tpm, 2)
        return refusal(
            rpm=rpm,
            tpm=tpm,
            requests_used=usage.requests,
            tokens_used=usage.tokens,
            tokens=tokens,
            requests_wait=requests_wait,
            tokens_wait=tokens_wait,
            window=self.window,
        )

    def _wait_until_freed(self, usage: _Usage, now: float, needed: int, column: int) -> float:
        """Seconds until ``needed`` units of a column (1 requests, 2 tokens) leave the window."""
        freed = 0
        for entry in usage.buckets:
            freed += entry[column]
            if freed >= needed:
                return (entry[0] + self._buckets + 1) * self._bucket_seconds - now
        return math.inf


def _add(usage: _Usage, bucket: int, tokens: int) -> None:
    """One request of ``tokens`` into ``usage``'s newest bucket (a new one when it moved on)."""
    buckets = usage.buckets
    if buckets and buckets[-1][0] == bucket:
        newest = buckets[-1]
        newest[1] += 1
        newest[2] += tokens
    else:
        buckets.append([bucket, 1, tokens])
    usage.requests += 1
    usage.tokens += tokens
