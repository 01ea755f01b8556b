"""Requests in flight in this process: the first of identical ones runs, the rest wait.

The in-process half of "one request runs, its repeats wait for its answer", shared by
the response cache and idempotency keys (``responses.CachedCall``). A request ``take``s
its slot: the first to take it holds it, runs, and ``land``s it when it ends — with its
answer (the encoded entry) or None (failed, cancelled, not kept). Every other request
that takes the slot meanwhile gets the holder's future and ``wait``s for it, up to a
deadline; woken with None, it takes the slot again, so of all the waiters exactly one
runs next (the first the event loop wakes) and the others wait for that one.

One future per slot, none per waiter and no polling: a waiter costs the table nothing
until it is woken. Nothing here awaits but ``wait``, so ``take`` and ``land`` are atomic
in the event loop. Invariant: a slot is in the table exactly while the request that took
it has not landed it; a waiter leaving (cancelled, out of time) never touches it.
"""

from __future__ import annotations

import asyncio

from modelway.deadlines import deadline_at

#: A flight's slot: a namespace and a key in it, as the cache backend's.
Slot = tuple[str, str]
#: What a flight lands with: the first request's answer as stored, or None (none kept).
Flight = asyncio.Future[bytes | None]


class Flights:
    """One process's requests in flight, by slot (see the module docstring)."""

    __slots__ = ("_flying", "waiting")

    def __init__(self) -> None:
        self._flying: dict[Slot, Flight] = {}
        #: How many requests wait for another one now.
        self.waiting = 0

    def __len__(self) -> int:
        """How many slots are held now."""
        return len(self._flying)

    def take(self, slot: Slot) -> tuple[Flight, bool]:
        """The slot's flight, and whether the caller now holds it (then it must ``land`` it)."""
        flight = self._flying.get(slot)
        if flight is not None:
            return flight, False
        flight = self._flying[slot] = asyncio.get_running_loop().create_future()
        return flight, True

    def flying(self, slot: Slot) -> Flight | None:
        """The flight that holds ``slot`` in this process, if any (nothing taken)."""
        return self._flying.get(slot)

    def land(self, slot: Slot, flight: Flight, answer: bytes | None) -> None:
        """The holder of ``flight`` is done: its waiters get ``answer``. Once; later: nothing."""
        if self._flying.get(slot) is flight:
            del self._flying[slot]
        if not flight.done():
            flight.set_result(answer)

    async def wait(self, flight: Flight, until: float) -> bytes | None:
        """What ``flight`` lands with; ``TimeoutError`` past ``until`` (the loop's clock).

        Shielded: a waiter cancelled (its caller left) or out of time leaves the flight, and
        the request holding it, as they were.
        """
        if flight.done():
            return flight.result()
        self.waiting += 1
        try:
            async with deadline_at(until):
                return await asyncio.shield(flight)
        finally:
            self.waiting -= 1
