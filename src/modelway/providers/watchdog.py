"""Times the reads of one upstream stream with one timer per quiet period.

``asyncio.timeout`` around every read costs a timer handle per chunk; a stream of
thousands of chunks pays that thousands of times. The watchdog instead notes when
each read starts and keeps one timer that fires at the earliest moment a limit could
run out; only then does it cancel the read (never the caller's work between reads).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """The part of an event loop the watchdog uses: its time and its timers."""

    def time(self) -> float: ...
    def call_at(self, when: float, callback: Callable[[], object], /) -> Timer: ...


class ReadWatchdog:
    """First-token, stall and total limits for the reads of one stream.

    Until the first chunk arrives a read may wait ``first_token`` seconds; after it,
    ``stall`` seconds. Which of the two ran out is told by whether a chunk came, never
    by comparing the limits (they may well be equal). ``total`` counts from ``started``
    (on ``clock``: when the attempt sent its request, so its head's wait counts too),
    or from now. ``clock`` is the running loop unless given (tests pass one they move
    by hand).
    """

    def __init__(
        self,
        first_token: float,
        stall: float,
        total: float,
        clock: Clock | None = None,
        *,
        started: float | None = None,
    ) -> None:
        self._clock: Clock = clock if clock is not None else asyncio.get_running_loop()
        now = self._clock.time()
        self._deadline = (now if started is None else started) + total
        self._first_token = first_token
        self._stall = stall
        self._total = total
        self._limit = first_token
        self._first_chunk_came = False
        self._read_started = now
        self._reader: asyncio.Task[object] | None = None
        #: What ran out, once something has; the read that was waiting is cancelled.
        self.expired: str | None = None
        self._handle = self._clock.call_at(min(now + first_token, self._deadline), self._check)

    def reading(self) -> None:
        """A read is about to wait; ``TimeoutError`` if the total time is already spent."""
        now = self._clock.time()
        if now >= self._deadline:
            self.expired = f"the whole answer ({self._total:g} s total)"
            raise TimeoutError
        self._read_started = now
        self._reader = asyncio.current_task()

    def received(self) -> None:
        """The read returned a chunk; from now on the limit is the stall between chunks."""
        self._reader = None
        if not self._first_chunk_came:
            # Once, at the first chunk: the timer was set for the first-token limit.
            self._first_chunk_came = True
            self._limit = self._stall
            self._handle.cancel()
            due = min(self._clock.time() + self._stall, self._deadline)
            self._handle = self._clock.call_at(due, self._check)

    def close(self) -> None:
        self._handle.cancel()

    def _check(self) -> None:
        now = self._clock.time()
        if self._reader is not None:
            if now >= self._deadline:
                self._expire(f"the whole answer ({self._total:g} s total)")
                return
            if now - self._read_started >= self._limit:
                self._expire(self._phase())
                return
            due = self._read_started + self._limit
        else:
            due = now + self._limit
        self._handle = self._clock.call_at(min(due, self._deadline), self._check)

    def _phase(self) -> str:
        if self._first_chunk_came:
            return f"the next chunk ({self._stall:g} s stall)"
        return f"the first token ({self._first_token:g} s)"

    def _expire(self, phase: str) -> None:
        self.expired = phase
        assert self._reader is not None
        self._reader.cancel()
