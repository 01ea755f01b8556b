"""Team budgets: the config's ``budgets:`` and the store's ``teams``, for admission to read.

Admission (``Accounts.admit``) reads a plain dict and never awaits the store. ``refresh``
re-reads the teams with a USD budget: every ``REFRESH_SECONDS`` on every worker
(``refreshing``, from the gateway's lifespan) and at once after an admin edit on the
worker that made it, so a new or changed team budget holds everywhere within 5 s, as a
key's edit does. A team in the store replaces a config entry of the same name.

A team's spend is the ledger scope ``team:<name>`` (``limits``), charged after every
call of a key whose ``owner_team`` is that team, as a key's own budget is. When a team
first gets a budget (or another period), its spend so far in the period is seeded from
the spend on file (``Spending.seed``), and the budget is charged from the moment that is
read: a call that ends meanwhile counts once, in the reading or charged. A replica that
has not read the budget yet charges nothing to it; its refresh's reading holds those
calls (docs/limits.md says what that leaves out).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Protocol

from modelway.background import in_background
from modelway.config import TeamBudget
from modelway.limits.budgets import Period
from modelway.outages import transient
from modelway.store import Store

log = logging.getLogger("modelway.usage")
#: Seconds between re-reads of the teams' budgets (a change holds everywhere within 5 s).
REFRESH_SECONDS = 4.0


class SeedBudget(Protocol):
    """``Spending.seed``: start a scope's spend from the spend on file; ``then`` runs as
    soon as it is read."""

    async def __call__(
        self, scope: str, period: Period, *, then: Callable[[], None] | None = None
    ) -> None: ...


class TeamBudgets:
    """The budget of each team that has one: ``get(team)``; ``refresh`` from the store."""

    def __init__(self, configured: Sequence[TeamBudget] = ()) -> None:
        self._configured = {budget.team: budget for budget in configured}
        self._budgets = dict(self._configured)
        self._refreshing = asyncio.Lock()

    def get(self, team: str) -> TeamBudget | None:
        """The team's budget, or None when it has none."""
        return self._budgets.get(team)

    def all(self) -> list[TeamBudget]:
        """Every team budget in force, by team name."""
        return [self._budgets[name] for name in sorted(self._budgets)]

    async def refresh(self, store: Store, seed: SeedBudget) -> None:
        """Re-read the store's team budgets; seed the spend of those new since the last
        read. One at a time: a slow one ending last must not undo a newer one."""
        async with self._refreshing:
            fresh = dict(self._configured)
            for name, usd, period in await store.teams.budgets():
                fresh[name] = TeamBudget(team=name, usd=usd, period=period)
            for name, budget in fresh.items():
                before = self._budgets.get(name)
                if name in self._configured and before is budget:
                    continue  # seeded at start (``seed_budgets``)
                if before is None or before.period != budget.period:
                    start = functools.partial(self._start, budget)
                    await seed(f"team:{name}", budget.period, then=start)
            self._budgets = fresh

    def _start(self, budget: TeamBudget) -> None:
        """Charge ``budget`` from now on (its spend on file has just been read)."""
        self._budgets = {**self._budgets, budget.team: budget}


@contextlib.asynccontextmanager
async def refreshing(
    budgets: TeamBudgets, store: Store, seed: SeedBudget, every: float = REFRESH_SECONDS
) -> AsyncIterator[None]:
    """Refresh ``budgets`` now and every ``every`` seconds while the context is open."""
    await budgets.refresh(store, seed)

    async def refresh() -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await budgets.refresh(store, seed)
            except Exception as error:  # the store is briefly down: keep the budgets we have
                if transient(error):
                    store.outage.failed(error)
                else:
                    log.warning("could not re-read the team budgets", exc_info=True)
            else:
                store.outage.succeeded()

    async with in_background(refresh()):
        yield
