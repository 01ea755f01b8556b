"""A relayed Responses stream's id, remembered before the chunk naming it goes out
(``gateway.relayed_responses``); the reads themselves are tested through a real gateway
(tests/integration/test_gateway_relayed_responses.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelway.calls.caller import ANONYMOUS
from modelway.calls.finishing import Finisher
from modelway.calls.scanners import ResponsesScanner
from modelway.errors import StoreUnavailable, UpstreamError
from modelway.gateway import relayed_responses
from modelway.gateway.relayed_responses import _remembering, upstream_of
from modelway.providers.openai import OpenAIAdapter
from modelway.providers.upstream import HttpProvider
from modelway.store import Store, database_url

CREATED = (
    b"event: response.created\ndata: "
    + orjson.dumps(
        {"type": "response.created", "sequence_number": 0, "response": {"id": "resp_42abc"}}
    )
    + b"\n\n"
)
DELTA = b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta"}\n\n'


def scanned_id(stream: bytes, cut: int) -> tuple[str | None, str | None]:
    """The id the relay's scanner knows after the first ``cut`` bytes, and at the end."""
    scanner = ResponsesScanner()
    scanner.feed(stream[:cut])
    early = scanner.response_id
    scanner.feed(stream[cut:])
    return early, scanner.response_id


@given(cut=st.integers(min_value=0, max_value=len(CREATED)), crlf=st.booleans())
def test_the_scanner_knows_the_id_once_its_event_is_whole_wherever_the_chunks_split_it(
    cut: int, crlf: bool
) -> None:
    stream, head = CREATED + DELTA, CREATED[:cut]
    whole = cut == len(CREATED)
    if crlf:
        stream, head = stream.replace(b"\n", b"\r\n"), head.replace(b"\n", b"\r\n")
    early, late = scanned_id(stream, len(head))
    assert early == ("resp_42abc" if whole else None)
    assert late == "resp_42abc"


def test_a_first_event_of_any_size_names_the_id() -> None:
    # ``response.created`` echoes the request's instructions and tools: it may be large.
    response = {"id": "resp_big", "instructions": "x" * 1_000_000}
    event = {"type": "response.created", "sequence_number": 0, "response": response}
    stream = b"event: response.created\ndata: " + orjson.dumps(event) + b"\n\n"
    assert scanned_id(stream, 70_000) == (None, "resp_big")


