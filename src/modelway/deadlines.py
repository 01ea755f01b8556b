"""Deadlines for many tasks on one event-loop timer: ``async with deadline_at(when):``.

``asyncio.timeout`` arms a timer handle when it is entered and cancels it when it is
left. A served chat call went through three of them (the request body, the upstream's
answer, its body), and under load that was about 9 % of a worker's throughput (uvloop
allocates, starts, stops and closes a libuv timer for each; docs/performance.md).
Nearly every such deadline is left long before it comes. So each event loop keeps the
open deadlines in one table and one timer, armed for the earliest of them: entering a
scope whose deadline is later than the armed one (the usual case: equal limits, later
starts) costs a dictionary entry, and when the timer does fire it expires what is due
and re-arms for the earliest left.

Semantics are ``asyncio.timeout_at``'s: when the deadline passes, the task in the scope
is cancelled and the scope raises ``TimeoutError`` in its place; a cancellation from
elsewhere stays a cancellation; ``None`` never expires.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from types import TracebackType


class _Deadlines:
    """One event loop's open deadlines and the one timer that watches them."""

    __slots__ = ("__weakref__", "_armed_at", "_handle", "_loop", "_open")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # Weakly: the table is the value of a weak mapping keyed by the loop.
        self._loop = weakref.ref(loop)
        self._open: dict[Deadline, None] = {}  # an ordered set
        self._handle: asyncio.TimerHandle | None = None
        self._armed_at = math.inf

    def add(self, scope: Deadline, when: float) -> None:
        self._open[scope] = None
        if when < self._armed_at:
            self._arm(when)

    def discard(self, scope: Deadline) -> None:
        self._open.pop(scope, None)

    def _arm(self, when: float) -> None:
        loop = self._loop()
        if loop is None or loop.is_closed():
            return
        if self._handle is not None:
            self._handle.cancel()
        self._handle = loop.call_at(when, self._fire)
        self._armed_at = when

    def _fire(self) -> None:
        self._handle = None
        self._armed_at = math.inf
        loop = self._loop()
        if loop is None:
            return
        now = loop.time()
        earliest = math.inf
        due: list[Deadline] = []
        for scope in self._open:
            when = scope.when
            assert when is not None
            if when <= now:
                due.append(scope)
            elif when < earliest:
                earliest = when
        for scope in due:
            del self._open[scope]
            scope.expire()
        if earliest < math.inf:
            self._arm(earliest)


_per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Deadlines] = (
    weakref.WeakKeyDictionary()
)


def _deadlines(loop: asyncio.AbstractEventLoop) -> _Deadlines:
    deadlines = _per_loop.get(loop)
    if deadlines is None:
        deadlines = _per_loop[loop] = _Deadlines(loop)
    return deadlines


class Deadline:
    """A scope that must end by ``when`` (the loop's clock); see the module."""

    __slots__ = ("_cancelling", "_owner", "_task", "expired", "when")

    def __init__(self, when: float | None) -> None:
        self.when = when
        #: Whether the deadline passed while the scope was open (its task was cancelled).
        self.expired = False
        self._task: asyncio.Task[object] | None = None
        self._owner: _Deadlines | None = None
        self._cancelling = 0

    async def __aenter__(self) -> Deadline:
        when = self.when
        if when is not None:
            task = asyncio.current_task()
            if task is None:
                raise RuntimeError("a deadline is for a task's code")
            self._task = task
            self._cancelling = task.cancelling()
            self._owner = _deadlines(task.get_loop())
            self._owner.add(self, when)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        owner = self._owner
        if owner is not None:
            owner.discard(self)
            self._owner = None
        task = self._task
        if self.expired and task is not None:
            self._task = None
            if task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
                raise TimeoutError from exc

    def expire(self) -> None:
        """The deadline passed: cancel the task in the scope (it raises ``TimeoutError``)."""
        if self._task is not None and not self.expired:
            self.expired = True
            self._task.cancel()


def deadline_at(when: float | None) -> Deadline:
    """``async with deadline_at(loop.time() + 5):`` — like ``asyncio.timeout_at``."""
    return Deadline(when)


def deadline_in(seconds: float | None) -> Deadline:
    """``async with deadline_in(5):`` — like ``asyncio.timeout``; needs a running loop."""
    if seconds is None:
        return Deadline(None)
    return Deadline(asyncio.get_running_loop().time() + seconds)
