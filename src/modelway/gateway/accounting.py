"""A request's account: admitted against its key's limits and budget, recorded once.

Pipeline order for a chat call: the ``Caller`` (set by ``AuthMiddleware``) → model
allowed? → budget left? → RPM/TPM admission (tokens reserved from an estimate) → the
call → one ``UsageRecord`` (queued for the batched writer), the reservation settled with
the real token count, the cost charged to the budget. Nothing here awaits the store.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from modelway.config import Price, TeamBudget
from modelway.engine import Outcome
from modelway.errors import ModelwayError
from modelway.gateway.auth import Caller
from modelway.limits import UNLIMITED, Limits, Ticket
from modelway.pricing import price_for, priced_cost
from modelway.store import Store
from modelway.store.records import UsageRecord
from modelway.store.writer import UsageWriter
from modelway.types import Usage

log = logging.getLogger("modelway.usage")
#: Bytes per token for the admission estimate (a reservation, settled with real usage).
BYTES_PER_TOKEN = 4
#: The status a record gets when the client hung up before the answer ended (nginx's).
CLIENT_CLOSED = 499
_PRICE_CACHE_SIZE = 4096


class Accounts:
    """What every ledger needs for the gateway's lifetime: limits, budgets, the writer."""

    def __init__(
        self,
        limits: Limits,
        writer: UsageWriter,
        prices: Mapping[str, Price],
        team_budgets: Sequence[TeamBudget] = (),
    ) -> None:
        self.limits = limits
        self.writer = writer
        self.prices = prices
        self.team_budgets = {budget.team: budget for budget in team_budgets}
        self._prices: dict[tuple[str, str], Price | None] = {}

    def cost(self, provider: str, model: str, usage: Usage) -> float:
        """USD for ``usage`` (0 when the price is unknown); prices are looked up once."""
        key = (provider, model)
        try:
            price = self._prices[key]
        except KeyError:
            if len(self._prices) > _PRICE_CACHE_SIZE:
                self._prices.clear()  # model names come from callers: keep it bounded
            price = self._prices[key] = price_for(provider, model, self.prices)
        return priced_cost(price, provider, usage) or 0.0

    def open(
        self, caller: Caller, request_id: str, dialect: str, model: str, stream: bool
    ) -> Ledger:
        return Ledger(self, caller, request_id, dialect, model, stream)


