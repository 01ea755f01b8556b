"""Chat sessions and messages as the web chat and the terminal chat keep them.

tests/integration/test_store_postgres.py runs these same tests against PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from modelway.errors import BadRequest, NotFound
from modelway.store import Store, chats, database_url


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(database_url({"MODELWAY_DATA_DIR": str(tmp_path)}))
    yield store
    await store.aclose()


async def test_a_new_session_has_defaults_and_can_be_read_back(store: Store) -> None:
    session = await store.chats.create_session()
    assert session.title == "New chat"
    assert session.owner is None and session.model is None and session.system is None
    assert session.created_at == session.updated_at
    assert await store.chats.get_session(session.id) == session


async def test_a_session_keeps_its_settings(store: Store) -> None:
    session = await store.chats.create_session(
        owner="alice",
        title="Plans",
        model="mock/echo",
        system="Be brief.",
        temperature=0.2,
        max_tokens=300,
    )
    read = await store.chats.get_session(session.id)
    assert read is not None
    assert (read.owner, read.title, read.model, read.system) == (
        "alice",
        "Plans",
        "mock/echo",
        "Be brief.",
    )
    assert (read.temperature, read.max_tokens) == (0.2, 300)


async def test_sessions_are_listed_newest_updated_first(store: Store) -> None:
    older = await store.chats.create_session(title="older")
    newer = await store.chats.create_session(title="newer")
    assert [s.title for s in await store.chats.list_sessions()] == ["newer", "older"]
    await store.chats.add_message(older.id, "user", "bump")
    assert [s.id for s in await store.chats.list_sessions()] == [older.id, newer.id]


async def test_sessions_are_listed_per_owner(store: Store) -> None:
    await store.chats.create_session(owner="alice", title="hers")
    await store.chats.create_session(owner="bob", title="his")
    await store.chats.create_session(title="anonymous")
    assert [s.title for s in await store.chats.list_sessions(owner="alice")] == ["hers"]
    assert [s.title for s in await store.chats.list_sessions()] == ["anonymous"]


async def test_updating_a_session_changes_only_the_given_settings(store: Store) -> None:
    session = await store.chats.create_session(title="draft", model="mock/echo")
    updated = await store.chats.update_session(session.id, title="final", temperature=0.7)
    assert updated is not None
    assert (updated.title, updated.model, updated.temperature) == ("final", "mock/echo", 0.7)
    assert updated.updated_at >= session.updated_at
    cleared = await store.chats.update_session(session.id, model=None)
    assert cleared is not None and cleared.model is None


async def test_updating_an_unknown_session_returns_none(store: Store) -> None:
    assert await store.chats.update_session("missing", title="x") is None


async def test_updating_a_setting_that_does_not_exist_is_a_bad_request(store: Store) -> None:
    session = await store.chats.create_session()
    with pytest.raises(BadRequest, match="owner"):
        await store.chats.update_session(session.id, owner="mallory")


async def test_messages_come_back_oldest_first_with_their_usage(store: Store) -> None:
    session = await store.chats.create_session()
    question = await store.chats.add_message(session.id, "user", "Hi")
    answer = await store.chats.add_message(
        session.id,
        "assistant",
        "Hello!",
        model="echo",
        provider="mock",
        prompt_tokens=3,
        completion_tokens=2,
        usage_accurate=True,
    )
    assert await store.chats.list_messages(session.id) == [question, answer]
    assert (answer.model, answer.provider, answer.prompt_tokens) == ("echo", "mock", 3)
    assert answer.usage_accurate is True and answer.error is None


async def test_adding_a_message_bumps_the_sessions_updated_at(store: Store) -> None:
    session = await store.chats.create_session()
    message = await store.chats.add_message(session.id, "user", "Hi")
    bumped = await store.chats.get_session(session.id)
    assert bumped is not None and bumped.updated_at == message.created_at


async def test_a_failed_reply_is_kept_with_its_error(store: Store) -> None:
    session = await store.chats.create_session()
    reply = await store.chats.add_message(session.id, "assistant", "", error="upstream 503")
    assert (await store.chats.list_messages(session.id))[0].error == "upstream 503"
    assert reply.error == "upstream 503"


async def test_a_message_for_an_unknown_session_is_refused(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.chats.add_message("missing", "user", "Hi")


async def test_a_message_role_is_user_or_assistant(store: Store) -> None:
    session = await store.chats.create_session()
    with pytest.raises(BadRequest):
        await store.chats.add_message(session.id, "system", "Hi")  # type: ignore[arg-type]


async def test_deleting_a_message_drops_only_that_message(store: Store) -> None:
    session = await store.chats.create_session()
    question = await store.chats.add_message(session.id, "user", "Hi")
    answer = await store.chats.add_message(session.id, "assistant", "Hello")
    assert await store.chats.delete_message(answer.id) is True
    assert await store.chats.delete_message(answer.id) is False
    assert await store.chats.list_messages(session.id) == [question]


async def test_deleting_a_session_deletes_its_messages(store: Store) -> None:
    session = await store.chats.create_session()
    other = await store.chats.create_session()
    await store.chats.add_message(session.id, "user", "Hi")
    kept = await store.chats.add_message(other.id, "user", "Hello")
    assert await store.chats.delete_session(session.id) is True
    assert await store.chats.get_session(session.id) is None
    assert await store.chats.list_messages(session.id) == []
    assert await store.chats.list_messages(other.id) == [kept]
    assert await store.chats.delete_session(session.id) is False


# --- bounds: what one owner and one session may hold ----------------------------------------


async def test_an_owner_keeps_at_most_the_sessions_asked_even_created_at_once(
    store: Store,
) -> None:
    made = await asyncio.gather(
        *(store.chats.create_session(owner="alice", most=3) for _ in range(10)),
        return_exceptions=True,
    )
    refused = [error for error in made if isinstance(error, BaseException)]
    assert len(refused) == 7 and all("already 3 chat sessions" in str(e) for e in refused)
    assert len(await store.chats.list_sessions(owner="alice")) == 3
    # Another owner, and the open gateway's sessions, are counted apart.
    await store.chats.create_session(owner="bob", most=3)
    await store.chats.create_session(owner=None, most=3)
    doomed = (await store.chats.list_sessions(owner="alice"))[0]
    await store.chats.delete_session(doomed.id)
    await store.chats.create_session(owner="alice", most=3)  # room again
    await store.chats.create_session(owner="alice")  # the terminal chat's own: no bound


async def test_a_nul_counts_as_a_character_of_the_sessions_text(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's length() stops at a NUL: kept as U+FFFD (as PostgreSQL keeps it) it counts."""
    monkeypatch.setattr(chats, "MAX_SESSION_TEXT", 100)
    session = await store.chats.create_session()
    await store.chats.add_message(session.id, "user", "\x00" + "x" * 90)
    with pytest.raises(BadRequest, match="this chat is full"):
        await store.chats.add_message(session.id, "user", "\x00" + "x" * 90)
    [kept] = await store.chats.list_messages(session.id)
    assert kept.content == "\ufffd" + "x" * 90


async def test_a_user_message_past_the_sessions_bounds_is_refused_and_a_reply_is_kept(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chats, "MAX_SESSION_MESSAGES", 3)
    monkeypatch.setattr(chats, "MAX_SESSION_TEXT", 50)
    session = await store.chats.create_session()
    await store.chats.add_message(session.id, "user", "é" * 10)  # characters, not bytes
    await store.chats.add_message(session.id, "assistant", "a reply of twenty-nine letter")
    with pytest.raises(BadRequest, match="this chat is full"):  # 10 + 29 + 12 > 50 characters
        await store.chats.add_message(session.id, "user", "x" * 12)
    await store.chats.add_message(session.id, "user", "short")
    with pytest.raises(BadRequest, match="this chat is full"):
        await store.chats.add_message(session.id, "user", "1")  # the fourth message
    await store.chats.add_message(session.id, "assistant", "the reply to 'short'")
    contents = [message.content for message in await store.chats.list_messages(session.id)]
    assert contents == ["é" * 10, "a reply of twenty-nine letter", "short", "the reply to 'short'"]
