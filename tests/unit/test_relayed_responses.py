"""A relayed Responses stream's id, remembered before the chunk naming it goes out
(``gateway.relayed_responses``); the reads themselves are tested through a real gateway
(tests/integration/test_gateway_relayed_responses.py)."""

from __future__ import annotations

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
from modelway.errors import ModelwayError, UpstreamError
from modelway.gateway import relayed_responses
from modelway.gateway.relayed_responses import _remembering, _stream_id, upstream_of
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


@given(cut=st.integers(min_value=0, max_value=len(CREATED)), crlf=st.booleans())
def test_the_id_is_found_once_its_event_is_whole_wherever_the_chunks_split_it(
    cut: int, crlf: bool
) -> None:
    stream = CREATED + DELTA
    if crlf:
        stream = stream.replace(b"\n", b"\r\n")
    head = stream[: cut * (2 if crlf else 1)]
    whole_first_event = head.replace(b"\r\n", b"\n").startswith(CREATED)
    assert _stream_id(head) == ("resp_42abc" if whole_first_event else None)
    assert _stream_id(stream) == "resp_42abc"


@pytest.mark.parametrize(
    "response",
    [{"id": "resp_../../admin"}, {"id": "x" * 129}, {"id": 7}, {}, "resp_1", None],
)
def test_an_id_that_could_not_be_a_path_segment_is_not_taken(response: Any) -> None:
    event = {"type": "response.created", "response": response}
    assert _stream_id(b"data: " + orjson.dumps(event) + b"\n\n") is None


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

    state: Any = SimpleNamespace(store=store)
    backend = HttpProvider("openai", OpenAIAdapter(), "http://upstream.test/v1", None)
    async for _ in _remembering(upstream(), state, "key:a", backend, 60.0):
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
        store=SimpleNamespace(responses=SimpleNamespace(save_relayed=store_down))
    )
    with caplog.at_level(logging.ERROR, "modelway.gateway"):
        backend = HttpProvider("openai", OpenAIAdapter(), "http://upstream.test/v1", None)
        chunks = [c async for c in _remembering(upstream(), state, "open", backend, 60.0)]
    assert chunks == [CREATED, DELTA]
    assert "could not remember relayed response resp_42abc" in caplog.text


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


async def test_a_store_that_cannot_be_read_is_a_503_not_a_500() -> None:
    async def store_down(*args: object) -> None:
        raise ConnectionRefusedError("database down")

    state: Any = SimpleNamespace(
        store=SimpleNamespace(
            responses=SimpleNamespace(relayed_owner=store_down, relayed_upstream=store_down)
        )
    )
    body = {"previous_response_id": "resp_abc"}
    with pytest.raises(ModelwayError) as continuing:
        await relayed_responses.check_previous(state, ANONYMOUS, body)
    with pytest.raises(ModelwayError) as reading:
        await relayed_responses.forwarded(state, ANONYMOUS, "resp_abc", method="GET")
    assert continuing.value.status == reading.value.status == 503
    assert "store" in reading.value.message
