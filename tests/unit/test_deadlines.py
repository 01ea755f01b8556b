"""``modelway.deadlines``: ``asyncio.timeout_at``'s behaviour, on one timer per event loop."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from modelway.deadlines import deadline_at, deadline_in

#: Short enough to wait for in a test; nothing here asserts how long anything took.
SOON = 0.05
#: A deadline no test reaches.
NEVER = 3600.0


async def test_a_scope_left_in_time_is_not_cancelled() -> None:
    async with deadline_in(NEVER) as scope:
        await asyncio.sleep(0)
    assert not scope.expired
    await asyncio.sleep(0)  # and no cancellation is left waiting for the task


async def test_a_passed_deadline_cancels_the_work_and_raises_timeout_error() -> None:
    with pytest.raises(TimeoutError):
        async with deadline_in(SOON) as scope:
            await asyncio.Event().wait()  # never set
    assert scope.expired
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_a_deadline_already_past_expires_at_the_first_wait() -> None:
    loop = asyncio.get_running_loop()
    with pytest.raises(TimeoutError):
        async with deadline_at(loop.time() - 1):
            await asyncio.sleep(NEVER)


async def test_none_never_expires() -> None:
    async with deadline_at(None) as scope:
        await asyncio.sleep(SOON)
    async with deadline_in(None):
        await asyncio.sleep(0)
    assert not scope.expired


async def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    started = asyncio.Event()

    async def work() -> None:
        async with deadline_in(NEVER):
            started.set()
            await asyncio.sleep(NEVER)

    task = asyncio.create_task(work())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_many_scopes_each_expire_at_their_own_deadline_and_only_they() -> None:
    loop = asyncio.get_running_loop()
    outcomes: dict[str, str] = {}

    async def work(name: str, seconds: float, wait: float) -> None:
        try:
            async with deadline_at(loop.time() + seconds):
                await asyncio.sleep(wait)
            outcomes[name] = "done"
        except TimeoutError:
            outcomes[name] = "timed out"

    await asyncio.gather(
        work("late deadline, quick work", NEVER, 0),
        work("short deadline, long work", SOON, NEVER),
        work("shorter deadline, long work", SOON / 2, NEVER),
        work("long deadline, short work", NEVER, SOON),
        work("short deadline after a long one", SOON * 2, NEVER),
    )
    assert outcomes == {
        "late deadline, quick work": "done",
        "short deadline, long work": "timed out",
        "shorter deadline, long work": "timed out",
        "long deadline, short work": "done",
        "short deadline after a long one": "timed out",
    }


async def test_nested_scopes_the_inner_one_expires_the_outer_one_goes_on() -> None:
    async with deadline_in(NEVER) as outer:
        with pytest.raises(TimeoutError):
            async with deadline_in(SOON):
                await asyncio.sleep(NEVER)
        await asyncio.sleep(0)  # the outer scope's task is not cancelled
    assert not outer.expired


async def test_scopes_with_later_deadlines_share_the_one_armed_timer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop = asyncio.get_running_loop()
    armed: list[float] = []
    call_at = loop.call_at

    def counting_call_at(when: float, callback: Any, *args: Any) -> asyncio.TimerHandle:
        armed.append(when)
        return call_at(when, callback, *args)

    monkeypatch.setattr(loop, "call_at", counting_call_at)
    async with deadline_in(NEVER):  # arms the timer for this (the earliest) deadline
        for _ in range(100):  # each later than the armed one: no timer of its own
            async with deadline_in(NEVER):
                await asyncio.sleep(0)
    assert len(armed) == 1
    async with deadline_in(SOON):  # earlier than the armed one: re-armed for it
        await asyncio.sleep(0)
    assert len(armed) == 2
