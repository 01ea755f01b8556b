"""Stream read limits: first token, stall and total — and never the caller's own time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest

from modelway.config import Timeouts
from modelway.errors import Timeout
from modelway.providers.base import HttpRequest
from modelway.providers.openai import OpenAIAdapter
from modelway.providers.transport import MockReply, MockTransport
from modelway.providers.upstream import Call, HttpProvider
from modelway.providers.watchdog import ReadWatchdog


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


# --- which limit ran out, on a clock moved by hand ---------------------------------------


@dataclass
class Timer:
    when: float
    callback: Callable[[], object]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """An event loop's time and timers; time passes only when ``advance_to`` says so."""

    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[Timer] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], object]) -> Timer:
        timer = Timer(when, callback)
        self.timers.append(timer)
        return timer

    def advance_to(self, now: float) -> None:
        """Move to ``now``, firing each timer due by then in order (as the loop would)."""
        while due := [t for t in self.timers if not t.cancelled and t.when <= now]:
            timer = min(due, key=lambda t: t.when)
            self.timers.remove(timer)
            self.now = timer.when
            timer.callback()
        self.now = now


class Stream:
    """Reads timed by a watchdog on a manual clock: chunks arrive when the test says."""

    def __init__(self, first_token: float, stall: float, total: float = 1000) -> None:
        self.clock = ManualClock()
        self.watchdog = ReadWatchdog(first_token, stall, total, clock=self.clock)
        self._read: asyncio.Task[None] | None = None
        self._chunk = asyncio.Event()

    async def wait_for_a_chunk(self) -> None:
        """A read starts now and waits until a chunk comes or the watchdog cancels it."""

        async def read() -> None:
            self.watchdog.reading()
            await self._chunk.wait()
            self.watchdog.received()

        self._chunk.clear()
        self._read = asyncio.create_task(read())
        await asyncio.sleep(0)  # the read has started waiting

    async def chunk_arrives_at(self, now: float) -> None:
        self.clock.advance_to(now)
        assert self._read is not None and not self._read.done(), self.watchdog.expired
        self._chunk.set()
        await self._read

    async def cut_at(self, now: float) -> str | None:
        """What the watchdog says ran out once the clock reaches ``now`` (None: nothing)."""
        self.clock.advance_to(now)
        await asyncio.sleep(0)
        assert self._read is not None
        if self.watchdog.expired is None:
            assert not self._read.done()
            return None
        with pytest.raises(asyncio.CancelledError):
            await self._read
        return self.watchdog.expired


LIMITS = pytest.mark.parametrize(
    ("first_token", "stall"),
    [(5.0, 5.0), (3.0, 5.0), (5.0, 3.0)],
    ids=["first_token=stall", "first_token<stall", "first_token>stall"],
)


@LIMITS
async def test_a_missing_first_chunk_is_named_the_first_token_timeout(
    first_token: float, stall: float
) -> None:
    stream = Stream(first_token, stall)
    await stream.wait_for_a_chunk()

    assert await stream.cut_at(first_token - 0.5) is None  # also past a shorter stall
    assert await stream.cut_at(first_token) == f"the first token ({first_token:g} s)"


@LIMITS
async def test_a_stall_after_the_first_chunk_is_named_the_stall_timeout(
    first_token: float, stall: float
) -> None:
    stream = Stream(first_token, stall)
    await stream.wait_for_a_chunk()
    await stream.chunk_arrives_at(1.0)
    await stream.wait_for_a_chunk()

    assert await stream.cut_at(1.0 + stall - 0.5) is None  # also past a shorter first token
    assert await stream.cut_at(1.0 + stall) == f"the next chunk ({stall:g} s stall)"


@LIMITS
async def test_a_stall_deep_in_the_stream_is_named_the_stall_timeout(
    first_token: float, stall: float
) -> None:
    stream = Stream(first_token, stall)
    for arrival in (1.0, 2.0, 3.0):
        await stream.wait_for_a_chunk()
        await stream.chunk_arrives_at(arrival)
    await stream.wait_for_a_chunk()

    assert await stream.cut_at(3.0 + stall) == f"the next chunk ({stall:g} s stall)"


async def test_the_whole_answer_limit_wins_over_a_later_stall_deadline() -> None:
    stream = Stream(first_token=5.0, stall=5.0, total=7.0)
    await stream.wait_for_a_chunk()
    await stream.chunk_arrives_at(4.0)
    await stream.wait_for_a_chunk()

    assert await stream.cut_at(7.0) == "the whole answer (7 s total)"


async def test_the_whole_answer_counts_from_the_attempts_start_not_from_its_head() -> None:
    # The head took 3 s of a 5 s total: 2 s are left for the body, not 5.
    stream = Stream(first_token=10.0, stall=10.0)
    stream.watchdog = ReadWatchdog(10.0, 10.0, 5.0, clock=stream.clock, started=-3.0)
    await stream.wait_for_a_chunk()

    assert await stream.cut_at(1.9) is None
    assert await stream.cut_at(2.0) == "the whole answer (5 s total)"


def silent_head(request: object) -> Awaitable[MockReply]:
    """An upstream that takes the request and never sends a status line."""
    return asyncio.get_running_loop().create_future()


async def test_a_streams_wait_for_its_head_is_bounded_by_total() -> None:
    # total: 2 with first_token: 10 and an upstream silent for 3 s: the stream was 200
    # and whole after 3 s, the same answer unstreamed a 504 at 2 s.
    upstream = HttpProvider(
        "up", OpenAIAdapter(), "http://u/v1", None, transport=MockTransport(silent_head)
    )
    call = Call("r", Timeouts(first_token=10, stall=10, total=0.05))
    with pytest.raises(Timeout, match=r"whole answer \(0.05 s total\)"):
        await upstream.open(HttpRequest("POST", "/chat/completions", b"{}"), call)
