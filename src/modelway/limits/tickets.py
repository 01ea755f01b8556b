"""What an admission hands back (a ``Ticket``) and the words and headers of a rate limit.

Shared by the memory and Redis limiters so both answer with the same headers and the
same refusal. Header names are OpenAI's; reset values use OpenAI's duration style
(``"250ms"``, ``"59.5s"``, ``"6m0s"``).
"""

from __future__ import annotations

import math
from typing import Protocol

import msgspec

from modelway.errors import RateLimited


class Ticket(msgspec.Struct, gc=False):
    """One admitted request: the tokens it reserved and the numbers for its response headers.

    ``*_used`` count this request; ``reset`` is the seconds until the oldest usage still
    counted leaves the window (when the remaining amounts next grow).
    """

    scope: str
    #: The window bucket the reservation was recorded in (settle refunds it there).
    bucket: int = 0
    #: Tokens reserved so far; ``settle`` moves it to the real usage.
    tokens: int = 0
    request_limit: int | None = None
    requests_used: int = 0
    token_limit: int | None = None
    tokens_used: int = 0
    reset: float = 0.0
    #: Admitted by this replica's memory while the shared limiter (Redis) was unreachable.
    local: bool = False
    #: Just after such an outage, the same request counted against this replica's share
    #: in memory too (``RedisLimiter``): settled with it.
    beside: Ticket | None = None

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        """``x-ratelimit-*`` response headers for the limits the scope has (none if unlimited)."""
        if self.request_limit is None and self.token_limit is None:
            return []
        reset = format_reset(self.reset).encode()
        headers: list[tuple[bytes, bytes]] = []
        if self.request_limit is not None:
            remaining = max(0, self.request_limit - self.requests_used)
            headers += (
                (b"x-ratelimit-limit-requests", b"%d" % self.request_limit),
                (b"x-ratelimit-remaining-requests", b"%d" % remaining),
                (b"x-ratelimit-reset-requests", reset),
            )
        if self.token_limit is not None:
            remaining = max(0, self.token_limit - self.tokens_used)
            headers += (
                (b"x-ratelimit-limit-tokens", b"%d" % self.token_limit),
                (b"x-ratelimit-remaining-tokens", b"%d" % remaining),
                (b"x-ratelimit-reset-tokens", reset),
            )
        return headers


#: What a scope with no limits gets: shared, carries no headers, settles to nothing.
UNLIMITED = Ticket("")


class RateLimiter(Protocol):
    """Sliding-window requests-per-minute and tokens-per-minute limits per scope."""

    async def admit(
        self, scope: str, *, rpm: int | None = None, tpm: int | None = None, tokens: int = 0
    ) -> Ticket:
        """Count one request reserving ``tokens``, or raise ``RateLimited`` and count nothing."""
        ...

    async def settle(self, ticket: Ticket, actual_tokens: int) -> None:
        """Replace the ticket's token reservation by the real usage (refund or charge more)."""
        ...


def format_reset(seconds: float) -> str:
    """A duration in OpenAI's header style: ``"0s"``, ``"250ms"``, ``"59.5s"``, ``"6m0s"``."""
    if seconds <= 0:
        return "0s"
    milliseconds = math.ceil(seconds * 1000 - 1e-6)  # 0.001 * 1000 is 1.0000000000000002
    if milliseconds < 1000:
        return f"{milliseconds}ms"
    if milliseconds < 60_000:
        return "%gs" % (milliseconds / 1000)
    minutes, milliseconds = divmod(milliseconds, 60_000)
    hours, minutes = divmod(minutes, 60)
    text = "%gs" % (milliseconds / 1000)
    if hours:
        return f"{hours}h{minutes}m{text}"
    return f"{minutes}m{text}"


def refusal(
    *,
    rpm: int | None,
    tpm: int | None,
    requests_used: int,
    tokens_used: int,
    tokens: int,
    requests_wait: float | None,
    tokens_wait: float | None,
    window: float,
) -> RateLimited:
    """The error for a refused admission; ``*_wait`` is None for a limit that was not hit.

    A request larger than the whole token limit, or a limit of 0, can never pass: no
    ``retry_after`` then.
    """
    per = "minute" if window == 60 else f"{window:g} seconds"
    if tpm and tokens > tpm:  # a limit of 0 is no limit of size: no request passes it
        error = RateLimited(
            f"Request too large: it needs {tokens} tokens and the limit is {tpm} tokens "
            f"per {per}. Send a shorter request.",
            retry_after=None,
        )
        error.limit = "request_too_large"
        return _with_headers(error, rpm, tpm, requests_used, tokens_used, 0.0)
    parts = []
    hit = [
        name
        for name, wait in (("requests", requests_wait), ("tokens", tokens_wait))
        if wait is not None
    ]
    if requests_wait is not None:
        parts.append(f"requests per {per}: limit {rpm}, used {requests_used}, requested 1")
    if tokens_wait is not None:
        parts.append(f"tokens per {per}: limit {tpm}, used {tokens_used}, requested {tokens}")
    wait = max(requests_wait or 0.0, tokens_wait or 0.0)
    if math.isinf(wait):  # a limit of 0: no amount of waiting helps
        error = RateLimited(f"Rate limit reached on {'; '.join(parts)}.", retry_after=None)
        error.limit = ",".join(hit)
        return _with_headers(error, rpm, tpm, requests_used, tokens_used, 0.0)
    error = RateLimited(
        f"Rate limit reached on {'; '.join(parts)}. Please try again in {format_reset(wait)}.",
        retry_after=math.ceil(wait * 1000) / 1000,
    )
    error.limit = ",".join(hit)
    return _with_headers(error, rpm, tpm, requests_used, tokens_used, wait)


def _with_headers(
    error: RateLimited,
    rpm: int | None,
    tpm: int | None,
    requests_used: int,
    tokens_used: int,
    reset: float,
) -> RateLimited:
    # A refusal shows the same x-ratelimit-* headers an admitted request would.
    state = Ticket("", 0, 0, rpm, requests_used, tpm, tokens_used, reset)
    error.rate_limit_headers = state.headers
    return error
