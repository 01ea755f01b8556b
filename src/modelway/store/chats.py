"""Chat sessions and their messages, for the web chat and the terminal chat."""

from __future__ import annotations

import time
from typing import Any

from msgspec.structs import asdict
from sqlalchemy import Row, delete, func, insert, select, text, update

from modelway.errors import BadRequest, NotFound
from modelway.store.engine import Database
from modelway.store.records import ChatMessage, ChatRole, ChatSession, new_id
from modelway.store.tables import chat_messages, chat_sessions

#: What ``update_session`` may change.
SESSION_SETTINGS = frozenset({"title", "model", "system", "temperature", "max_tokens"})
_ROLES = frozenset({"user", "assistant"})
#: The most sessions one owner (a key, the master key, the open gateway) keeps through the
#: web chat's API: every listing returns them all.
MAX_SESSIONS = 2_000
#: The most messages, and characters of them, a session takes from its user: its whole
#: history is read (and sent to the model) for every message. A reply is always kept.
MAX_SESSION_MESSAGES = 5_000
MAX_SESSION_TEXT = 8_000_000
#: The longest system prompt a session keeps (every listing carries it).
MAX_SYSTEM = 20_000


class ChatRepository:
    """Sessions (newest updated first) and their messages (oldest first)."""

    def __init__(self, engine: Database) -> None:
        self._engine = engine

    async def create_session(
        self,
        owner: str | None = None,
        title: str = "New chat",
        model: str | None = None,
        system: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        *,
        most: int | None = None,
    ) -> ChatSession:
        """A new, empty session; ``BadRequest`` if ``owner`` then has more than ``most``
        (the web chat's API passes ``MAX_SESSIONS``; the terminal chat on this machine
        none)."""
        now = time.time()
        session = ChatSession(
            id=new_id(),
            owner=owner,
            title=title,
            model=model,
            system=system,
            temperature=temperature,
            max_tokens=max_tokens,
            created_at=now,
            updated_at=now,
        )
        async with self._engine.begin() as connection:
            if most is not None and connection.dialect.name == "postgresql":
                # One creation at a time (rare and quick), so each counts the ones before;
                # SQLite's single writer does that by itself once the insert below runs.
                await connection.execute(
                    text("LOCK TABLE chat_sessions IN SHARE ROW EXCLUSIVE MODE")
                )
            await connection.execute(insert(chat_sessions).values(asdict(session)))
            counted = select(func.count()).select_from(chat_sessions).where(_owned_by(owner))
            if most is not None and (await connection.execute(counted)).scalar_one() > most:
                raise BadRequest(
                    f"there are already {most:,} chat sessions: delete some to start another"
                )
        return session

    async def list_sessions(self, owner: str | None = None) -> list[ChatSession]:
        """The sessions of ``owner`` (None: the anonymous owner's), newest updated first."""
        query = (
            select(chat_sessions)
            .where(_owned_by(owner))
            .order_by(chat_sessions.c.updated_at.desc(), chat_sessions.c.created_at.desc())
        )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [_session(row) for row in rows]

    async def get_session(self, session_id: str) -> ChatSession | None:
        """One session, or None."""
        query = select(chat_sessions).where(chat_sessions.c.id == session_id)
        async with self._engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return None if row is None else _session(row)

    async def update_session(self, session_id: str, **fields: Any) -> ChatSession | None:
        """Change some of title, model, system, temperature, max_tokens; None if no such session."""
        unknown = set(fields) - SESSION_SETTINGS
        if unknown:
            raise BadRequest(f"chat sessions have no setting {', '.join(sorted(unknown))}")
        statement = (
            update(chat_sessions)
            .where(chat_sessions.c.id == session_id)
            .values(**fields, updated_at=time.time())
        )
        async with self._engine.begin() as connection:
            changed = (await connection.execute(statement)).rowcount
        return await self.get_session(session_id) if changed else None

    async def delete_session(self, session_id: str) -> bool:
        """Delete a session and its messages; False if there was no such session."""
        async with self._engine.begin() as connection:
            await connection.execute(
                delete(chat_messages).where(chat_messages.c.session_id == session_id)
            )
            result = await connection.execute(
                delete(chat_sessions).where(chat_sessions.c.id == session_id)
            )
        return result.rowcount > 0

    async def add_message(
        self,
        session_id: str,
        role: ChatRole,
        content: str,
        *,
        model: str | None = None,
        provider: str | None = None,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        usage_accurate: bool | None = None,
        error: str | None = None,
        error_status: int | None = None,
        message_id: str | None = None,
    ) -> ChatMessage:
        """Append a message to a session (and bump its ``updated_at``); a NUL in it is kept
        as U+FFFD, as PostgreSQL keeps it, so SQLite counts its characters the same.
        ``message_id`` is the id to save it with (the web chat names a reply before it
        ends), else a new one.

        A user's message that would take the session past ``MAX_SESSION_MESSAGES`` or
        ``MAX_SESSION_TEXT`` is refused (``BadRequest``); a reply is always kept.
        """
        if role not in _ROLES:
            raise BadRequest(f"a chat message's role is user or assistant, not {role!r}")
        content = content.replace("\x00", "\ufffd")
        message = ChatMessage(
            id=message_id or new_id(),
            session_id=session_id,
            role=role,
            content=content,
            model=model,
            provider=provider,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            usage_accurate=usage_accurate,
            error=error,
            error_status=error_status,
            created_at=time.time(),
        )
        async with self._engine.begin() as connection:
            bumped = await connection.execute(
                update(chat_sessions)
                .where(chat_sessions.c.id == session_id)
                .values(updated_at=message.created_at)
            )
            if not bumped.rowcount:
                raise NotFound(f"no chat session {session_id}")
            if role == "user":
                await _check_room(connection, session_id, len(content))
            await connection.execute(insert(chat_messages).values(asdict(message)))
        return message

    async def list_messages(self, session_id: str) -> list[ChatMessage]:
        """A session's messages, oldest first."""
        query = (
            select(chat_messages)
            .where(chat_messages.c.session_id == session_id)
            .order_by(chat_messages.c.created_at, chat_messages.c.id)
        )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [_message(row) for row in rows]

    async def delete_message(self, message_id: str) -> bool:
        """Delete one message (regenerate drops the last reply); False if there was none."""
        async with self._engine.begin() as connection:
            result = await connection.execute(
                delete(chat_messages).where(chat_messages.c.id == message_id)
            )
        return result.rowcount > 0