@pytest.mark.parametrize("response_id", ["resp_../../admin", "x" * 129, "r\n", ""])
async def test_an_id_that_could_not_be_a_path_segment_is_not_remembered(
    response_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    saved: list[str] = []

    async def save_relayed(*args: Any, **kwargs: Any) -> None:
        saved.append(args[0])

    async def upstream() -> AsyncIterator[bytes]:
        yield b"data: {}\n\n"

    state: Any = SimpleNamespace(
        store=SimpleNamespace(responses=SimpleNamespace(save_relayed=save_relayed))
    )
    scanner = SimpleNamespace(response_id=response_id)
    backend = HttpProvider("openai", OpenAIAdapter(), "http://upstream.test/v1", None)
    chunks = [c async for c in _remembering(upstream(), scanner, state, "open", backend, 60.0)]
    assert chunks == [b"data: {}\n\n"] and saved == []
    assert "not remembered" in caplog.text


def test_store_false_remembers_nothing_and_store_days_only_lengthens_the_memory() -> None:
    def state(days: float) -> Any:
        return SimpleNamespace(config=SimpleNamespace(responses=SimpleNamespace(store_days=days)))

    assert relayed_responses.keep_seconds(state(90), {"store": False}) == 0
    # Whose it is is kept as long as OpenAI keeps the response, longer if the config says.
    assert relayed_responses.keep_seconds(state(0), {}) == 30 * 86400
    assert relayed_responses.keep_seconds(state(90), {"store": True}) == 90 * 86400


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(database_url({"MODELWAY_DATA_DIR": str(tmp_path)}))
    yield store
    await store.aclose()


async def test_the_chunk_that_names_the_id_goes_out_after_the_id_is_remembered(
    store: Store,
) -> None:
    seen: list[str | None] = []

    async def upstream() -> AsyncIterator[bytes]:
        for chunk in (CREATED[:20], CREATED[20:], DELTA):
            yield chunk

    state: Any = SimpleNamespace(store=store, calls=SimpleNamespace(finisher=Finisher()))
    backend = HttpProvider("openai", OpenAIAdapter(), "http://upstream.test/v1", None)
    scanner = ResponsesScanner()

    async def scanned() -> AsyncIterator[bytes]:
        async for chunk in upstream():
            yield scanner.feed(chunk)

    async for _ in _remembering(scanned(), scanner, state, "key:a", backend, 60.0):
        seen.append(await store.responses.relayed_upstream("resp_42abc", "key:a"))
    assert seen == [None, upstream_of(backend), upstream_of(backend)]


async def test_a_failed_save_is_logged_and_the_stream_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def upstream() -> AsyncIterator[bytes]:
        yield CREATED
        yield DELTA

    async def store_down(*args: object, **kwargs: object) -> None:
        raise ConnectionRefusedError("database down")

    state: Any = SimpleNamespace(
        store=SimpleNamespace(responses=SimpleNamespace(save_relayed=store_down)),
        calls=SimpleNamespace(finisher=Finisher()),
    )
    with caplog.at_level(logging.ERROR, "modelway.gateway"):
        backend = HttpProvider("openai", OpenAIAdapter(), "http://upstream.test/v1", None)
        scanner = SimpleNamespace(response_id="resp_42abc")
        chunks = [c async for c in _remembering(upstream(), scanner, state, "open", backend, 60.0)]
    assert chunks == [CREATED, DELTA]
    assert "could not remember relayed response resp_42abc" in caplog.text


async def test_a_store_slow_to_remember_the_id_delays_the_answer_a_second_at_most(
    store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A held write lock must not hold every relayed Responses answer for its busy timeout:
    # the answer goes on, and the id is remembered once the store takes it.
    monkeypatch.setattr(relayed_responses, "SAVE_WAIT", 0.05)
    locked = asyncio.Event()
    save = store.responses.save_relayed

    async def slow_save(*args: Any, **kwargs: Any) -> None:
        await locked.wait()
        await save(*args, **kwargs)

    monkeypatch.setattr(store.responses, "save_relayed", slow_save)
    finisher = Finisher()
    state: Any = SimpleNamespace(store=store, calls=SimpleNamespace(finisher=finisher))
    backend = HttpProvider("openai", OpenAIAdapter(), "http://upstream.test/v1", None)

    async def upstream() -> AsyncIterator[bytes]:
        yield CREATED

    scanner = SimpleNamespace(response_id="resp_42abc")
    with caplog.at_level(logging.WARNING, "modelway.gateway"):
        chunks = [c async for c in _remembering(upstream(), scanner, state, "open", backend, 60)]
    assert chunks == [CREATED] and "goes on without waiting" in caplog.text
    assert await store.responses.relayed_upstream("resp_42abc", "open") is None
    locked.set()
    await finisher.drain()
    assert await store.responses.relayed_upstream("resp_42abc", "open") == upstream_of(backend)


async def test_a_read_back_stream_that_breaks_ends_with_an_error_numbered_after_the_last() -> None:
    in_progress = {"type": "response.in_progress", "sequence_number": 1, "response": {}}

    async def upstream() -> AsyncIterator[bytes]:
        yield b"event: response.in_progress\ndata: " + orjson.dumps(in_progress) + b"\n\n"
        raise UpstreamError("openai: the upstream closed the connection")

    chunks = [chunk async for chunk in relayed_responses._scanned(upstream())]
    error = orjson.loads(chunks[-1].split(b"data: ", 1)[1])
    assert (error["type"], error["sequence_number"]) == ("error", 2)


async def test_a_read_back_stream_that_ends_early_says_so() -> None:
    async def upstream() -> AsyncIterator[bytes]:
        yield b'event: response.created\ndata: {"type":"response.created","sequence_number":0}\n\n'

    chunks = [chunk async for chunk in relayed_responses._scanned(upstream())]
    assert b"event: error" in chunks[-1] and b"response.completed" in chunks[-1]


async def test_a_store_that_cannot_be_read_is_a_503_not_a_500(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def store_down(*args: object) -> None:
        raise ConnectionRefusedError("database down")

    monkeypatch.setattr(store.responses, "relayed_owner", store_down)
    monkeypatch.setattr(store.responses, "relayed_upstream", store_down)
    state: Any = SimpleNamespace(store=store)
    body = {"previous_response_id": "resp_abc"}
    with pytest.raises(StoreUnavailable) as continuing:
        await relayed_responses.check_previous(state, ANONYMOUS, body)
    with pytest.raises(StoreUnavailable) as reading:
        await relayed_responses.forwarded(state, ANONYMOUS, "resp_abc", method="GET")
    assert continuing.value.status == reading.value.status == 503
    assert "store" in reading.value.message
    assert store.outage.down  # reported as the store's outage, once
