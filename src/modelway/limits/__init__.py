"""Rate limits (sliding-window RPM/TPM per scope) and spending budgets, in memory or Redis.

    limits = Limits.from_environment(redis_url)     # memory when None
    ticket = await limits.rates.admit("key:42", rpm=60, tpm=90_000, tokens=estimate)
    await limits.budgets.check("key:42", usd=10.0, period="day")
    ...                                              # the call
    await limits.rates.settle(ticket, actual_tokens)
    await limits.budgets.charge("key:42", usd=cost, tokens=actual_tokens, period="day")

See docs/limits.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from modelway.limits.backends import Limits
from modelway.limits.budgets import PERIODS, BudgetBook, BudgetLedger, Period
from modelway.limits.memory_rates import MemoryLimiter
from modelway.limits.tickets import UNLIMITED, RateLimiter, Ticket, format_reset

if TYPE_CHECKING:
    from modelway.limits.redis_budgets import RedisBudgetBook
    from modelway.limits.redis_rates import RedisLimiter

#: Imported on first use: redis.asyncio costs ~20 MB resident, and most gateways run
#: without REDIS_URL.
_REDIS_NAMES = {
    "RedisBudgetBook": "modelway.limits.redis_budgets",
    "RedisLimiter": "modelway.limits.redis_rates",
}

__all__ = [
    "PERIODS",
    "UNLIMITED",
    "BudgetBook",
    "BudgetLedger",
    "Limits",
    "MemoryLimiter",
    "Period",
    "RateLimiter",
    "RedisBudgetBook",
    "RedisLimiter",
    "Ticket",
    "format_reset",
]


def __getattr__(name: str) -> object:
    """The Redis-backed classes, imported (with redis) only when someone asks for them."""
    module = _REDIS_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
