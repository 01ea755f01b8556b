"""What admitting and settling a call needs for a process's lifetime: limits, budgets, prices.

Admission for a caller with a key: model allowed? → budget left (key, then its team)?
→ RPM/TPM (tokens reserved from an estimate). Settlement: the reservation settled with
the real token count, the cost charged to the budgets (``spending``: which budgets is
decided as the call's record is queued). Nothing on the request path awaits the store;
seeding a budget reads it (``seed_budgets``, ``seed_key_budget``).
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from typing import Any, Protocol

from modelway.calls.caller import Caller
from modelway.calls.spending import Charge, Spending, SpendOnFile
from modelway.calls.team_budgets import TeamBudgets
from modelway.config import LimitSettings, Price, TeamBudget
from modelway.errors import UnpricedModel
from modelway.limits import UNLIMITED, Limits, Ticket
from modelway.limits.budgets import Period
from modelway.pricing import price_for, price_table, priced_cost
from modelway.store import Store
from modelway.store.records import KeyRecord, UsageRecord
from modelway.tokens import BYTES_PER_TOKEN
from modelway.types import Usage

log = logging.getLogger("modelway.usage")
#: Bytes per token for the admission estimate (a reservation, settled with real usage).
_PRICE_CACHE_SIZE = 4096
#: Models without a price said in the log, each once, before the gateway stops saying.
_UNPRICED_SAID = 20


class UsageRecorder(Protocol):
    """Where usage records go: the batched store writer, or a client's own tally."""

    def record(self, record: UsageRecord) -> None: ...

    async def aclose(self) -> None:
        """Flush what is still held (at shutdown)."""
        ...


def token_estimate(request_bytes: int, max_tokens: int | None) -> int:
    """Tokens a call is taken to use before it ran, reserved against a TPM limit (a key's,
    a deployment's) and settled with its real usage: its body's size in tokens and the
    most it may write."""
    return request_bytes // BYTES_PER_TOKEN + (max_tokens or 0)


