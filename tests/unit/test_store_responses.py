"""Stored Responses API answers: scoped, expiring on an injected clock, deleted lazily.

tests/integration/test_store_postgres_responses.py runs these same tests against PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Table, func, select

from modelway.store import Store, database_url
from modelway.store.responses import (
    PURGE_BATCH,
    ResponseRepository,
    decode_conversation,
    encode_conversation,
)
from modelway.store.tables import relayed_responses, stored_responses
from modelway.types import ImagePart, Message, TextPart, ToolCall

DAY = 86400.0
#: A fixed instant far from any real date: nothing here depends on the calendar.
EPOCH = 2_000_000_000.0


class Clock:
    """Epoch seconds that move only when a test says."""

    def __init__(self) -> None:
        self.now = EPOCH

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(database_url({"MODELWAY_DATA_DIR": str(tmp_path)}))
    yield store
    await store.aclose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def responses(store: Store, clock: Clock) -> ResponseRepository:
    return ResponseRepository(store.engine, clock=clock)


CONVERSATION = [
    Message(role="system", content=[TextPart("Be terse.")]),
    Message(role="user", content=[TextPart("Weather?"), ImagePart(url="https://x.test/a.png")]),
    Message(role="assistant", tool_calls=[ToolCall(id="call_1", name="weather", arguments="{}")]),
    Message(role="tool", content=[TextPart("hot \x00 and dry")], tool_call_id="call_1"),
]


async def save(
    responses: ResponseRepository, response_id: str, owner: str = "key:a", days: float = 30
) -> None:
    await responses.save(
        response_id,
        owner,
        "mock/echo",
        conversation=encode_conversation(CONVERSATION),
        response=f'{{"id": "{response_id}", "object": "response"}}',
        keep_seconds=days * DAY,
    )


async def row_count(store: Store, table: Table = stored_responses) -> int:
    async with store.engine.connect() as connection:
        count = (await connection.execute(select(func.count()).select_from(table))).scalar()
    return int(count or 0)


async def test_a_saved_response_reads_back_whole(responses: ResponseRepository) -> None:
    await save(responses, "resp_mw1")
    found = await responses.get("resp_mw1", "key:a")
    assert found is not None
    assert (found.id, found.owner, found.model) == ("resp_mw1", "key:a", "mock/echo")
    assert (found.created_at, found.expires_at) == (EPOCH, EPOCH + 30 * DAY)
    assert found.response == '{"id": "resp_mw1", "object": "response"}'
    assert found.conversation is not None
    assert decode_conversation(found.conversation) == CONVERSATION


async def test_another_owner_neither_reads_nor_deletes_it(responses: ResponseRepository) -> None:
    await save(responses, "resp_mw1", owner="team:red")
    assert await responses.get("resp_mw1", "team:blue") is None
    assert await responses.get("resp_mw1", "key:a") is None
    assert await responses.delete("resp_mw1", "open") is False
    assert await responses.get("resp_mw1", "team:red") is not None


async def test_delete_removes_it_once(responses: ResponseRepository) -> None:
    await save(responses, "resp_mw1")
    assert await responses.delete("resp_mw1", "key:a") is True
    assert await responses.get("resp_mw1", "key:a") is None
    assert await responses.delete("resp_mw1", "key:a") is False


async def test_an_unknown_id_is_absent(responses: ResponseRepository) -> None:
    assert await responses.get("resp_mw-none", "key:a") is None
    assert await responses.delete("resp_mw-none", "key:a") is False


async def test_a_response_expires_on_the_clock(
    responses: ResponseRepository, clock: Clock, store: Store
) -> None:
    await save(responses, "resp_mw1", days=1)
    clock.now += DAY - 1
    assert await responses.get("resp_mw1", "key:a") is not None
    clock.now += 1
    assert await responses.get("resp_mw1", "key:a") is None  # expired: never returned
    assert await responses.delete("resp_mw1", "key:a") is False
    assert await row_count(store) == 1  # ... and still there until a write purges it


async def test_writes_delete_expired_rows_a_bounded_batch_at_a_time(
    responses: ResponseRepository, clock: Clock, store: Store
) -> None:
    for number in range(PURGE_BATCH + 5):
        await save(responses, f"resp_mw{number}", days=1)
    await save(responses, "resp_mw-long", days=30)
    clock.now += 2 * DAY
    await save(responses, "resp_mw-new", days=1)  # purges PURGE_BATCH of the expired
    assert await row_count(store) == 5 + 2
    assert await responses.purge_expired() == 5
    assert await row_count(store) == 2
    assert await responses.get("resp_mw-long", "key:a") is not None
    assert await responses.get("resp_mw-new", "key:a") is not None


async def test_a_response_kept_without_its_conversation_reads_back_so(
    responses: ResponseRepository,
) -> None:
    await responses.save(
        "resp_mw1", "open", "m", conversation=None, response="{}", keep_seconds=DAY
    )
    found = await responses.get("resp_mw1", "open")
    assert found is not None and found.conversation is None


async def test_the_store_has_a_responses_repository(store: Store) -> None:
    await store.responses.save(
        "resp_mw1", "open", "m", conversation="[]", response="{}", keep_seconds=DAY
    )
    assert await store.responses.get("resp_mw1", "open") is not None


# --- relayed responses: whose each is, and which provider keeps it -------------------------


async def test_a_relayed_response_names_its_provider_to_its_owner_alone(
    responses: ResponseRepository,
) -> None:
    await responses.save_relayed("resp_abc", "team:red", "openai", "up1", keep_seconds=DAY)
    assert await responses.relayed_upstream("resp_abc", "team:red") == "up1"
    assert await responses.relayed_upstream("resp_abc", "key:a") is None
    assert await responses.relayed_upstream("resp_other", "team:red") is None
    assert await responses.relayed_owner("resp_abc") == "team:red"
    assert await responses.relayed_owner("resp_other") is None
    await responses.forget_relayed("resp_abc", "key:a")  # not theirs: nothing happens
    assert await responses.relayed_upstream("resp_abc", "team:red") == "up1"
    await responses.forget_relayed("resp_abc", "team:red")
    assert await responses.relayed_upstream("resp_abc", "team:red") is None


async def test_an_id_given_twice_keeps_its_first_owner_until_it_expires(
    responses: ResponseRepository, clock: Clock
) -> None:
    # An upstream answering one id twice made the second call a 500 (the id is unique).
    await responses.save_relayed("resp_1", "key:a", "openai", "up1", keep_seconds=DAY)
    await responses.save_relayed("resp_1", "key:b", "custom", "up9", keep_seconds=DAY)
    assert await responses.relayed_owner("resp_1") == "key:a"
    assert await responses.relayed_upstream("resp_1", "key:a") == "up1"
    clock.now += DAY  # expired (not yet purged): the id is free again
    await responses.save_relayed("resp_1", "key:b", "custom", "up9", keep_seconds=DAY)
    assert await responses.relayed_upstream("resp_1", "key:b") == "up9"


async def test_a_relayed_response_expires_and_is_purged_in_bounded_batches(
    responses: ResponseRepository, clock: Clock, store: Store
) -> None:
    for number in range(PURGE_BATCH + 3):
        await responses.save_relayed(f"resp_{number}", "open", "azure", "up2", keep_seconds=DAY)
    clock.now += DAY
    assert await responses.relayed_upstream("resp_0", "open") is None
    await responses.save_relayed("resp_new", "open", "openai", "up1", keep_seconds=DAY)
    assert await row_count(store, relayed_responses) == 3 + 1
    assert await responses.purge_expired() == 3
    assert await responses.relayed_upstream("resp_new", "open") == "up1"


def test_conversations_round_trip_every_message_field() -> None:
    text = encode_conversation(CONVERSATION)
    assert decode_conversation(text) == CONVERSATION
    # Fields Message does not have (written by a later version) are ignored, not fatal.
    assert decode_conversation('[{"role": "user", "content": [], "future": 1}]') == [
        Message(role="user")
    ]
