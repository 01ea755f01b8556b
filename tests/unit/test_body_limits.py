"""Request bodies: how long a sender has (``server.body_timeout``) and how many may be
arriving at once (``server.max_bodies_arriving``) — slow senders cannot take every
connection a worker has."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from modelway.config import parse_config
from modelway.gateway import http as body_reading
from modelway.gateway.app import create_app
from tests.polling import eventually

CHAT = b'{"model": "mock/echo", "messages": [{"role": "user", "content": "hi"}]}'


@pytest.fixture
async def http(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    environ = {"MODELWAY_DATA_DIR": str(tmp_path)}
    app = create_app(parse_config(request.param, environ), environ)
    async with app.lifespan():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield client


class Trickle:
    """A request body that sends its first byte, then waits until told to go on."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.go_on = asyncio.Event()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield CHAT[:1]
        self.started.set()
        await self.go_on.wait()
        yield CHAT[1:]


@pytest.mark.parametrize("http", ["server: {body_timeout: 0.2}"], indirect=True)
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/embeddings", "/chat/api/sessions"])
async def test_a_body_that_stops_coming_is_408_after_the_configured_time(
    http: httpx.AsyncClient, path: str
) -> None:
    headers = {"content-type": "application/json"}
    response = await http.post(path, content=Trickle(), headers=headers)
    assert response.status_code == 408
    assert "0.2 s" in response.text


class Clock:
    """The clock body arrivals are timed by, moved by the test."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(body_reading, "_clock", clock)
    return clock


# A long timeout: the held bodies must not time out while a busy machine runs the test.
@pytest.mark.parametrize("http", ["server: {max_bodies_arriving: 2}"], indirect=True)
async def test_past_the_slow_bodies_arriving_at_once_a_request_is_503_without_waiting(
    http: httpx.AsyncClient, clock: Clock
) -> None:
    slow = [Trickle(), Trickle()]
    waiting = [
        asyncio.create_task(http.post("/v1/chat/completions", content=body)) for body in slow
    ]
    await eventually(lambda: all(body.started.is_set() for body in slow))
    # Just begun, they are a burst, not slow senders: the next caller is taken in.
    assert (await http.post("/v1/chat/completions", content=CHAT)).status_code == 200
    clock.now += body_reading.SLOW_BODY_SECONDS * 2
    refused = await http.post("/v1/chat/completions", content=CHAT)
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "server_busy"
    assert refused.headers["retry-after"] == "1"
    for body in slow:
        body.go_on.set()
    assert [r.status_code for r in await asyncio.gather(*waiting)] == [200, 200]
    # Once they have arrived, the next is taken in again, and nothing is left counted.
    assert (await http.post("/v1/chat/completions", content=CHAT)).status_code == 200
    assert (body_reading._Arrivals.count, body_reading._Arrivals.by_step) == (0, {})
