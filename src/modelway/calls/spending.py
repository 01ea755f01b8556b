"""Budget spend: seeded from the spend on file, charged after each call, each call once.

A budget's spend in its period starts from what is on file (``seed``): when the gateway
starts, when a budget is set or changed, when Redis does not hold a window
(``RedisBudgetBook.refill``). Every call is then charged to it. What is on file is the
store plus the usage records this process has not stored yet (``UsageWriter.spend``):
the batched writer stores a record up to a second or so after its call (longer under
load or while the store is down), and a budget set in that second must count the call.

Each call has to count in exactly one of the two, the reading or a charge:

- the budgets a call is charged to are chosen as its record is queued (``charging``),
  before anything awaits, so the reading holds every call that was not charged;
- a seed waits for the charges on their way when it read (their calls are in the
  reading, and a ledger's seed keeps the larger of what it counted and what is on file),
  and the charges of calls recorded after the reading wait for the seed (Redis would
  otherwise take the two in either order, and the seed would swallow them).

In memory nothing waits: a charge never suspends, so it lands as its record is queued.
Another process's calls not stored yet cannot be seen: docs/limits.md says what that
leaves to the replicas sharing Redis.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol

from modelway.limits import Limits
from modelway.limits.budgets import Period, period_starts

log = logging.getLogger("modelway.usage")

#: How long a seed waits for the charges on their way when it read (seconds); past it,
#: it goes ahead (one of them may then count twice) and forgets them.
CHARGES_WAIT = 2.0


class SpendOnFile(Protocol):
    """What budgets are seeded from: the store and this process's records not stored yet
    (``UsageWriter.spend``)."""

    async def spend(
        self, *, key_id: str | None = None, team: str | None = None, since: float | None = None
    ) -> tuple[float, int]: ...


class Charge(NamedTuple):
    """One budget a finished call is charged to, chosen as its record was queued."""

    scope: str
    period: Period
    #: The end of the seed that had read the scope's spend when the call was recorded.
    after_seed: asyncio.Future[None] | None


class _Seeds:
    """One scope's seeds, one at a time, and the charges that wait for the running one."""

    __slots__ = ("after", "drained", "turn", "users", "waiting")

    def __init__(self) -> None:
        self.turn = asyncio.Lock()
        self.users = 0  # seeds running or waiting for their turn
        self.after: asyncio.Future[None] | None = None  # set once the running one has read
        self.waiting = 0  # charges chosen since it read
        self.drained: asyncio.Future[None] | None = None  # it waits for charges on their way


class Spending:
    """Every budget scope's charges and seeds in this process, in the order that counts
    each call once."""

    def __init__(self, limits: Limits, on_file: SpendOnFile | None = None) -> None:
        self._ledger = limits.budgets
        self._on_file = on_file
        #: Charges chosen and free to land, not landed yet, per scope (only scopes with some).
        self._on_way: dict[str, int] = {}
        self._seeds: dict[str, _Seeds] = {}

    def charging(self, budgets: Sequence[tuple[str, Period]]) -> list[Charge]:
        """The charges of a call whose usage record is being queued: ``(scope, period)``
        of each budget it counts toward. Call it before anything awaits, then ``charge``."""
        charges = []
        for scope, period in budgets:
            seeds = self._seeds.get(scope)
            after = seeds.after if seeds is not None else None
            if seeds is not None and after is not None:
                seeds.waiting += 1
            else:
                self._on_way[scope] = self._on_way.get(scope, 0) + 1
            charges.append(Charge(scope, period, after))
        return charges

    async def charge(self, charges: Sequence[Charge], *, usd: float, tokens: int) -> None:
        """Add a finished call's cost and tokens to each budget in ``charges``, in order
        (a key's before its team's: a key's charge never waits behind a team's seed)."""
        for scope, period, after_seed in charges:
            try:
                if after_seed is not None:
                    await asyncio.shield(after_seed)  # shared: one caller leaving must not end it
                await self._ledger.charge(scope, usd=usd, tokens=tokens, period=period)
            except Exception:
                # The answer was delivered; a ledger's hiccup must not turn it into an error.
                log.warning("could not charge a call to its budget", exc_info=True)
            finally:
                if after_seed is None or after_seed.done():
                    self._landed(scope)
                else:  # its task ended while it waited (shutdown): the seed need not count it
                    seeds = self._seeds.get(scope)
                    if seeds is not None and seeds.after is after_seed:
                        seeds.waiting -= 1

    async def seed(
        self, scope: str, period: Period, *, then: Callable[[], None] | None = None
    ) -> None:
        """Start ``scope``'s spend this period from the spend on file. ``then`` runs the
        moment it is read, before anything awaits: a budget the process starts charging
        then (a new team's) counts every call once."""
        seeds = self._seeds.get(scope)
        if seeds is None:
            seeds = self._seeds[scope] = _Seeds()
        seeds.users += 1
        try:
            async with seeds.turn:
                usd, tokens = await self._read(scope, period)
                if then is not None:
                    then()
                after = seeds.after = asyncio.get_running_loop().create_future()
                try:
                    await self._charges_landed(scope, seeds)
                    await self._ledger.seed(scope, period, usd, tokens)
                finally:
                    # The charges that waited are on their way now: the next seed waits for them.
                    seeds.after = None
                    if seeds.waiting:
                        self._on_way[scope] = self._on_way.get(scope, 0) + seeds.waiting
                        seeds.waiting = 0
                    after.set_result(None)
        finally:
            seeds.users -= 1
            if not seeds.users:
                del self._seeds[scope]

    async def _read(self, scope: str, period: Period) -> tuple[float, int]:
        if self._on_file is None:
            return 0.0, 0  # nothing on file (the library keeps no store)
        kind, _, name = scope.partition(":")
        since = None if period == "total" else period_starts(time.time())[period]
        if kind == "team":
            return await self._on_file.spend(team=name, since=since)
        return await self._on_file.spend(key_id=name, since=since)

    async def _charges_landed(self, scope: str, seeds: _Seeds) -> None:
        """Wait until the scope's charges on their way have landed (their calls are in the
        reading), at most ``CHARGES_WAIT``."""
        if not self._on_way.get(scope):
            return
        drained = seeds.drained = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(CHARGES_WAIT):
                await drained
        except TimeoutError:
            log.warning("budget charges of %s did not land in time; seeding it anyway", scope)
            self._on_way.pop(scope, None)
        finally:
            seeds.drained = None

    def _landed(self, scope: str) -> None:
        left = self._on_way.get(scope, 0) - 1
        if left > 0:
            self._on_way[scope] = left
            return
        self._on_way.pop(scope, None)
        seeds = self._seeds.get(scope)
        if seeds is not None and seeds.drained is not None and not seeds.drained.done():
            seeds.drained.set_result(None)
