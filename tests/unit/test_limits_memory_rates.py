"""Sliding-window RPM/TPM limits in memory, driven by a clock the tests move."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelway.errors import RateLimited
from modelway.limits import UNLIMITED, MemoryLimiter


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def limiter_at(now: float = 1000.0) -> tuple[MemoryLimiter, FakeClock]:
    clock = FakeClock(now)
    return MemoryLimiter(clock=clock), clock


async def test_a_scope_without_limits_gets_the_shared_unlimited_ticket() -> None:
    limiter, _ = limiter_at()
    ticket = await limiter.admit("key:a", tokens=500)
    assert ticket is UNLIMITED
    assert ticket.headers == []
    await limiter.settle(ticket, 10_000)
    assert (await limiter.admit("key:a", tokens=500)) is UNLIMITED


async def test_requests_beyond_rpm_are_refused_until_the_first_leaves_the_window() -> None:
    limiter, clock = limiter_at(1000.5)
    for _ in range(3):
        await limiter.admit("key:a", rpm=3)
    with pytest.raises(RateLimited) as refused:
        await limiter.admit("key:a", rpm=3)
    # Usage counts for one window plus at most one 1 s bucket: here until t=1061.
    assert refused.value.retry_after == pytest.approx(60.5)
    assert "requests per minute: limit 3, used 3" in refused.value.message
    clock.now = 1060.9
    with pytest.raises(RateLimited):
        await limiter.admit("key:a", rpm=3)
    clock.now = 1061.0
    await limiter.admit("key:a", rpm=3)


async def test_no_double_burst_at_a_minute_edge() -> None:
    limiter, clock = limiter_at(59.9)  # the last instant of a fixed minute
    for _ in range(10):
        await limiter.admit("key:a", rpm=10)
    for now in (60.0, 60.1, 90.0, 119.8):  # a fixed window would admit 10 more at 60.0
        clock.now = now
        with pytest.raises(RateLimited):
            await limiter.admit("key:a", rpm=10)
    clock.now = 120.0
    for _ in range(10):
        await limiter.admit("key:a", rpm=10)


@settings(max_examples=60, deadline=None)
@given(
    gaps=st.lists(st.floats(min_value=0.0, max_value=20.0), min_size=1, max_size=120),
    rpm=st.integers(min_value=1, max_value=8),
)
async def test_never_more_than_rpm_in_any_window_and_never_refused_needlessly(
    gaps: list[float], rpm: int
) -> None:
    limiter, clock = limiter_at(0.0)
    admitted: list[float] = []
    for gap in gaps:
        clock.now += gap
        in_last_window = [t for t in admitted if t > clock.now - 60.0]
        in_last_window_and_bucket = [t for t in admitted if t > clock.now - 61.0]
        try:
            await limiter.admit("key:a", rpm=rpm)
        except RateLimited as refused:
            # Refused only when the limit is reached counting at most one extra bucket.
            assert len(in_last_window_and_bucket) >= rpm
            assert refused.retry_after is not None and 0 < refused.retry_after <= 61.0
        else:
            assert len(in_last_window) < rpm  # never more than rpm within any 60 s
            admitted.append(clock.now)


async def test_a_refusal_on_tokens_does_not_count_a_request() -> None:
    limiter, _ = limiter_at()
    await limiter.admit("key:a", rpm=2, tpm=1000, tokens=900)
    with pytest.raises(RateLimited) as refused:
        await limiter.admit("key:a", rpm=2, tpm=1000, tokens=200)
    assert "tokens per minute: limit 1000, used 900, requested 200" in refused.value.message
    ticket = await limiter.admit("key:a", rpm=2, tpm=1000, tokens=100)
    assert ticket.requests_used == 2


async def test_a_refusal_on_requests_does_not_count_tokens() -> None:
    limiter, _ = limiter_at()
    await limiter.admit("key:a", rpm=1, tpm=1000, tokens=100)
    with pytest.raises(RateLimited):
        await limiter.admit("key:a", rpm=1, tpm=1000, tokens=500)
    ticket = await limiter.admit("key:a", tpm=1000, tokens=900)
    assert ticket.tokens_used == 1000


async def test_a_request_larger_than_the_token_limit_can_never_pass() -> None:
    limiter, _ = limiter_at()
    with pytest.raises(RateLimited) as refused:
        await limiter.admit("key:a", tpm=1000, tokens=1001)
    assert refused.value.retry_after is None
    assert "Request too large" in refused.value.message


async def test_a_limit_of_zero_refuses_without_a_retry_time() -> None:
    limiter, _ = limiter_at()
    with pytest.raises(RateLimited) as refused:
        await limiter.admit("key:a", rpm=0)
    assert refused.value.retry_after is None


async def test_a_token_limit_of_zero_says_so_rather_than_asking_for_a_shorter_request() -> None:
    limiter, _ = limiter_at()
    with pytest.raises(RateLimited) as refused:
        await limiter.admit("key:a", tpm=0, tokens=42)
    assert refused.value.retry_after is None
    assert "tokens per minute: limit 0, used 0, requested 42" in refused.value.message
    assert "shorter" not in refused.value.message


async def test_retry_after_waits_only_for_the_tokens_that_must_leave() -> None:
    limiter, clock = limiter_at(1000.0)
    await limiter.admit("key:a", tpm=1000, tokens=600)  # leaves at 1061
    clock.now = 1030.0
    await limiter.admit("key:a", tpm=1000, tokens=300)  # leaves at 1091
    clock.now = 1040.0
    with pytest.raises(RateLimited) as refused:
        await limiter.admit("key:a", tpm=1000, tokens=400)
    assert refused.value.retry_after == pytest.approx(21.0)
    with pytest.raises(RateLimited) as refused:
        await limiter.admit("key:a", tpm=1000, tokens=800)
    assert refused.value.retry_after == pytest.approx(51.0)


async def test_settle_refunds_unused_reserved_tokens() -> None:
    limiter, _ = limiter_at()
    ticket = await limiter.admit("key:a", tpm=1000, tokens=800)
    await limiter.settle(ticket, 200)
    again = await limiter.admit("key:a", tpm=1000, tokens=800)
    assert again.tokens_used == 1000


async def test_settle_charges_tokens_beyond_the_estimate() -> None:
    limiter, _ = limiter_at()
    ticket = await limiter.admit("key:a", tpm=1000, tokens=100)
    await limiter.settle(ticket, 900)
    with pytest.raises(RateLimited):
        await limiter.admit("key:a", tpm=1000, tokens=200)
    assert (await limiter.admit("key:a", tpm=1000, tokens=100)).tokens_used == 1000


async def test_settling_twice_corrects_from_the_last_settlement() -> None:
    limiter, _ = limiter_at()
    ticket = await limiter.admit("key:a", tpm=1000, tokens=500)
    await limiter.settle(ticket, 700)
    await limiter.settle(ticket, 300)
    assert (await limiter.admit("key:a", tpm=1000, tokens=700)).tokens_used == 1000


async def test_extra_tokens_of_a_long_call_count_from_when_it_settles() -> None:
    limiter, clock = limiter_at(1000.0)
    ticket = await limiter.admit("key:a", tpm=1000, tokens=100)
    clock.now = 1090.0  # the reservation left the window while the call streamed
    await limiter.settle(ticket, 1000)  # the 900 beyond the estimate count from now
    with pytest.raises(RateLimited):
        await limiter.admit("key:a", tpm=1000, tokens=101)
    clock.now = 1151.0
    await limiter.admit("key:a", tpm=1000, tokens=1000)


async def test_a_refund_after_the_reservation_left_the_window_frees_nothing_else() -> None:
    limiter, clock = limiter_at(1000.0)
    ticket = await limiter.admit("key:a", tpm=1000, tokens=500)
    clock.now = 1070.0
    await limiter.admit("key:a", tpm=1000, tokens=1000)
    await limiter.settle(ticket, 0)
    with pytest.raises(RateLimited):
        await limiter.admit("key:a", tpm=1000, tokens=1)


async def test_headers_report_limits_remaining_and_reset() -> None:
    limiter, _ = limiter_at(1000.5)
    await limiter.admit("key:a", rpm=60, tpm=10_000, tokens=1000)
    ticket = await limiter.admit("key:a", rpm=60, tpm=10_000, tokens=500)
    assert ticket.headers == [
        (b"x-ratelimit-limit-requests", b"60"),
        (b"x-ratelimit-remaining-requests", b"58"),
        (b"x-ratelimit-reset-requests", b"1m0.5s"),
        (b"x-ratelimit-limit-tokens", b"10000"),
        (b"x-ratelimit-remaining-tokens", b"8500"),
        (b"x-ratelimit-reset-tokens", b"1m0.5s"),
    ]


async def test_headers_name_only_the_limits_a_scope_has() -> None:
    limiter, _ = limiter_at()
    ticket = await limiter.admit("key:a", rpm=60, tokens=500)
    assert [name for name, _ in ticket.headers] == [
        b"x-ratelimit-limit-requests",
        b"x-ratelimit-remaining-requests",
        b"x-ratelimit-reset-requests",
    ]


async def test_scopes_are_limited_independently() -> None:
    limiter, _ = limiter_at()
    await limiter.admit("key:a", rpm=1)
    await limiter.admit("deployment:gpt#0", rpm=1)
    with pytest.raises(RateLimited):
        await limiter.admit("key:a", rpm=1)


async def test_a_changed_limit_applies_to_usage_already_counted() -> None:
    limiter, _ = limiter_at()
    for _ in range(5):
        await limiter.admit("key:a", rpm=10)
    with pytest.raises(RateLimited):
        await limiter.admit("key:a", rpm=5)
    await limiter.admit("key:a", rpm=6)


async def test_idle_scopes_are_forgotten() -> None:
    limiter, clock = limiter_at(1000.0)
    for number in range(3000):
        await limiter.admit(f"key:{number}", rpm=10)
    clock.now = 1100.0
    for number in range(3000):
        await limiter.admit(f"team:{number}", rpm=10)
    assert len(limiter._scopes) < 4000  # the first 3000 left the window and were swept


async def test_a_shorter_window_and_coarser_buckets_keep_the_same_guarantee() -> None:
    clock = FakeClock(0.0)
    limiter = MemoryLimiter(window=10.0, buckets=5, clock=clock)  # 2 s buckets
    await limiter.admit("key:a", rpm=1)
    clock.now = 9.9
    with pytest.raises(RateLimited) as refused:
        await limiter.admit("key:a", rpm=1)
    assert "requests per 10 seconds" in refused.value.message
    assert refused.value.retry_after == pytest.approx(2.1)
    clock.now = 12.0
    await limiter.admit("key:a", rpm=1)


async def test_concurrent_admissions_in_one_process_admit_exactly_the_limit() -> None:
    limiter, _ = limiter_at()
    results = await asyncio.gather(
        *(limiter.admit("key:a", rpm=50, tpm=5000, tokens=10) for _ in range(200)),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(r, RateLimited) for r in refused)
    assert len(results) - len(refused) == 50


async def test_requests_counted_from_elsewhere_fill_the_window_and_leave_it() -> None:
    limiter, clock = limiter_at()
    limiter.count("key:a", 100)  # admitted through Redis: recorded, never refused
    limiter.count("key:a", 50)
    assert limiter.usage("key:a") == (2, 150)
    with pytest.raises(RateLimited):
        await limiter.admit("key:a", rpm=2)
    clock.now += 61
    assert limiter.usage("key:a") == (0, 0)


async def test_a_released_ticket_no_longer_counts() -> None:
    limiter = MemoryLimiter()
    first = await limiter.admit("key:a", rpm=2, tpm=100, tokens=30)
    await limiter.admit("key:a", rpm=2, tpm=100, tokens=30)
    limiter.release(first)
    assert limiter.usage("key:a") == (1, 30)
    await limiter.admit("key:a", rpm=2, tpm=100, tokens=30)  # the released one's room
