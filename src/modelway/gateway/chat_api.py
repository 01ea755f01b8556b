"""The web chat's API: sessions and history in the store, replies streamed as JSON events.

A reply streams as server-sent events, each ``data: <json>`` with a ``type`` of
``accepted``, ``provider``, ``delta``, ``usage``, ``error``, ``rate_limited`` or ``done``
(see docs/chat.md). The user's message is saved once the call is admitted (a key's
limits, budget and models allow it: the store grows only as fast as they let a key call)
and the reply after it, also when the call fails (with its error) or the caller stops it
(marked stopped). A call refused before it starts saves nothing. A regenerate's new
reply replaces the old only once it has ended well. A message that names the last one
its client shows (``after``) is refused (409) if the chat has changed since, or while a
reply to another client's message streams (``chat_replies``).
Provider keys given to the connect dialog stay on the server: answers only say
whether a provider has one.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from modelway.calls import ANONYMOUS, MeteredCall
from modelway.calls.metered import MAX_MODEL_NAME
from modelway.chat.backend import TokensUsed, Turn, chat_request, reply_events, session_title
from modelway.chat.local import STOPPED
from modelway.errors import (
    BadRequest,
    ChatAnswering,
    ChatChanged,
    ModelwayError,
    NotFound,
    PermissionDenied,
    RateLimited,
)
from modelway.gateway.auth import request_caller
from modelway.gateway.chat_events import ChatEventStream, Emit, Event
from modelway.gateway.chat_replies import RepliesInFlight, ReplyInFlight
from modelway.gateway.http import answers_errors, parse_json_body, read_body
from modelway.gateway.state import GatewayState
from modelway.observability.context import Tracing, operation, traceparent
from modelway.store.chats import MAX_SESSIONS, MAX_SYSTEM, check_room
from modelway.store.records import ChatMessage, ChatSession, new_id
from modelway.types import ChatRequest, TextDelta

log = logging.getLogger("modelway.gateway.chat_api")
DEFAULT_TITLE = "New chat"
TITLE_LIMIT = 200


async def _caller(request: Request) -> str | None:
    """The owner of the caller's sessions: its key's id, ``master``, or None when open."""
    caller = request_caller(request)
    return "master" if caller.is_master else caller.key_id


def _require_admin(request: Request) -> None:
    """Provider keys are the operator's business: the master key (or an open gateway)."""
    caller = request_caller(request)
    if not caller.is_master and caller is not ANONYMOUS:
        raise PermissionDenied("connecting providers needs the master key")


def _json(body: object, status: int = 200) -> Response:
    return Response(msgspec.json.encode(body), status_code=status, media_type="application/json")


async def _json_object(request: Request, *, optional: bool = False) -> dict[str, Any]:
    state: GatewayState = request.app.state.gateway
    raw = await read_body(request, state.body_limits)
    if optional and not raw.strip():
        return {}
    body = parse_json_body(raw)
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


def _session_fields(body: dict[str, Any]) -> dict[str, Any]:
    """The session settings in ``body``, checked; fields it does not name are left out."""
    return {name: check(body[name]) for name, check in _SETTING_CHECKS.items() if name in body}


