"""Steps that must run to their end even when the task awaiting them is cancelled."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class Finisher:
    """Runs such steps (settling a call, saving a stopped reply) and waits for them at shutdown.

    A caller that hangs up may be noticed twice (a failed write, then the disconnect), so
    the task doing the cleanup can be cancelled a second time while it saves or settles:
    the step then goes on in its own task, which ``drain`` waits for before the store closes.
    """

    def __init__(self) -> None:
        self._running: set[asyncio.Task[Any]] = set()

    async def run(self, step: Coroutine[Any, Any, T]) -> T:
        """Await ``step``; if the awaiting task is cancelled, ``step`` still finishes."""
        task = asyncio.ensure_future(step)
        self._running.add(task)  # the loop keeps only a weak reference to a task
        task.add_done_callback(self._running.discard)
        return await asyncio.shield(task)

    async def drain(self) -> None:
        """Wait for the steps still finishing on their own."""
        while self._running:
            await asyncio.wait(set(self._running))