class Ledger:
    """One request from admission to its usage record; ``close`` runs exactly once."""

    __slots__ = (
        "_accounts",
        "_closed",
        "_first_byte_at",
        "_started",
        "_time",
        "alias",
        "caller",
        "dialect",
        "model",
        "outcome",
        "request_bytes",
        "request_id",
        "stream",
        "ticket",
    )

    def __init__(
        self,
        accounts: Accounts,
        caller: Caller,
        request_id: str,
        dialect: str,
        model: str,
        stream: bool,
    ) -> None:
        self._accounts = accounts
        self.caller = caller
        self.request_id = request_id
        self.dialect = dialect
        self.model = model
        self.stream = stream
        self.alias: str | None = None
        self.outcome: Outcome | None = None
        self.ticket: Ticket = UNLIMITED
        self.request_bytes = 0
        self._time = time.time()
        self._started = time.monotonic()
        self._first_byte_at: float | None = None
        self._closed = False

    async def admit(self, request_bytes: int, max_tokens: int | None) -> None:
        """Refuse (``PermissionDenied``, ``BudgetExceeded``, ``RateLimited``) or reserve."""
        self.request_bytes = request_bytes
        key = self.caller.key
        if key is None:
            return
        self.caller.check_model(self.model)
        scope = f"key:{key.id}"
        limits = self._accounts.limits
        if key.budget_usd is not None or key.budget_tokens is not None:
            await limits.budgets.check(
                scope, usd=key.budget_usd, tokens=key.budget_tokens, period=key.budget_period
            )
        team = self._accounts.team_budgets.get(key.owner_team or "")
        if team is not None:
            await limits.budgets.check(
                f"team:{team.team}", usd=team.usd, tokens=team.tokens, period=team.period
            )
        if key.rpm is not None or key.tpm is not None:
            estimate = request_bytes // BYTES_PER_TOKEN + (max_tokens or 0)
            self.ticket = await limits.rates.admit(scope, rpm=key.rpm, tpm=key.tpm, tokens=estimate)

    def first_byte(self) -> None:
        """The answer (or a stream's first bytes) is on its way to the caller."""
        if self._first_byte_at is None:
            self._first_byte_at = time.monotonic()

    async def close(
        self,
        status: int,
        usage: Usage | None = None,
        error: ModelwayError | None = None,
        answer_bytes: int = 0,
    ) -> None:
        """Record the request; settle its token reservation and charge its budget."""
        if self._closed:
            return
        self._closed = True
        now = time.monotonic()
        outcome = self.outcome
        if usage is None:
            # Nothing reached a provider (refused, unknown model, ...): no tokens were spent.
            usage = (
                Usage()
                if outcome is None
                else Usage(
                    prompt_tokens=self.request_bytes // BYTES_PER_TOKEN,
                    completion_tokens=answer_bytes // BYTES_PER_TOKEN,
                    estimated=True,
                )
            )
        provider = outcome.target.backend.name if outcome else None
        upstream_model = outcome.target.model if outcome else None
        cost = 0.0
        if provider is not None and upstream_model is not None:
            cost = self._accounts.cost(provider, upstream_model, usage)
        caller = self.caller
        self._accounts.writer.record(
            UsageRecord(
                request_id=self.request_id,
                time=self._time,
                key_id=caller.key_id,
                user=caller.user,
                team=caller.team,
                dialect=self.dialect,
                alias=self.alias or self.model,  # what the caller asked for
                provider=provider,
                model=upstream_model,
                status=status,
                error_type=None if error is None else type(error).__name__,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                cached_tokens=usage.cached_tokens,
                usage_estimated=usage.estimated,
                cost_usd=cost,
                latency_ms=(now - self._started) * 1000,
                ttft_ms=None
                if self._first_byte_at is None
                else (self._first_byte_at - self._started) * 1000,
                stream=self.stream,
                retries=max(0, outcome.attempts - 1) if outcome else 0,
                fallback_used=outcome.fallback if outcome else None,
            )
        )
        limits = self._accounts.limits
        key = caller.key
        try:
            if outcome is not None and outcome.deployment_ticket is not UNLIMITED:
                await limits.rates.settle(outcome.deployment_ticket, usage.total_tokens)
            if key is None:
                return
            if self.ticket is not UNLIMITED:
                await limits.rates.settle(self.ticket, usage.total_tokens)
            tokens = usage.total_tokens
            if key.budget_usd is not None or key.budget_tokens is not None:
                await limits.budgets.charge(
                    f"key:{key.id}", usd=cost, tokens=tokens, period=key.budget_period
                )
            team = self._accounts.team_budgets.get(key.owner_team or "")
            if team is not None:
                await limits.budgets.charge(
                    f"team:{team.team}", usd=cost, tokens=tokens, period=team.period
                )
        except Exception:
            # The answer was delivered; a limits store hiccup must not turn it into an error.
            log.warning("could not settle limits for request %s", self.request_id, exc_info=True)


def _period_starts() -> dict[str, float | None]:
    now = datetime.now(UTC)
    return {
        "day": now.replace(hour=0, minute=0, second=0, microsecond=0).timestamp(),
        "month": now.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp(),
        "total": None,
    }


async def seed_budgets(store: Store, limits: Limits, team_budgets: Sequence[TeamBudget]) -> None:
    """Start in-memory budgets from stored spend (Redis keeps its own across restarts)."""
    if limits.backend != "memory":
        return
    starts = _period_starts()
    for key in await store.keys.list(include_revoked=False):
        if key.budget_usd is None and key.budget_tokens is None:
            continue
        usd, tokens = await store.usage.spend(key_id=key.id, since=starts[key.budget_period])
        await limits.budgets.seed(f"key:{key.id}", key.budget_period, usd, tokens)
    for team in team_budgets:
        usd, tokens = await store.usage.spend(team=team.team, since=starts[team.period])
        await limits.budgets.seed(f"team:{team.team}", team.period, usd, tokens)
