"""Budgets per scope and period in memory: checked before a call, charged after, renewed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from modelway.errors import BudgetExceeded, RateLimited
from modelway.limits import BudgetBook
from modelway.limits.budgets import dollars


class FakeClock:
    def __init__(self, moment: str) -> None:
        self.now = 0.0
        self.set(moment)

    def set(self, moment: str) -> None:
        self.now = datetime.fromisoformat(moment).replace(tzinfo=UTC).timestamp()

    def __call__(self) -> float:
        return self.now


def book_at(moment: str) -> tuple[BudgetBook, FakeClock]:
    clock = FakeClock(moment)
    return BudgetBook(clock=clock), clock


async def test_spend_under_the_limit_passes() -> None:
    book, _ = book_at("2026-11-23T12:00:00")
    await book.charge("key:a", usd=9.99, tokens=1000, period="day")
    await book.check("key:a", usd=10.0, tokens=2000, period="day")


async def test_a_reached_usd_limit_refuses_with_budget_exceeded() -> None:
    book, _ = book_at("2026-11-23T12:00:00")
    await book.charge("key:secret-id", usd=6.0, tokens=10, period="day")
    await book.charge("key:secret-id", usd=4.0, tokens=10, period="day")
    with pytest.raises(BudgetExceeded) as refused:
        await book.check("key:secret-id", usd=10.0, period="day")
    error = refused.value
    assert isinstance(error, RateLimited) and error.status == 429
    assert error.code == "budget_exceeded" and not error.retryable
    assert "daily budget of $10.00" in error.message
    assert "secret-id" not in error.message and "key:" not in error.message
    assert error.retry_after == pytest.approx(12 * 3600)  # until midnight UTC


@pytest.mark.parametrize(("usd", "tokens"), [(0.0, None), (None, 0)])
async def test_a_budget_of_nothing_refuses_before_anything_was_spent(
    usd: float | None, tokens: int | None
) -> None:
    # A key created with a budget of 0 while the gateway runs has no spend counted yet.
    book, _ = book_at("2026-11-23T12:00:00")
    with pytest.raises(BudgetExceeded, match="no call may spend"):
        await book.check("key:new", usd=usd, tokens=tokens, period="day")


async def test_a_reached_token_limit_refuses() -> None:
    book, _ = book_at("2026-11-23T12:00:00")
    await book.charge("team:ml", usd=0.0, tokens=50_000, period="month")
    with pytest.raises(BudgetExceeded) as refused:
        await book.check("team:ml", tokens=50_000, period="month")
    assert "monthly budget of 50,000 tokens" in refused.value.message


async def test_a_call_may_finish_over_budget_and_the_next_is_refused() -> None:
    book, _ = book_at("2026-11-23T12:00:00")
    await book.check("key:a", usd=1.0, period="total")
    await book.charge("key:a", usd=3.5, tokens=10, period="total")
    with pytest.raises(BudgetExceeded) as refused:
        await book.check("key:a", usd=1.0, period="total")
    assert "total budget of $1.00 is used up (spent $3.50)" in refused.value.message
    assert refused.value.retry_after is None


@pytest.mark.parametrize(("usd", "tokens", "said"), [(0.0, None, "$0.00"), (None, 0, "0 tokens")])
async def test_a_budget_of_nothing_says_so_and_not_when_it_renews(
    usd: float | None, tokens: int | None, said: str
) -> None:
    book, _ = book_at("2026-11-23T12:00:00")
    with pytest.raises(BudgetExceeded) as refused:
        await book.check("key:zero", usd=usd, tokens=tokens, period="month")
    assert refused.value.message == f"The monthly budget is {said}: no call may spend."
    assert refused.value.retry_after is None


async def test_a_daily_budget_renews_at_midnight_utc() -> None:
    book, clock = book_at("2026-11-23T23:59:59")
    await book.charge("key:a", usd=5.0, tokens=0, period="day")
    with pytest.raises(BudgetExceeded) as refused:
        await book.check("key:a", usd=5.0, period="day")
    assert refused.value.retry_after == pytest.approx(1.0)
    clock.set("2026-11-24T00:00:00")
    await book.check("key:a", usd=5.0, period="day")


async def test_a_monthly_budget_renews_on_the_first_including_at_new_year() -> None:
    book, clock = book_at("2026-12-31T18:00:00")
    await book.charge("key:a", usd=100.0, tokens=0, period="month")
    clock.set("2026-12-31T23:59:59")
    with pytest.raises(BudgetExceeded):
        await book.check("key:a", usd=100.0, period="month")
    clock.set("2027-01-01T00:00:00")
    await book.check("key:a", usd=100.0, period="month")
    await book.charge("key:a", usd=1.0, tokens=0, period="month")
    await book.check("key:a", usd=1.5, period="month")


async def test_a_total_budget_never_renews() -> None:
    book, clock = book_at("2026-01-01T00:00:00")
    await book.charge("key:a", usd=0.0, tokens=1000, period="total")
    clock.set("2030-06-01T00:00:00")
    with pytest.raises(BudgetExceeded):
        await book.check("key:a", tokens=1000, period="total")


async def test_periods_and_scopes_are_kept_apart() -> None:
    book, _ = book_at("2026-11-23T12:00:00")
    await book.charge("key:a", usd=10.0, tokens=0, period="day")
    await book.check("key:a", usd=10.0, period="month")
    await book.check("key:b", usd=10.0, period="day")


async def test_seeding_again_keeps_spend_counted_since_that_the_store_has_not_got_yet() -> None:
    # A key's budget raised over the admin API re-reads the store, which lags the batched
    # usage writer: the calls counted meanwhile must not be forgotten.
    book, _ = book_at("2026-11-23T12:00:00")
    await book.seed("key:a", "day", 0.0, 100)
    await book.charge("key:a", usd=0.0, tokens=150, period="day")  # 250 counted
    await book.seed("key:a", "day", 0.0, 200)  # the store has only 200 of them yet
    with pytest.raises(BudgetExceeded, match="used 250 tokens"):
        await book.check("key:a", tokens=250, period="day")
    await book.seed("key:a", "day", 0.0, 300)  # and more than counted: calls never charged
    with pytest.raises(BudgetExceeded, match="used 300 tokens"):
        await book.check("key:a", tokens=300, period="day")


async def test_seed_starts_the_period_from_stored_usage() -> None:
    book, _ = book_at("2026-11-23T12:00:00")
    await book.seed("key:a", "month", 8.0, 400)
    await book.check("key:a", usd=10.0, period="month")
    await book.charge("key:a", usd=2.0, tokens=100, period="month")
    with pytest.raises(BudgetExceeded):
        await book.check("key:a", usd=10.0, period="month")
    with pytest.raises(BudgetExceeded):
        await book.check("key:a", tokens=500, period="month")


async def test_no_limits_means_no_check() -> None:
    book, _ = book_at("2026-11-23T12:00:00")
    await book.charge("key:a", usd=1e9, tokens=10**12, period="day")
    await book.check("key:a", period="day")


async def test_an_unknown_period_is_an_error() -> None:
    book, _ = book_at("2026-11-23T12:00:00")
    with pytest.raises(ValueError, match="unknown budget period 'week'"):
        await book.check("key:a", usd=1.0, period="week")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("amount", "shown"),
    [(0, "$0.00"), (12.5, "$12.50"), (1234.5, "$1,234.50"), (0.0001, "$0.0001"),
     (0.0026, "$0.0026"), (0.0000123, "$0.000012"), (1e-9, "$0.000000001"),
     (3.25e-7, "$0.00000033")],
)  # fmt: skip
def test_a_budget_under_a_cent_is_said_with_its_digits_not_as_nothing(
    amount: float, shown: str
) -> None:
    assert dollars(amount) == shown
