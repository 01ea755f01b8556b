"""Spending budgets per scope and period (UTC day, UTC month, all time), kept in memory.

A budget is checked before a call and charged after it, so a call that starts under the
limit may finish over it; the next one is refused.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Literal, Protocol

from modelway.errors import BudgetExceeded

Period = Literal["day", "month", "total"]
PERIODS: tuple[Period, ...] = ("day", "month", "total")
#: Fills a scope's current period window from the spend on file: reads it, then ``seed``s
#: (``calls.spending.Spending.seed``).
Refill = Callable[[str, Period], Awaitable[None]]
_PERIOD_WORDS = {"day": "daily", "month": "monthly", "total": "total"}


class BudgetLedger(Protocol):
    """Spend per scope and period: refuse when a limit is reached, add after a call."""

    #: Fills a window the ledger does not hold from the spend on file, when it can lose
    #: what it counted (Redis); None in memory, seeded at start instead.
    refill: Refill | None

    async def check(
        self, scope: str, *, usd: float | None = None, tokens: int | None = None, period: Period
    ) -> None:
        """Raise ``BudgetExceeded`` when this period's spend has reached a limit."""
        ...

    async def charge(self, scope: str, *, usd: float, tokens: int, period: Period) -> None:
        """Add a finished call's cost and tokens to this period's spend."""
        ...

    async def seed(self, scope: str, period: Period, usd: float, tokens: int) -> None:
        """Start this period's spend from stored usage (at start, or a budget changed),
        never below what is already counted in the window."""
        ...


class PeriodWindow:
    """The current window of each period (``"2026-11-23"``, ``"2026-11"``, ``"total"``).

    Cached until the window ends, so the hot path compares one float per check.
    """

    __slots__ = ("_cache", "_clock")

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._cache: dict[Period, tuple[str, float]] = {}

    def current(self, period: Period) -> tuple[str, float]:
        """The window's name and the epoch second it ends at (infinity for ``total``)."""
        now = self._clock()
        cached = self._cache.get(period)
        if cached is not None and now < cached[1]:
            return cached
        window = self._cache[period] = _window_at(period, now)
        return window

    def seconds_left(self, period: Period) -> float | None:
        """Seconds until the period's window rolls over; None for ``total``."""
        ends = self.current(period)[1]
        return None if ends == float("inf") else max(0.0, ends - self._clock())


def period_starts(now: float) -> dict[str, float]:
    """The epoch seconds the current UTC ``day`` and ``month`` began (``total``: 0)."""
    moment = datetime.fromtimestamp(now, UTC)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return {"day": day.timestamp(), "month": day.replace(day=1).timestamp(), "total": 0.0}


def _window_at(period: Period, now: float) -> tuple[str, float]:
    moment = datetime.fromtimestamp(now, UTC)
    if period == "day":
        start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        return start.strftime("%Y-%m-%d"), (start + timedelta(days=1)).timestamp()
    if period == "month":
        start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        following = (start + timedelta(days=32)).replace(day=1)
        return start.strftime("%Y-%m"), following.timestamp()
    if period == "total":
        return "total", float("inf")
    raise ValueError(f"unknown budget period {period!r}; use one of {', '.join(PERIODS)}")


def exceeded(
    period: Period,
    *,
    usd_limit: float | None,
    tokens_limit: int | None,
    usd_spent: float,
    tokens_spent: int,
    windows: PeriodWindow,
) -> BudgetExceeded | None:
    """The refusal when a limit is reached, else None; names the period and limit, no scope."""
    word = _PERIOD_WORDS[period]
    if usd_limit == 0 or tokens_limit == 0:
        # Nothing to renew: no period ever lets a call through.
        nothing = dollars(0) if usd_limit == 0 else "0 tokens"
        return BudgetExceeded(f"The {word} budget is {nothing}: no call may spend.")
    if usd_limit is not None and usd_spent >= usd_limit:
        used_up = (
            f"The {word} budget of {dollars(usd_limit)} is used up (spent {dollars(usd_spent)})"
        )
    elif tokens_limit is not None and tokens_spent >= tokens_limit:
        used_up = (
            f"The {word} budget of {tokens_limit:,} tokens is used up "
            f"(used {tokens_spent:,} tokens)"
        )
    else:
        return None
    if period == "total":
        return BudgetExceeded(used_up + ".", retry_after=None)
    when = "tomorrow" if period == "day" else "next month"
    return BudgetExceeded(
        f"{used_up}; it renews {when} at 00:00 UTC.", retry_after=windows.seconds_left(period)
    )


class _Spend:
    __slots__ = ("tokens", "usd", "window")

    def __init__(self, window: str, usd: float = 0.0, tokens: int = 0) -> None:
        self.window = window
        self.usd = usd
        self.tokens = tokens


_NOTHING_SPENT = _Spend("")


class BudgetBook:
    """Budgets in this process's memory; fill it from stored usage at start with ``seed``."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._windows = PeriodWindow(clock)
        self._spend: dict[tuple[str, Period], _Spend] = {}
        self.refill: Refill | None = None  # seeded at start: this process counts all

    async def check(
        self, scope: str, *, usd: float | None = None, tokens: int | None = None, period: Period
    ) -> None:
        """Raise ``BudgetExceeded`` when this period's spend has reached a limit."""
        if usd is None and tokens is None:
            return
        # Nothing counted yet is nothing spent: a budget of 0 is used up all the same.
        spend = self._current(scope, period) or _NOTHING_SPENT
        refusal = exceeded(
            period,
            usd_limit=usd,
            tokens_limit=tokens,
            usd_spent=spend.usd,
            tokens_spent=spend.tokens,
            windows=self._windows,
        )
        if refusal is not None:
            raise refusal

    async def charge(self, scope: str, *, usd: float, tokens: int, period: Period) -> None:
        """Add a finished call's cost and tokens to this period's spend."""
        spend = self._current(scope, period)
        if spend is None:
            spend = self._spend[scope, period] = _Spend(self._windows.current(period)[0])
        spend.usd += usd
        spend.tokens += tokens

    async def seed(self, scope: str, period: Period, usd: float, tokens: int) -> None:
        """Start this period's spend from stored usage (at start, or when a key's budget
        changes). What this process already counted in the window is kept where it is
        more: the store lags the batched usage writer by a second or two, and spend only
        grows, so the larger of the two is the nearer to the truth."""
        window = self._windows.current(period)[0]
        held = self._current(scope, period)
        if held is not None:
            usd, tokens = max(usd, held.usd), max(tokens, held.tokens)
        self._spend[scope, period] = _Spend(window, usd, tokens)

    def _current(self, scope: str, period: Period) -> _Spend | None:
        """The spend of the current window; a past window's is dropped."""
        window = self._windows.current(period)[0]
        spend = self._spend.get((scope, period))
        if spend is not None and spend.window != window:
            del self._spend[scope, period]
            return None
        return spend


def dollars(amount: float) -> str:
    """ "$1,234.50"; an amount under a cent with its first significant digits ("$0.00012")."""
    if amount == 0 or abs(amount) >= 0.01:
        return f"${amount:,.2f}"
    # Two significant digits written out in full (1e-09: "$0.000000001", never "$0.").
    return "$" + format(Decimal(f"{amount:.2g}"), "f")
