"""Waiting in tests: poll a condition until it holds or a deadline passes; never a fixed sleep.

The deadline is generous on purpose: a passing wait returns the moment its condition
holds, so only a failing test pays for it, and a machine kept busy by other work still
passes. Both helpers return the condition's (truthy) value, so a wait can also fetch.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

#: Seconds a test waits for something that should happen "soon" before failing.
WITHIN = 30.0


def wait_until(
    condition: Callable[[], T], *, within: float = WITHIN, every: float = 0.02, what: str = ""
) -> T:
    """Call ``condition`` until it returns something truthy (returned); fail after ``within`` s."""
    deadline = time.monotonic() + within
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(_never(condition, within, what, value))
        time.sleep(every)


async def eventually(
    condition: Callable[[], T | Awaitable[T]],
    *,
    within: float = WITHIN,
    every: float = 0.01,
    what: str = "",
) -> T:
    """``wait_until`` on the event loop, which runs between calls; ``condition`` may be async."""
    deadline = time.monotonic() + within
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(_never(condition, within, what, value))
        await asyncio.sleep(every)


def _never(condition: Callable[[], object], within: float, what: str, last: object) -> str:
    name = what or getattr(condition, "__qualname__", repr(condition))
    return f"{name} did not hold within {within:g} s (last value: {last!r})"