def _title(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadRequest("title: a non-empty string")
    return value.strip()[:TITLE_LIMIT]


def _optional_text(name: str) -> Callable[[object], str | None]:
    def check(value: object) -> str | None:
        if value is not None and not isinstance(value, str):
            raise BadRequest(f"{name}: a string or null")
        return value or None

    return check


def _temperature(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest("temperature: a number from 0 to 2, or null")
    if not (math.isfinite(value) and 0.0 <= value <= 2.0):
        raise BadRequest("temperature: a number from 0 to 2, or null")
    return float(value)


#: The most ``max_tokens`` a session may ask for (the store keeps it in an integer column).
MAX_TOKENS = 2**31 - 1


def _max_tokens(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TOKENS:
        raise BadRequest(f"max_tokens: a positive integer up to {MAX_TOKENS}, or null")
    return value


def _system(value: object) -> str | None:
    system = _optional_text("system")(value)
    if system is not None and len(system) > MAX_SYSTEM:
        raise BadRequest(f"system: at most {MAX_SYSTEM:,} characters")
    return system


def _model(value: object) -> str | None:
    model = _optional_text("model")(value)
    if model is not None and len(model) > MAX_MODEL_NAME:
        raise BadRequest(f"model: at most {MAX_MODEL_NAME} characters")
    return model


_SETTING_CHECKS: dict[str, Callable[[object], Any]] = {
    "title": _title,
    "model": _model,
    "system": _system,
    "temperature": _temperature,
    "max_tokens": _max_tokens,
}


async def _owned_session(request: Request) -> ChatSession:
    """The session the path names, if the caller owns it; ``NotFound`` otherwise."""
    state: GatewayState = request.app.state.gateway
    session_id = request.path_params["session_id"]
    session = await state.store.chats.get_session(session_id)
    if session is None or session.owner != await _caller(request):
        raise NotFound(f"no chat session {session_id}")
    return session


# --- sessions ----------------------------------------------------------------------------


@answers_errors
async def list_sessions(request: Request) -> Response:
    """The caller's sessions, most recently used first."""
    state: GatewayState = request.app.state.gateway
    sessions = await state.store.chats.list_sessions(owner=await _caller(request))
    return _json({"sessions": sessions})


@answers_errors
async def create_session(request: Request) -> Response:
    """A new session with the settings given."""
    state: GatewayState = request.app.state.gateway
    fields = {"title": DEFAULT_TITLE, **_session_fields(await _json_object(request, optional=True))}
    session = await state.store.chats.create_session(
        owner=await _caller(request), most=MAX_SESSIONS, **fields
    )
    return _json(session, status=201)


@answers_errors
async def get_session(request: Request) -> Response:
    """One session and its messages, oldest first."""
    state: GatewayState = request.app.state.gateway
    session = await _owned_session(request)
    messages = await state.store.chats.list_messages(session.id)
    return _json({"session": session, "messages": messages})


@answers_errors
async def update_session(request: Request) -> Response:
    """Change a session's title, model, system prompt, temperature or max tokens."""
    state: GatewayState = request.app.state.gateway
    session = await _owned_session(request)
    fields = _session_fields(await _json_object(request))
    updated = await state.store.chats.update_session(session.id, **fields) if fields else session
    if updated is None:
        raise NotFound(f"no chat session {session.id}")
    return _json(updated)


@answers_errors
async def delete_session(request: Request) -> Response:
    """Delete a session and its messages."""
    state: GatewayState = request.app.state.gateway
    session = await _owned_session(request)
    await state.store.chats.delete_session(session.id)
    return Response(status_code=204)


# --- replies -----------------------------------------------------------------------------


@answers_errors
async def post_message(request: Request) -> Response:
    """Save the user's message and stream the reply as chat events (or regenerate the last)."""
    state: GatewayState = request.app.state.gateway
    session = await _owned_session(request)
    body = await _json_object(request)
    regenerate = body.get("regenerate") is True
    content = body.get("content")
    if not regenerate and (not isinstance(content, str) or not content.strip()):
        raise BadRequest("content: a non-empty string")
    model = _model(body.get("model")) or session.model
    if model is None:
        raise BadRequest("model: name one, or set the session's model")
    checked = "after" in body
    after = _after(body.get("after"))
    if checked:
        await state.chat_replies.wait_for_turn(session.id, after)
    history = await state.store.chats.list_messages(session.id)
    if checked and (history[-1].id if history else None) != after:
        raise ChatChanged()
    if regenerate:
        question, history, replies = _last_question(history)
        content = question.content
        prepare = functools.partial(_replace_replies, state, session, model, question, replies)
    else:
        check_room(history, str(content))
        prepare = functools.partial(
            _save_user_message, state, session, model, history, str(content)
        )
    reply = _Reply(model)
    # A client without ``after`` (an API script) is not held up, nor
    # noted when another reply already streams: only one reply per session is.
    in_flight = state.chat_replies.claim(session.id, reply.id)
    if in_flight is None and checked:
        raise ChatAnswering()  # another client's message was taken meanwhile
    reply.in_flight = functools.partial(_release, state.chat_replies, in_flight)
    try:
        return _reply_stream(request, state, session, reply, history, str(content), prepare)
    except BaseException:
        reply.in_flight()
        raise


def _after(value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise BadRequest("after: the id of the chat's last message, or null for an empty chat")
    return value


def _release(replies: RepliesInFlight, in_flight: ReplyInFlight | None) -> None:
    if in_flight is not None:
        replies.release(in_flight)


def _reply_stream(
    request: Request,
    state: GatewayState,
    session: ChatSession,
    reply: _Reply,
    history: list[ChatMessage],
    content: str,
    prepare: Prepare,
) -> ChatEventStream:
    """The reply's event stream, its call opened (admitted once the stream starts)."""
    model = reply.model
    turns = [Turn(m.role, m.content, m.model, m.error) for m in history]
    chat = chat_request(model, session.system, turns, content)
    chat = msgspec.structs.replace(
        chat, temperature=session.temperature, max_tokens=session.max_tokens
    )
    if Tracing.on:  # the caller's trace, which the call's span continues
        traceparent.set(request.headers.get("traceparent"))
        operation.set("chat")
    call = state.calls.open(
        request_caller(request),
        model,
        dialect="chat",
        request_id=request.state.request_id,
        request_bytes=sum(len(message.text()) for message in chat.messages),
        max_tokens=chat.max_tokens,
    )

    async def produce(emit: Emit) -> None:
        await _stream_reply(state, session.id, reply, chat, call, emit, prepare)

    return ChatEventStream(produce, unstarted=reply.in_flight)


#: What a call changes in the store before it streams, run once it is admitted; it marks
#: the reply as one to save (``_Reply.asked``) once the question is in the store.
Prepare = Callable[["_Reply"], Awaitable[None]]


async def _save_user_message(
    state: GatewayState,
    session: ChatSession,
    model: str,
    history: list[ChatMessage],
    content: str,
    reply: _Reply,
) -> None:
    question = await state.store.chats.add_message(session.id, "user", content)
    reply.question_id = question.id
    reply.asked = True
    changes: dict[str, Any] = {"model": model} if model != session.model else {}
    if session.title == DEFAULT_TITLE and not any(m.role == "user" for m in history):
        changes["title"] = session_title(content)
    if changes:
        await state.store.chats.update_session(session.id, **changes)


def _last_question(
    history: list[ChatMessage],
) -> tuple[ChatMessage, list[ChatMessage], list[ChatMessage]]:
    """The last user message, the history before it, and the replies after it."""
    replies: list[ChatMessage] = []
    while history and history[-1].role == "assistant":
        replies.append(history[-1])
        history = history[:-1]
    if not history:
        raise BadRequest("there is no message to answer again")
    return history[-1], history[:-1], replies


async def _replace_replies(
    state: GatewayState,
    session: ChatSession,
    model: str,
    question: ChatMessage,
    replies: list[ChatMessage],
    reply: _Reply,
) -> None:
    """Regenerating: the replies answered again are replaced by the new one once it has
    ended well (``_save_reply``); one that fails or is stopped is kept beside them."""
    reply.replaces = [old.id for old in replies]
    reply.question_id = question.id
    reply.asked = True
    if model != session.model:
        await state.store.chats.update_session(session.id, model=model)


async def _stream_reply(
    state: GatewayState,
    session_id: str,
    reply: _Reply,
    chat: ChatRequest,
    call: MeteredCall,
    emit: Emit,
    prepare: Prepare,
) -> None:
    """Emit the reply's events and save it, whatever happens once the call is admitted:
    done, failed or stopped. ``prepare`` (the user's message saved, or the replies being
    answered again marked for replacing) runs once it is: a refused call changes nothing.
    The session is free for another reply once this one is saved."""
    try:
        async with call:
            await prepare(reply)
            # The ids the question has and the reply will have, however it ends: a client
            # names the last of them when it sends again (``after``), also after a Stop.
            accepted = {"question_id": reply.question_id, "reply_id": reply.id}
            await emit({"type": "accepted", **accepted})
            events = await call.stream(chat)
            answered_by = call.answered_by
            assert answered_by is not None
            reply.provider, reply.model = answered_by
            await emit({"type": "provider", "provider": reply.provider, "model": reply.model})
            async for event in reply_events(chat, events, reply.text):
                if isinstance(event, TextDelta):
                    await emit({"type": "delta", "text": event.text})
                elif isinstance(event, TokensUsed):
                    reply.tokens = event
                    await emit(_usage_event(event))
            reply.error = None
    except (OSError, ClientDisconnect):
        pass  # the caller left between two events: the reply is saved as stopped
    except RateLimited as failure:
        reply.error, reply.status = failure.message, 429
        retry_after = failure.retry_after
        await emit({"type": "rate_limited", "message": reply.error, "retry_after": retry_after})
    except ModelwayError as failure:
        reply.error, reply.status = failure.message, failure.status
        await emit({"type": "error", "message": reply.error, "status": failure.status})
    except Exception:
        log.exception("chat reply failed", extra={"request_id": call.request_id})
        reply.error, reply.status = "internal gateway error", 500
        await emit({"type": "error", "message": reply.error, "status": 500})
    finally:
        # Stopped or cut mid-stream, no usage came: the call's usage record has its estimate.
        late_tokens = _recorded_tokens(call) if reply.tokens is None and reply.provider else None
        reply.tokens = reply.tokens or late_tokens
        # Also runs when the caller stops the reply: what arrived is kept, marked stopped.
        # Run to the end even if the caller's leaving cancels this task again meanwhile.
        saved_id = (
            await state.calls.finisher.run(_save_reply(state, session_id, reply))
            if reply.asked
            else reply.in_flight()
        )
    if late_tokens is not None:
        await emit(_usage_event(late_tokens))
    await emit({"type": "done", "message_id": saved_id})


def _recorded_tokens(call: MeteredCall) -> TokensUsed | None:
    """The tokens a call that ended was recorded with, if it reached a provider."""
    usage = call.usage
    if usage is None:
        return None
    return TokensUsed(usage.prompt_tokens, usage.completion_tokens, usage.estimated)


class _Reply:
    """What is known of a reply so far, to be saved however it ends."""

    def __init__(self, model: str) -> None:
        #: The id it is saved with, told to the client before it streams.
        self.id = new_id()
        self.model = model
        self.provider: str | None = None
        self.text: list[str] = []
        self.tokens: TokensUsed | None = None
        self.error: str | None = STOPPED  # until the stream ends well or fails
        #: The HTTP status it failed with (429: rate limited), shown again after a reload.
        self.status: int | None = None
        #: Whether the question it answers is in the store: only then is it saved.
        self.asked = False
        #: The replies a regenerate answers again, deleted once this one ended well.
        self.replaces: list[str] = []
        #: The message it answers, once saved (or, regenerating, found).
        self.question_id: str | None = None
        #: Frees the session for another client's reply (``chat_replies``): once saved.
        self.in_flight: Callable[[], None] = lambda: None


async def _save_reply(state: GatewayState, session_id: str, reply: _Reply) -> str | None:
    try:
        return await _save_reply_once(state, session_id, reply)
    finally:
        reply.in_flight()


async def _save_reply_once(state: GatewayState, session_id: str, reply: _Reply) -> str | None:
    tokens = reply.tokens
    try:
        saved = await state.store.chats.add_message(
            session_id,
            "assistant",
            "".join(reply.text),
            model=reply.model,
            provider=reply.provider,
            prompt_tokens=tokens.prompt if tokens else None,
            completion_tokens=tokens.completion if tokens else None,
            usage_accurate=not tokens.estimated if tokens else None,
            error=reply.error,
            error_status=reply.status,
            message_id=reply.id,
        )
    except NotFound:
        return None  # the session was deleted while it answered
    if reply.error is None:
        # Saved first, deleted after: a failure in between leaves both, never neither.
        for old_id in reply.replaces:
            await state.store.chats.delete_message(old_id)
    return saved.id


def _usage_event(tokens: TokensUsed) -> Event:
    counts = {"prompt": tokens.prompt, "completion": tokens.completion, "total": tokens.total}
    return {"type": "usage", "tokens": counts, "accurate": not tokens.estimated}


ROUTES = [
    Route("/chat/api/sessions", list_sessions, methods=["GET"]),
    Route("/chat/api/sessions", create_session, methods=["POST"]),
    Route("/chat/api/sessions/{session_id}", get_session, methods=["GET"]),
    Route("/chat/api/sessions/{session_id}", update_session, methods=["PATCH"]),
    Route("/chat/api/sessions/{session_id}", delete_session, methods=["DELETE"]),
    Route("/chat/api/sessions/{session_id}/messages", post_message, methods=["POST"]),
]
