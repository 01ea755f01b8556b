"""Slots for Argon2 runs: a bounded number at once, a bounded line, the unsuspected first.

Hand-written because ``asyncio.Semaphore`` has one first-come line: a flood of wrong
keys from many addresses would fill it, and a new key from a clean address would wait
behind all of them, or be turned away. Here a waiter whose address has not failed
recently (``suspect=False``) goes before every suspected one, and when the line is full
it takes the place of the newest suspected waiter, who is told to come back later.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator

from modelway.errors import ServerBusy

BUSY = "too many API keys are being checked at once; try again shortly"
#: Seconds a caller turned away for a full line is asked to wait before trying again.
BUSY_RETRY_AFTER = 1.0


class CheckQueue:
    """``async with queue.slot(suspect):`` runs the block in one of ``concurrent`` slots.

    At most ``waiting`` callers wait; past that, ``ServerBusy`` (503) at once. Invariant:
    a slot is free only while nobody waits.
    """

    def __init__(self, concurrent: int, waiting: int) -> None:
        self._free = concurrent
        self._max_waiting = waiting
        self._trusted: deque[asyncio.Future[None]] = deque()
        self._suspected: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        """Callers waiting for a slot right now."""
        return len(self._trusted) + len(self._suspected)

    @contextlib.asynccontextmanager
    async def slot(self, suspect: bool) -> AsyncIterator[None]:
        """Hold a slot for the block; trusted waiters are served before suspected ones."""
        await self._acquire(suspect)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, suspect: bool) -> None:
        if self._free:
            self._free -= 1
            return
        if self.waiting >= self._max_waiting and (suspect or not self._turn_away_a_suspect()):
            raise ServerBusy(BUSY, retry_after=BUSY_RETRY_AFTER)
        line = self._suspected if suspect else self._trusted
        turn = asyncio.get_running_loop().create_future()
        line.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self._release()  # handed a slot just as the waiter went: pass it on
            elif turn in line:
                line.remove(turn)
            raise

    def _turn_away_a_suspect(self) -> bool:
        """Make room in the line by sending the newest suspected waiter away."""
        while self._suspected:
            turn = self._suspected.pop()
            if not turn.done():
                turn.set_exception(ServerBusy(BUSY, retry_after=BUSY_RETRY_AFTER))
                return True
        return False

    def _release(self) -> None:
        for line in (self._trusted, self._suspected):
            while line:
                turn = line.popleft()
                if not turn.done():  # a cancelled waiter's turn is skipped
                    turn.set_result(None)
                    return
        self._free += 1
