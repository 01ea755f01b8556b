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

from modelway.gateway import relayed_responses
from modelway.gateway.relayed_responses import _remembering, _stream_id
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


def test_store_false_or_no_store_days_remembers_nothing() -> None:
    def state(days: float) -> Any:
        return SimpleNamespace(config=SimpleNamespace(responses=SimpleNamespace(store_days=days)))

    assert relayed_responses.keep_seconds(state(30), {"store": False}) == 0
    assert relayed_responses.keep_seconds(state(0), {}) == 0
    assert relayed_responses.keep_seconds(state(1), {"store": True}) == 86400


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
    async for _ in _remembering(upstream(), state, "key:a", "openai", 60.0):
        seen.append(await store.responses.relayed_provider("resp_42abc", "key:a"))
    assert seen == [None, "openai", "openai"]


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
        chunks = [c async for c in _remembering(upstream(), state, "open", "openai", 60.0)]
    assert chunks == [CREATED, DELTA]
    assert "could not remember relayed response resp_42abc" in caplog.text
