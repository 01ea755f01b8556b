"""``later`` call hooks: a call's end seen a little after it, in batches, in order, never
lost, never twice (``LaterHooks``)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from modelway.calls import CallEnd, CallHook
from modelway.calls.hooks import LATER_SECONDS, LaterHooks
from tests.polling import eventually
from tests.unit.test_request_log import call_end, record


class Seen(CallHook):
    later = True

    def __init__(self) -> None:
        self.ends: list[str] = []
        self.batches = 0

    def after_batch(self, ended: list[CallEnd]) -> None:
        self.batches += 1
        self.ends += [end.record.request_id for end in ended]


class Failing(CallHook):
    later = True

    def after_batch(self, ended: list[CallEnd]) -> None:
        raise RuntimeError("boom")


def end(request_id: str) -> CallEnd:
    return call_end(record(request_id=request_id))


def later_with(*hooks: CallHook) -> LaterHooks:
    later = LaterHooks()
    for hook in hooks:
        later.add(hook)
    return later


async def test_ends_are_seen_together_soon_in_the_order_they_came() -> None:
    seen = Seen()
    later = later_with(seen)
    for number in range(3):
        later.note(end(f"call {number}"))
    assert seen.ends == []  # not on the request's own path
    await eventually(lambda: len(seen.ends) == 3, what="the batch", within=5)
    assert seen.ends == [f"call {n}" for n in range(3)]
    assert seen.batches == 1
    await asyncio.sleep(LATER_SECONDS * 3)
    assert len(seen.ends) == 3  # once each


def test_without_a_running_loop_an_end_is_seen_at_once() -> None:
    seen = Seen()
    later_with(seen).note(end("call"))
    assert seen.ends == ["call"]


def test_ends_left_by_a_stopped_loop_are_seen_with_the_next_one() -> None:
    seen = Seen()
    later = later_with(seen)

    async def ended(call: str) -> None:
        later.note(end(call))

    asyncio.run(ended("first"))  # its loop closes before the batch is due
    assert seen.ends == []
    asyncio.run(ended("second"))
    assert seen.ends == ["first", "second"]


async def test_run_catches_up_now() -> None:
    seen = Seen()
    later = later_with(seen)
    later.note(end("call"))
    later.run()
    assert len(seen.ends) == 1
    await asyncio.sleep(LATER_SECONDS * 3)  # the cancelled timer runs nothing more
    assert len(seen.ends) == 1


def test_a_failing_hook_is_logged_and_the_others_still_see_the_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen = Seen()
    with caplog.at_level(logging.ERROR, "modelway.calls.hooks"):
        later_with(Failing(), seen).note(end("call"))
    assert len(seen.ends) == 1
    assert "the Failing hook failed" in caplog.text
