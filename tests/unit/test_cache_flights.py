"""Identical requests at the same time: one asks upstream, the others wait for its answer
and get it as a cache hit (``cache/flights.py``, as ``cache/responses.py`` uses it)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from modelway.cache import CacheControl, MemoryBackend, ResponseCache
from modelway.cache.flights import Flights
from modelway.cache.keys import IDEMPOTENCY_PREFIX
from modelway.calls import Caller
from modelway.config import CacheSettings
from modelway.providers.transport import MockReply, UpstreamRequest
from modelway.types import ChatRequest, ChatResponse, Message, TextPart
from tests.polling import eventually
from tests.unit.gateways import Setup, in_process_gateway, openai_upstream
from tests.unit.test_cache_gateway import CONFIG, MODEL
from tests.unit.test_gateway_asgi import records
from tests.unit.test_store_keys import cheap_argon2  # noqa: F401  (autouse)

RED = Caller(key_id="k1", name="k1", team="red")
SLOT = ("team:red", "request-key")


def _question(text: str = "same question") -> ChatRequest:
    return ChatRequest(
        model="m", messages=[Message(role="user", content=[TextPart(text)])], temperature=0
    )


def _answer(answer_id: str) -> ChatResponse:
    return ChatResponse(id=answer_id, model="m", message=Message(role="assistant"))


def _cache(backend_bytes: int = 100_000, **settings: float) -> ResponseCache:
    return ResponseCache(MemoryBackend(backend_bytes), CacheSettings(**settings))  # type: ignore[arg-type]


# --- the in-flight table ------------------------------------------------------------------


async def test_the_first_to_take_a_slot_holds_it_until_it_lands() -> None:
    flights = Flights()
    flight, mine = flights.take(SLOT)
    same, also_mine = flights.take(SLOT)
    assert mine and not also_mine and same is flight and len(flights) == 1
    flights.land(SLOT, flight, b"answer")
    assert len(flights) == 0 and flight.result() == b"answer"
    # Landing again (a call's end after its answer) never drops the next holder's flight.
    after, mine = flights.take(SLOT)
    flights.land(SLOT, flight, None)
    assert mine and flights.flying(SLOT) is after and not after.done()


async def test_a_waiter_that_leaves_or_runs_out_of_time_leaves_the_flight_as_it_was() -> None:
    flights = Flights()
    flight, _ = flights.take(SLOT)
    loop = asyncio.get_running_loop()
    with pytest.raises(TimeoutError):
        await flights.wait(flight, loop.time())  # its bound already passed
    leaving = asyncio.create_task(flights.wait(flight, loop.time() + 3600))
    await eventually(lambda: flights.waiting == 1)
    leaving.cancel()  # its caller hung up
    with pytest.raises(asyncio.CancelledError):
        await leaving
    assert flights.waiting == 0 and flights.flying(SLOT) is flight and not flight.done()
    flights.land(SLOT, flight, b"answer")
    assert await flights.wait(flight, loop.time()) == b"answer"  # landed: no wait at all


# --- the response cache's misses ----------------------------------------------------------


async def test_identical_misses_wait_for_the_first_and_its_answer_is_their_hit() -> None:
    cache = _cache()
    first = await cache.begin(RED, "m", _question(), CacheControl(), None)
    assert first.status == "miss" and len(cache.flights) == 1
    twins = [
        asyncio.create_task(cache.begin(RED, "m", _question(), CacheControl(), None))
        for _ in range(4)
    ]
    await eventually(lambda: cache.flights.waiting == 4)
    await first.keep(_answer("only-once"), "openai", "gpt-x")
    for twin in await asyncio.gather(*twins):
        assert twin.status == "hit" and twin.entry is not None
        assert (twin.entry.response.id, twin.entry.provider) == ("only-once", "openai")
    assert len(cache.flights) == 0
    # Another question, or another tenant's same question, is a flight of its own.
    other = await cache.begin(RED, "m", _question("another"), CacheControl(), None)
    blue = Caller(key_id="k2", name="k2", team="blue")
    theirs = await cache.begin(blue, "m", _question("another"), CacheControl(), None)
    assert (other.status, theirs.status, len(cache.flights)) == ("miss", "miss", 2)


async def test_waiters_get_the_first_answer_even_when_the_backend_cannot_keep_it() -> None:
    cache = _cache(backend_bytes=10)  # smaller than any answer: nothing is stored
    first = await cache.begin(RED, "m", _question(), CacheControl(), None)
    twin = asyncio.create_task(cache.begin(RED, "m", _question(), CacheControl(), None))
    await eventually(lambda: cache.flights.waiting == 1)
    assert await first.keep(_answer("too-big"), "openai", "gpt-x") > 0
    assert (await cache.stats()).entries == 0
    hit = await twin
    assert hit.status == "hit" and hit.entry is not None and hit.entry.response.id == "too-big"


async def test_when_the_first_fails_exactly_one_waiter_runs_and_the_rest_get_its_answer() -> None:
    cache = _cache()
    first = await cache.begin(RED, "m", _question(), CacheControl(), None)
    twins = [
        asyncio.create_task(cache.begin(RED, "m", _question(), CacheControl(), None))
        for _ in range(4)
    ]
    await eventually(lambda: cache.flights.waiting == 4)
    await first.abandon()  # failed upstream, or its caller left
    await eventually(lambda: sum(twin.done() for twin in twins) == 1)
    await eventually(lambda: cache.flights.waiting == 3)
    [runner] = [twin.result() for twin in twins if twin.done()]
    rest = [twin for twin in twins if not twin.done()]
    assert runner.status == "miss" and runner.entry is None and len(cache.flights) == 1
    await runner.keep(_answer("second-try"), "openai", "gpt-x")
    for twin in await asyncio.gather(*rest):
        assert twin.status == "hit" and twin.entry is not None
        assert twin.entry.response.id == "second-try"
    assert len(cache.flights) == 0 and cache.flights.waiting == 0


async def test_a_waiter_runs_beside_the_first_once_its_bound_passes() -> None:
    cache = _cache()
    first = await cache.begin(RED, "m", _question(), CacheControl(), None)
    late = await cache.begin(RED, "m", _question(), CacheControl(), None, wait=0)
    assert late.status == "miss" and late.entry is None
    await late.keep(_answer("own"), "openai", "gpt-x")
    assert len(cache.flights) == 1  # the first still holds its slot, until it lands
    await first.keep(_answer("first"), "openai", "gpt-x")
    assert len(cache.flights) == 0


@pytest.mark.parametrize(
    "control",
    [CacheControl(no_cache=True), CacheControl(no_store=True), CacheControl(max_age=0)],
    ids=["no-cache", "no-store", "max-age=0"],
)
async def test_a_request_refusing_a_stored_answer_neither_waits_nor_is_waited_for(
    control: CacheControl,
) -> None:
    cache = _cache()
    alone = await cache.begin(RED, "m", _question(), control, None)
    assert alone.status == "miss" and len(cache.flights) == 0  # nobody waits for it
    first = await cache.begin(RED, "m", _question(), CacheControl(), None)
    beside = await asyncio.wait_for(cache.begin(RED, "m", _question(), control, None), 30)
    assert beside.status == "miss" and cache.flights.waiting == 0  # nor does it wait
    await first.keep(_answer("first"), "openai", "gpt-x")
    assert len(cache.flights) == 0


async def test_a_waiter_whose_caller_leaves_frees_its_idempotency_key_at_once() -> None:
    cache = _cache(idempotency_wait=0)  # a repeat finding the key taken: 409 at once
    first = await cache.begin(RED, "m", _question(), CacheControl(), None)
    waiter = asyncio.create_task(cache.begin(RED, "m", _question(), CacheControl(), "order-1"))
    await eventually(lambda: cache.flights.waiting == 1)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert cache.flights.waiting == 0 and len(cache.flights) == 1  # the first is untouched
    again = await cache.begin(RED, "m", _question(), CacheControl(), "order-1", wait=0)
    assert again.status == "miss"  # the key was free: taken, not a 409
    await again.keep(_answer("own"), "openai", "gpt-x")
    await first.keep(_answer("first"), "openai", "gpt-x")
    assert len(cache.flights) == 0


class SlowLookups(MemoryBackend):
    """A backend whose lookups of answers wait for ``answer`` (a Redis round trip, held)."""

    def __init__(self) -> None:
        super().__init__(100_000)
        self.answer = asyncio.Event()
        self.looking = 0

    async def get(self, namespace: str, key: str) -> bytes | None:
        if not key.startswith(IDEMPOTENCY_PREFIX):
            self.looking += 1
            await self.answer.wait()
        return await super().get(namespace, key)


async def test_a_caller_leaving_during_the_lookup_frees_the_idempotency_key_it_took() -> None:
    backend = SlowLookups()
    cache = ResponseCache(backend, CacheSettings(idempotency_wait=0))
    leaving = asyncio.create_task(cache.begin(RED, "m", _question(), CacheControl(), "order-3"))
    await eventually(lambda: backend.looking == 1)  # the key is claimed; the lookup is out
    leaving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaving
    backend.answer.set()
    again = await cache.begin(RED, "m", _question(), CacheControl(), "order-3")
    assert again.status == "miss"  # the key was free: taken, not a 409
    again.land()


async def test_a_repeat_of_an_idempotency_key_held_here_is_woken_by_its_end_not_polling() -> None:
    # Polling would look again in an hour.
    cache = ResponseCache(MemoryBackend(100_000), CacheSettings(), poll=3600)
    first = await cache.begin(RED, "m", _question("pay"), CacheControl(), "order-2")
    repeat = asyncio.create_task(cache.begin(RED, "m", _question("pay"), CacheControl(), "order-2"))
    await eventually(lambda: cache.flights.waiting == 1)
    await first.keep(_answer("paid"), "openai", "gpt-x")
    answered = await repeat
    assert answered.status == "hit" and answered.entry is not None
    assert answered.entry.response.id == "paid" and len(cache.flights) == 0


# --- through the gateway ------------------------------------------------------------------


class Gated:
    """An OpenAI upstream that holds each answer until ``open`` is set, counting the calls
    and the request ids that reached it; its first answer is ``first`` when given."""

    def __init__(self, first: MockReply | None = None) -> None:
        self.request_ids: list[str] = []
        self.open = asyncio.Event()
        self._first = first

    @property
    def calls(self) -> int:
        return len(self.request_ids)

    async def __call__(self, request: UpstreamRequest) -> MockReply:
        self.request_ids.append(request.headers.get("x-request-id", ""))
        first = self._first
        self._first = None
        await self.open.wait()
        return first or openai_upstream(request)


def _flights(setup: Setup) -> Flights:
    cache = setup.state.calls.cache
    assert cache is not None
    return cache.flights


async def test_five_identical_requests_at_once_ask_upstream_once_the_rest_are_recorded_hits(
    tmp_path: Path,
) -> None:
    upstream = Gated()
    async with in_process_gateway(tmp_path, CONFIG, upstream=upstream) as setup:
        body = {"model": MODEL, "messages": [{"role": "user", "content": "fan out"}]}
        asks = [{**body, "temperature": 0, "stream": n % 2 == 1} for n in range(5)]
        answers = [
            asyncio.create_task(setup.http.post("/v1/chat/completions", json=ask)) for ask in asks
        ]
        await eventually(lambda: upstream.calls == 1 and _flights(setup).waiting == 4)
        upstream.open.set()
        done = await asyncio.gather(*answers)
        found = await records(setup.state, 5)
    assert upstream.calls == 1 and len(_flights(setup)) == 0
    assert sorted(answer.headers["x-modelway-cache"] for answer in done) == ["hit"] * 4 + ["miss"]
    for ask, answer in zip(asks, done, strict=True):
        assert answer.status_code == 200
        if ask["stream"]:  # a streamed twin gets the answer replayed as a stream
            assert answer.text.rstrip().endswith("data: [DONE]") and '"content":"hi"' in (
                answer.text.replace(" ", "")
            )
        else:
            assert json.loads(answer.text)["choices"][0]["message"]["content"] == "hi"
    hits = [record for record in found if record.cache_hit]
    assert len(hits) == 4
    assert {(hit.cost_usd, hit.cost_saved_usd, hit.prompt_tokens) for hit in hits} == {
        (0.0, 6.0, 0)
    }


async def test_when_the_first_caller_hangs_up_one_waiter_asks_upstream_for_the_rest(
    tmp_path: Path,
) -> None:
    upstream = Gated()
    async with in_process_gateway(tmp_path, CONFIG, upstream=upstream) as setup:
        body = {"model": MODEL, "temperature": 0, "messages": [{"role": "user", "content": "x"}]}
        answers = {
            f"req-{n}": asyncio.create_task(
                setup.http.post(
                    "/v1/chat/completions", json=body, headers={"x-request-id": f"req-{n}"}
                )
            )
            for n in range(5)
        }
        await eventually(lambda: upstream.calls == 1 and _flights(setup).waiting == 4)
        first = answers.pop(upstream.request_ids[0])
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        await eventually(lambda: upstream.calls == 2 and _flights(setup).waiting == 3)
        upstream.open.set()
        done = await asyncio.gather(*answers.values())
        assert len(_flights(setup)) == 0
    assert upstream.calls == 2
    assert sorted(answer.headers["x-modelway-cache"] for answer in done) == ["hit"] * 3 + ["miss"]


async def test_when_the_first_fails_one_waiter_runs_it_and_nothing_stays_in_flight(
    tmp_path: Path,
) -> None:
    upstream = Gated(first=MockReply(500, b'{"error": {"message": "down"}}'))
    config = CONFIG + "server: {retries: 0}\n"
    async with in_process_gateway(tmp_path, config, upstream=upstream) as setup:
        body = {"model": MODEL, "temperature": 0, "messages": [{"role": "user", "content": "y"}]}
        answers = [
            asyncio.create_task(setup.http.post("/v1/chat/completions", json=body))
            for _ in range(3)
        ]
        await eventually(lambda: upstream.calls == 1 and _flights(setup).waiting == 2)
        upstream.open.set()
        done = await asyncio.gather(*answers)
        assert len(_flights(setup)) == 0 and _flights(setup).waiting == 0
    assert upstream.calls == 2
    outcomes = sorted(
        (answer.status_code, answer.headers.get("x-modelway-cache")) for answer in done
    )
    assert outcomes == [(200, "hit"), (200, "miss"), (502, None)]