def _owned_by(owner: str | None) -> Any:
    return chat_sessions.c.owner.is_(None) if owner is None else chat_sessions.c.owner == owner


def check_room(history: list[ChatMessage], content: str) -> None:
    """``BadRequest`` if a user's message ``content`` takes a session holding ``history``
    past its bounds (said before a call; ``add_message`` checks again as it saves)."""
    _refuse_if_full(len(history), sum(len(m.content) for m in history), len(content))


async def _check_room(connection: Any, session_id: str, characters: int) -> None:
    """``BadRequest`` if a message of ``characters`` takes the session past its bounds."""
    count, text = (
        await connection.execute(
            select(
                func.count(), func.coalesce(func.sum(func.length(chat_messages.c.content)), 0)
            ).where(chat_messages.c.session_id == session_id)
        )
    ).one()
    _refuse_if_full(count, text, characters)


def _refuse_if_full(count: int, text: int, characters: int) -> None:
    if count >= MAX_SESSION_MESSAGES or text + characters > MAX_SESSION_TEXT:
        raise BadRequest(
            f"this chat is full ({MAX_SESSION_MESSAGES:,} messages or {MAX_SESSION_TEXT:,} "
            "characters at most): start a new chat"
        )


def _session(row: Row[Any]) -> ChatSession:
    return ChatSession(**row._asdict())


def _message(row: Row[Any]) -> ChatMessage:
    return ChatMessage(**row._asdict())