class Accounts:
    """Limits, budgets, prices and the recorder every metered call of a process shares."""

    def __init__(
        self,
        limits: Limits,
        recorder: UsageRecorder,
        prices: Mapping[str, Price],
        team_budgets: Sequence[TeamBudget] = (),
        key_limits: LimitSettings | None = None,
        on_file: SpendOnFile | None = None,
    ) -> None:
        """``on_file``: where budgets are seeded from (the usage writer; None: nothing is
        on file, as for the library)."""
        self.limits = limits
        #: The config's ``limits``: the RPM and TPM of a key that sets none of its own.
        self.key_limits = key_limits or LimitSettings()
        self.recorder = recorder
        self.prices = prices
        #: Config and store team budgets (``team_budgets``), refreshed by the gateway.
        self.team_budgets = TeamBudgets(team_budgets)
        #: Budget charges and seeds, ordered so each call counts once.
        self.spending = Spending(limits, on_file)
        self._prices: dict[tuple[str, str], Price | None] = {}
        self._unpriced_said = 0

    async def aclose(self) -> None:
        """Flush the recorder, then close the limits' connections."""
        try:
            await self.recorder.aclose()
        finally:
            await self.limits.aclose()

    def cost(self, provider: str, model: str, usage: Usage) -> float | None:
        """USD for ``usage``; None when the model has no price (its cost is unknown)."""
        try:
            price = self._prices[provider, model]
        except KeyError:
            price = self._price(provider, model)
        return priced_cost(price, provider, usage)

    def _price(self, provider: str, model: str) -> Price | None:
        """The model's price, looked up once (None: none, or a local provider's model)."""
        key = (provider, model)
        try:
            return self._prices[key]
        except KeyError:
            if len(self._prices) > _PRICE_CACHE_SIZE:
                self._prices.clear()  # model names come from callers: keep it bounded
            price = self._prices[key] = price_for(provider, model, self.prices)
            if price is None and provider not in price_table().free_providers:
                self._unpriced(provider, model)
            return price

    def usd_budgeted(self, caller: Caller) -> bool:
        """Whether the caller's key, or its key's team, has a USD budget."""
        key = caller.key
        if key is None:
            return False
        if key.budget_usd is not None:
            return True
        team = self.team_budgets.get(key.owner_team or "")
        return team is not None and team.usd is not None

    def refuse_unpriced(self, targets: Iterable[tuple[str, str]]) -> None:
        """``UnpricedModel`` when any of ``targets`` (provider, model) has no price, for a
        caller that is ``usd_budgeted``: what such a call spends could not be counted
        against its budget, which would then not hold."""
        free = price_table().free_providers
        unpriced = [
            f"{provider}/{model}"
            for provider, model in targets
            if provider not in free and self._price(provider, model) is None
        ]
        if unpriced:
            named = ", ".join(dict.fromkeys(unpriced))
            raise UnpricedModel(
                f"model {named} has no price, and this key (or its team) has a USD budget "
                "that could not count what a call to it costs; the gateway's operator can "
                f"give it one under prices: in modelway.yaml ({named}: {{input_per_million: "
                "..., output_per_million: ...}, docs/keys-and-usage.md#pricing)"
            )

    def _unpriced(self, provider: str, model: str) -> None:
        """Say once per model that it has no price; the first ``_UNPRICED_SAID`` models
        only (model names are callers': a line each would let them fill the log)."""
        said = self._unpriced_said
        if said > _UNPRICED_SAID:
            return
        self._unpriced_said = said + 1
        if said == _UNPRICED_SAID:
            log.warning("more models have no price; not said again until a restart")
            return
        log.warning(
            "no price for %s/%s: its calls are recorded as unpriced (cost unknown, not "
            "counted toward USD budgets) and refused to keys and teams with a USD budget; "
            "give it one under prices: in the config",
            provider,
            model,
            extra={"provider": provider, "model": model},
        )

    async def admit(
        self, caller: Caller, model: str, request_bytes: int, max_tokens: int | None
    ) -> Ticket:
        """Refuse (``PermissionDenied``, ``BudgetExceeded``, ``RateLimited``) or reserve."""
        key = caller.key
        if key is None:
            return UNLIMITED
        caller.check_model(model)
        scope = f"key:{key.id}"
        limits = self.limits
        if key.budget_usd is not None or key.budget_tokens is not None:
            await limits.budgets.check(
                scope, usd=key.budget_usd, tokens=key.budget_tokens, period=key.budget_period
            )
        team = self.team_budgets.get(key.owner_team or "")
        if team is not None:
            await limits.budgets.check(
                f"team:{team.team}", usd=team.usd, tokens=team.tokens, period=team.period
            )
        rpm, tpm = self._rates(key)
        if rpm is None and tpm is None:
            return UNLIMITED
        estimate = token_estimate(request_bytes, max_tokens)
        return await limits.rates.admit(scope, rpm=rpm, tpm=tpm, tokens=estimate)

    async def admit_request(self, caller: Caller) -> Ticket:
        """Count a request that asks no model (a Responses answer read back: the provider is
        asked all the same) as one against the caller's key's RPM; refused
        (``RateLimited``) past its RPM or a TPM already spent, as a call would be."""
        key = caller.key
        if key is None:
            return UNLIMITED
        rpm, tpm = self._rates(key)
        if rpm is None and tpm is None:
            return UNLIMITED
        return await self.limits.rates.admit(f"key:{key.id}", rpm=rpm, tpm=tpm, tokens=0)

    def _rates(self, key: KeyRecord) -> tuple[int | None, int | None]:
        """The key's RPM and TPM: its own, else the config's ``limits``."""
        rpm = key.rpm if key.rpm is not None else self.key_limits.rpm
        tpm = key.tpm if key.tpm is not None else self.key_limits.tpm
        return rpm, tpm

    def settle(
        self, caller: Caller, tickets: Sequence[Ticket], usage: Usage, cost: float | None
    ) -> Coroutine[Any, Any, None]:
        """Settle reservations with the real token count and charge the caller's budgets
        (an unknown cost, None, charges only tokens: ``refuse_unpriced`` kept USD budgets
        from such calls, but a budget set while one ran meets its end).

        Call it as the call's usage record is queued: the budgets charged are chosen then,
        before the returned coroutine first runs (``Spending.charging``)."""
        key = caller.key
        charges = self.spending.charging(self._budgets(key)) if key is not None else []
        return self._settle(tickets, usage.total_tokens, cost or 0.0, charges)

    def _budgets(self, key: KeyRecord) -> list[tuple[str, Period]]:
        """The budget scopes a call of ``key`` counts toward: its own, then its team's."""
        budgets: list[tuple[str, Period]] = []
        if key.budget_usd is not None or key.budget_tokens is not None:
            budgets.append((f"key:{key.id}", key.budget_period))
        team = self.team_budgets.get(key.owner_team or "")
        if team is not None:
            budgets.append((f"team:{team.team}", team.period))
        return budgets

    async def _settle(
        self, tickets: Sequence[Ticket], tokens: int, cost: float, charges: list[Charge]
    ) -> None:
        try:
            for ticket in tickets:
                if ticket is not UNLIMITED:
                    await self.limits.rates.settle(ticket, tokens)
        except Exception:
            # The answer was delivered; a limits store hiccup must not turn it into an error.
            log.warning("could not settle limits for a call", exc_info=True)
        if charges:
            await self.spending.charge(charges, usd=cost, tokens=tokens)


async def seed_budgets(
    store: Store, accounts: Accounts, team_budgets: Sequence[TeamBudget]
) -> None:
    """Start every budget's current period from the spend on file.

    In memory this sets each spend at start. Redis keeps its own across restarts, and a
    window it does not hold (flushed, restarted without its data, new to an install, a
    new day) is filled from the spend on file the first time a check misses it
    (``RedisBudgetBook.refill``).
    """
    limits = accounts.limits
    if limits.backend != "memory":
        # The store is the ledger of record, Redis a shared counter that can lose its data.
        limits.budgets.refill = accounts.spending.seed
        return
    for key in await store.keys.list(include_revoked=False):
        await seed_key_budget(accounts, key)
    for team in team_budgets:
        await accounts.spending.seed(f"team:{team.team}", team.period)


async def seed_key_budget(accounts: Accounts, key: KeyRecord) -> None:
    """Start one key's budget from its spend on file this period (at start, after an edit)."""
    if key.budget_usd is None and key.budget_tokens is None:
        return
    await accounts.spending.seed(f"key:{key.id}", key.budget_period)
