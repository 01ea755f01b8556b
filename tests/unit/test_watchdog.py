"""Stream read limits: first token, stall and total — and never the caller's own time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from modelway.config import Timeouts
from modelway.errors import Timeout
from modelway.providers.base import HttpRequest
from modelway.providers.openai import OpenAIAdapter
from modelway.providers.transport import MockReply, MockTransport
from modelway.providers.upstream import Call, HttpProvider


def provider(chunks: AsyncIterator[bytes]) -> HttpProvider:
    return HttpProvider(
        "up",
        OpenAIAdapter(),
        "http://u/v1",
        None,
        transport=MockTransport(lambda request: MockReply(200, chunks)),
    )


async def paced(*delays: float) -> AsyncIterator[bytes]:
    for delay in delays:
        await asyncio.sleep(delay)
        yield b"x"


async def read_all(delays: tuple[float, ...], limits: Timeouts, pause: float = 0) -> int:
    upstream = provider(paced(*delays))
    call = Call("r", limits)
    response = await upstream.open(HttpRequest("POST", "/chat/completions", b"{}"), call)
    count = 0
    async for _ in upstream.raw_stream(response, call):
        count += 1
        await asyncio.sleep(pause)  # the caller's own work between chunks
    return count


async def test_no_first_chunk_within_first_token_is_a_timeout() -> None:
    with pytest.raises(Timeout, match="first token"):
        await read_all((2.0,), Timeouts(first_token=0.05))


async def test_a_gap_longer_than_stall_is_a_timeout() -> None:
    with pytest.raises(Timeout, match="stall"):
        await read_all((0, 0, 2.0), Timeouts(first_token=5, stall=0.05))


async def test_the_whole_answer_is_bounded_by_total() -> None:
    with pytest.raises(Timeout, match="whole answer"):
        await read_all((0.03,) * 100, Timeouts(first_token=5, stall=5, total=0.2))


async def test_the_callers_own_time_between_chunks_is_not_a_stall() -> None:
    assert await read_all((0, 0, 0), Timeouts(first_token=5, stall=0.05), pause=0.2) == 3


async def test_a_cancelled_caller_is_cancelled_not_timed_out() -> None:
    task = asyncio.create_task(read_all((5.0,), Timeouts(first_token=10)))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
