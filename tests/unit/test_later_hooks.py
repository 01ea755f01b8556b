"""``later`` call hooks: a call's end seen a little after it, in batches, in the call's
context, never lost, never twice (``LaterHooks``)."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from typing import Any

import pytest

from modelway.calls import CallHook
from modelway.calls.hooks import LATER_SECONDS, LaterHooks
from tests.polling import eventually

where: contextvars.ContextVar[str] = contextvars.ContextVar("where", default="")


class Seen(CallHook):
    later = True

    def __init__(self) -> None:
        self.ends: list[tuple[Any, Any, str]] = []

    def after(self, call: Any, record: Any) -> None:
        self.ends.append((call, record, where.get()))


class Failing(CallHook):
    later = True

    def after(self, call: Any, record: Any) -> None:
        raise RuntimeError("boom")


def later_with(*hooks: CallHook) -> LaterHooks:
    later = LaterHooks()
    for hook in hooks:
        later.add(hook)
    return later


async def test_ends_are_seen_together_soon_each_in_its_own_context() -> None:
    seen = Seen()
    later = later_with(seen)
    for number in range(3):
        token = where.set(f"request {number}")
        later.note(f"call {number}", f"record {number}")  # type: ignore[arg-type]
        where.reset(token)
    assert seen.ends == []  # not on the request's own path
    await eventually(lambda: len(seen.ends) == 3, what="the batch", within=5)
    assert seen.ends == [(f"call {n}", f"record {n}", f"request {n}") for n in range(3)]
    await asyncio.sleep(LATER_SECONDS * 3)
    assert len(seen.ends) == 3  # once each


def test_without_a_running_loop_an_end_is_seen_at_once() -> None:
    seen = Seen()
    later_with(seen).note("call", "record")  # type: ignore[arg-type]
    assert [call for call, *_ in seen.ends] == ["call"]


def test_ends_left_by_a_stopped_loop_are_seen_with_the_next_one() -> None:
    seen = Seen()
    later = later_with(seen)

    async def end(call: str) -> None:
        later.note(call, "record")  # type: ignore[arg-type]

    asyncio.run(end("first"))  # its loop closes before the batch is due
    assert seen.ends == []
    asyncio.run(end("second"))
    assert [call for call, *_ in seen.ends] == ["first", "second"]


async def test_run_catches_up_now() -> None:
    seen = Seen()
    later = later_with(seen)
    later.note("call", "record")  # type: ignore[arg-type]
    later.run()
    assert len(seen.ends) == 1
    await asyncio.sleep(LATER_SECONDS * 3)  # the cancelled timer runs nothing more
    assert len(seen.ends) == 1


def test_a_failing_hook_is_logged_and_the_others_still_see_the_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen = Seen()
    with caplog.at_level(logging.ERROR, "modelway.calls.hooks"):
        later_with(Failing(), seen).note("call", "record")  # type: ignore[arg-type]
    assert len(seen.ends) == 1
    assert "the Failing hook failed" in caplog.text
