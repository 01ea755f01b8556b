"""The terminal chat in-process: calls as ``modelway serve`` makes them, history in the store."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncGenerator

from modelway.calls import ANONYMOUS, Calls, MeteredCall
from modelway.chat.backend import (
    Accepted,
    Answered,
    ReplyEvent,
    SessionInfo,
    TokensUsed,
    Turn,
    chat_request,
    reply_events,
)
from modelway.errors import ChatChanged, ModelwayError, NotFound
from modelway.store import ChatRepository, Store
from modelway.store.records import ChatMessage, ChatSession, new_id
from modelway.types import ChatRequest

#: What a reply that the user stopped is saved with, so it stays out of later context.
STOPPED = "stopped"
#: The terminal chat's calls in usage records (the web chat's are ``chat``).
DIALECT = "terminal"


class LocalBackend:
    """Answers as metered calls (usage recorded in ``store``, as the gateway's are); sessions
    kept in ``store``."""

    location = "in-process"

    def __init__(self, calls: Calls, store: Store) -> None:
        self._calls = calls
        self._store = store
        self._chats: ChatRepository = store.chats

    async def reconnect_saved_providers(self) -> None:
        """Enable the providers the web chat's connect dialog saved, as the gateway does.

        So a provider connected in the browser answers in the terminal too (the gateway's
        own start does this in ``chat_connections.restore_connections``).
        """
        for provider, (api_key, base_url) in (await self._store.connections.secrets()).items():
            with contextlib.suppress(ModelwayError):  # one the gateway also skips
                self._calls.engine.connect_provider(provider, api_key=api_key, base_url=base_url)

    async def check_model(self, model: str) -> None:
        self._calls.engine.route(model, take_turn=False)

    def _open(self, request: ChatRequest) -> MeteredCall:
        return self._calls.open(
            ANONYMOUS,
            request.model,
            dialect=DIALECT,
            request_id=uuid.uuid4().hex,
            request_bytes=sum(len(message.text()) for message in request.messages),
            max_tokens=request.max_tokens,
        )

    async def answer_once(
        self, content: str, model: str, system: str | None
    ) -> AsyncGenerator[ReplyEvent, None]:
        request = chat_request(model, system, [], content)
        async with self._open(request) as call:
            events = await call.stream(request)
            yield _answered(call)
            async for event in reply_events(request, events, []):
                yield event

    async def sessions(self) -> list[SessionInfo]:
        return [_session_info(session) for session in await self._chats.list_sessions()]

    async def create_session(self, title: str, model: str, system: str | None) -> SessionInfo:
        session = await self._chats.create_session(title=title, model=model, system=system)
        return _session_info(session)

    async def open_session(self, session_id: str) -> tuple[SessionInfo, list[Turn]]:
        session = await self._chats.get_session(session_id)
        if session is None:
            raise NotFound(f"no chat session {session_id!r}")
        messages = await self._chats.list_messages(session_id)
        return _session_info(session), [_turn(message) for message in messages]

    async def set_model(self, session_id: str, model: str) -> None:
        await self._chats.update_session(session_id, model=model)

    async def send(
        self, session: SessionInfo, content: str, model: str, *, after: str | None
    ) -> AsyncGenerator[ReplyEvent, None]:
        chats = self._chats
        if await chats.get_session(session.id) is None:  # deleted elsewhere meanwhile
            raise NotFound(f"no chat session {session.id}")
        history = [_turn(message) for message in await chats.list_messages(session.id)]
        # The web chat of a gateway on this store may have changed the chat meanwhile (its
        # replies streaming there are not known here, the saved history is).
        if (history[-1].id if history else None) != after:
            raise ChatChanged()
        question = await chats.add_message(session.id, "user", content)
        reply_id = new_id()
        request = chat_request(model, session.system, history, content)
        reply: list[str] = []
        answered: Answered | None = None
        tokens: TokensUsed | None = None
        error: str | None = STOPPED  # until the stream ends well or fails
        try:
            # Inside: a reply stopped as soon as its id is known is saved with that id.
            yield Accepted(question.id, reply_id)
            async with self._open(request) as call:
                events = await call.stream(request)
                answered = _answered(call)
                yield answered
                async for event in reply_events(request, events, reply):
                    if isinstance(event, TokensUsed):
                        tokens = event
                    yield event
            error = None
        except ModelwayError as failure:
            error = failure.message
            raise
        finally:
            # Also runs when the user stops the reply: what arrived is kept, marked stopped.
            saved = chats.add_message(
                session.id,
                "assistant",
                "".join(reply),
                model=answered.model if answered else model,
                provider=answered.provider if answered else None,
                prompt_tokens=tokens.prompt if tokens else None,
                completion_tokens=tokens.completion if tokens else None,
                usage_accurate=not tokens.estimated if tokens else None,
                error=error,
                message_id=reply_id,
            )
            await self._calls.finisher.run(saved)

    async def aclose(self) -> None:
        try:
            await self._calls.aclose()
        finally:
            await self._store.aclose()


def _answered(call: MeteredCall) -> Answered:
    answered_by = call.answered_by
    assert answered_by is not None
    return Answered(*answered_by)


def _session_info(session: ChatSession) -> SessionInfo:
    return SessionInfo(session.id, session.title, session.model, session.system, session.updated_at)


def _turn(message: ChatMessage) -> Turn:
    return Turn(message.role, message.content, message.model, message.error, message.id)
