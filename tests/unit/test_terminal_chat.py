"""The terminal chat's backends and pieces, in-process: a real SQLite store, a fake gateway."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from modelway.calls import stored_calls
from modelway.chat.backend import (
    Accepted,
    Answered,
    ReplyEvent,
    SessionInfo,
    TokensUsed,
    Turn,
    chat_request,
    session_title,
)
from modelway.chat.local import STOPPED, LocalBackend
from modelway.chat.remote import RemoteBackend
from modelway.chat.render import when
from modelway.config import Config
from modelway.errors import (
    AuthenticationError,
    ChatAnswering,
    ChatChanged,
    ModelwayError,
    NotFound,
    RateLimited,
    UnknownModel,
)
from modelway.providers.transport import MockReply, MockTransport, UpstreamRequest
from modelway.store import Store, database_url
from modelway.types import TextDelta

KEY = "mw-unit-test-key-abcdef0123456789"


async def _collect(events: AsyncIterator[ReplyEvent]) -> list[ReplyEvent]:
    return [event async for event in events]


def _text(events: list[ReplyEvent]) -> str:
    return "".join(event.text for event in events if isinstance(event, TextDelta))


# --- pieces ------------------------------------------------------------------------------


def test_a_session_is_titled_by_the_first_line_of_its_first_message_shortened() -> None:
    assert session_title("\n  What is a monad?\nmore detail") == "What is a monad?"
    long = session_title("word " * 40)
    assert len(long) <= 60 and long.endswith("…")
    assert session_title("   ") == "New chat"


@pytest.mark.parametrize(
    ("content", "title"),
    [
        ("# Trip planning\nten days in Japan", "Trip planning"),
        ("```python\nprint('hi')\n```", "print('hi')"),
        ("> quoted question", "quoted question"),
        ("- [ ] first task", "first task"),
        ("1. step one", "step one"),
        ("#hashtag stays", "#hashtag stays"),
        ("```\n```", "New chat"),
    ],
)
def test_a_title_leaves_out_the_markdown_a_line_starts_with(content: str, title: str) -> None:
    assert session_title(content) == title


def test_failed_and_stopped_replies_stay_out_of_the_next_request() -> None:
    turns = [
        Turn("user", "first"),
        Turn("assistant", "half an ans", error=STOPPED),
        Turn("user", "second"),
        Turn("assistant", "a good answer"),
    ]
    request = chat_request("mock/echo", "be brief", turns, "third")
    assert [(m.role, m.text()) for m in request.messages] == [
        ("system", "be brief"),
        ("user", "first"),
        ("user", "second"),
        ("assistant", "a good answer"),
        ("user", "third"),
    ]
    assert request.stream and request.include_usage


def test_times_read_as_people_say_them() -> None:
    now = 1_000_000.0
    assert when(now - 5, now) == "just now"
    assert when(now - 600, now) == "10 min ago"
    assert when(now - 7200, now) == "2 h ago"


# --- in-process --------------------------------------------------------------------------


@pytest.fixture
async def local(tmp_path: Path) -> AsyncIterator[LocalBackend]:
    environ = {"MODELWAY_DATA_DIR": str(tmp_path)}
    store = await Store.open(database_url(environ))
    backend = LocalBackend(stored_calls(Config(), environ, store), store)
    yield backend
    await backend.aclose()


async def _session(backend: LocalBackend, model: str = "mock/echo") -> SessionInfo:
    return await backend.create_session("a test", model, None)


async def test_local_replies_are_metered_calls_recorded_in_the_store(tmp_path: Path) -> None:
    environ = {"MODELWAY_DATA_DIR": str(tmp_path)}
    store = await Store.open(database_url(environ))
    backend = LocalBackend(stored_calls(Config(), environ, store), store)
    session = await _session(backend)
    await _collect(backend.send(session, "count me", "mock/echo", after=None))
    await backend.aclose()  # flushes the usage writer
    store = await Store.open(database_url(environ))
    try:
        [record] = await store.usage.recent(limit=10)
    finally:
        await store.aclose()
    assert (record.dialect, record.provider, record.model, record.status) == (
        "terminal",
        "mock",
        "echo",
        200,
    )
    assert record.stream and record.completion_tokens == 2 and not record.usage_estimated


async def test_local_replies_are_streamed_and_both_messages_saved(local: LocalBackend) -> None:
    session = await _session(local)
    events = await _collect(local.send(session, "hello there", "mock/echo", after=None))
    assert events[1] == Answered("mock", "echo")
    assert _text(events) == "hello there"
    assert isinstance(events[-1], TokensUsed) and events[-1].completion > 0

    _, turns = await local.open_session(session.id)
    assert [(t.role, t.content, t.error) for t in turns] == [
        ("user", "hello there", None),
        ("assistant", "hello there", None),
    ]
    # The ids the terminal names as the chat's last message when it sends again.
    assert events[0] == Accepted(str(turns[0].id), str(turns[1].id))


async def test_a_local_message_sent_after_the_chat_changed_elsewhere_is_refused(
    local: LocalBackend,
) -> None:
    session = await _session(local)
    [accepted, *_] = await _collect(local.send(session, "first", "mock/echo", after=None))
    assert isinstance(accepted, Accepted)
    # Another client (the web chat of a gateway on this store) answered meanwhile.
    elsewhere = await _collect(
        local.send(session, "from elsewhere", "mock/echo", after=accepted.reply_id)
    )
    with pytest.raises(ChatChanged):
        await _collect(local.send(session, "stale", "mock/echo", after=accepted.reply_id))
    _, turns = await local.open_session(session.id)
    assert [t.content for t in turns] == ["first", "first", "from elsewhere", "from elsewhere"]
    assert isinstance(elsewhere[0], Accepted)
    await _collect(local.send(session, "caught up", "mock/echo", after=elsewhere[0].reply_id))
    _, turns = await local.open_session(session.id)
    assert [t.content for t in turns][-2:] == ["caught up", "caught up"]


async def test_a_local_message_to_a_chat_deleted_elsewhere_is_not_found(
    local: LocalBackend,
) -> None:
    session = await _session(local)
    [accepted, *_] = await _collect(local.send(session, "first", "mock/echo", after=None))
    assert isinstance(accepted, Accepted)
    await local._chats.delete_session(session.id)
    with pytest.raises(NotFound):  # not "changed elsewhere": there is nothing to reload
        await _collect(local.send(session, "late", "mock/echo", after=accepted.reply_id))


async def test_a_local_reply_stopped_as_soon_as_it_is_accepted_is_saved_with_its_id(
    local: LocalBackend,
) -> None:
    session = await _session(local)
    events = local.send(session, "one two", "mock/echo", after=None)
    async with contextlib.aclosing(events):
        accepted = await anext(events)
    assert isinstance(accepted, Accepted)
    _, turns = await local.open_session(session.id)
    assert [(t.id, t.role, t.error) for t in turns] == [
        (accepted.question_id, "user", None),
        (accepted.reply_id, "assistant", STOPPED),
    ]


async def test_local_sessions_list_newest_first_and_remember_the_model(
    local: LocalBackend,
) -> None:
    older = await _session(local)
    newer = await _session(local)
    await _collect(local.send(newer, "hi", "mock/echo", after=None))
    await local.set_model(older.id, "mock/other")
    await _collect(local.send(older, "again", "mock/other", after=None))
    sessions = await local.sessions()
    assert [s.id for s in sessions] == [older.id, newer.id]
    assert sessions[0].model == "mock/other"


async def test_a_local_reply_stopped_early_is_kept_and_marked_stopped(local: LocalBackend) -> None:
    session = await _session(local)
    events = local.send(session, "one two three four", "mock/echo", after=None)
    async with contextlib.aclosing(events):
        async for event in events:
            if isinstance(event, TextDelta):
                break  # the user pressed Ctrl-C after the first words
    _, turns = await local.open_session(session.id)
    assert turns[-1].role == "assistant" and turns[-1].error == STOPPED
    assert turns[-1].content and "four" not in turns[-1].content


async def test_a_local_reply_to_an_unknown_model_fails_and_saves_the_error(
    local: LocalBackend,
) -> None:
    session = await _session(local)
    with pytest.raises(UnknownModel):
        await _collect(local.send(session, "hi", "nosuch/model", after=None))
    _, turns = await local.open_session(session.id)
    assert turns[-1].error is not None and "nosuch/model" in turns[-1].error
    with pytest.raises(UnknownModel):
        await local.check_model("nosuch/model")


# --- against a gateway (answered in-process) ----------------------------------------------


def _sse(*events: dict[str, object]) -> bytes:
    return b"".join(b"data: " + orjson.dumps(event) + b"\n\n" for event in events)


class FakeGateway:
    """Answers the chat API as the gateway would, and remembers what it was asked."""

    def __init__(self, reply: MockReply) -> None:
        self.reply = reply
        self.requests: list[UpstreamRequest] = []

    def __call__(self, request: UpstreamRequest) -> MockReply:
        self.requests.append(request)
        return self.reply


def _remote(reply: MockReply) -> tuple[RemoteBackend, FakeGateway]:
    gateway = FakeGateway(reply)
    return RemoteBackend("http://gw.test/", KEY, transport=MockTransport(gateway)), gateway


SESSION = SessionInfo("abc123", "t", "mock/echo", None, 0.0)


async def test_remote_replies_come_from_the_chat_api_stream() -> None:
    body = _sse(
        {"type": "accepted", "question_id": "q1", "reply_id": "r1"},
        {"type": "provider", "provider": "mock", "model": "echo"},
        {"type": "delta", "text": "hel"},
        {"type": "delta", "text": "lo"},
        {"type": "usage", "tokens": {"prompt": 3, "completion": 2, "total": 5}, "accurate": True},
        {"type": "done", "message_id": "m1"},
    )
    backend, gateway = _remote(MockReply(200, body, {"content-type": "text/event-stream"}))
    events = await _collect(backend.send(SESSION, "hello", "mock/echo", after="m0"))
    assert events == [
        Accepted("q1", "r1"),
        Answered("mock", "echo"),
        TextDelta("hel"),
        TextDelta("lo"),
        TokensUsed(3, 2, False),
    ]
    sent = gateway.requests[0]
    assert sent.url == "http://gw.test/chat/api/sessions/abc123/messages"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    # The last message the terminal shows: the gateway refuses a message sent after a
    # history that has changed since.
    assert orjson.loads(sent.body or b"") == {
        "content": "hello",
        "model": "mock/echo",
        "after": "m0",
    }


@pytest.mark.parametrize(
    ("code", "refusal"), [("chat_changed", ChatChanged), ("chat_answering", ChatAnswering)]
)
async def test_a_remote_message_refused_as_the_chat_changed_says_which_way(
    code: str, refusal: type[ChatChanged]
) -> None:
    conflict = orjson.dumps({"error": {"message": "changed", "code": code}})
    backend, _ = _remote(MockReply(409, conflict, {"content-type": "application/json"}))
    with pytest.raises(refusal) as caught:
        await _collect(backend.send(SESSION, "hi", "mock/echo", after=None))
    assert type(caught.value) is refusal


async def test_a_remote_message_to_a_chat_deleted_elsewhere_is_not_found() -> None:
    gone = orjson.dumps({"error": {"message": "no chat session abc123"}})
    backend, _ = _remote(MockReply(404, gone, {"content-type": "application/json"}))
    with pytest.raises(NotFound):
        await _collect(backend.send(SESSION, "hi", "mock/echo", after=None))
    # A gateway without the chat API is still said to be one.
    missing = orjson.dumps({"error": {"message": "no route POST /chat/api/sessions/x"}})
    backend, _ = _remote(MockReply(404, missing))
    with pytest.raises(ModelwayError, match="no chat API"):
        await _collect(backend.send(SESSION, "hi", "mock/echo", after=None))


async def test_remote_error_events_are_raised_with_their_message() -> None:
    body = _sse(
        {"type": "delta", "text": "par"},
        {"type": "error", "message": "upstream fell over", "status": 502},
    )
    backend, _ = _remote(MockReply(200, body))
    with pytest.raises(ModelwayError, match="upstream fell over"):
        await _collect(backend.send(SESSION, "hi", "mock/echo", after=None))

    body = _sse({"type": "rate_limited", "message": "slow down", "retry_after": 7})
    backend, _ = _remote(MockReply(200, body))
    with pytest.raises(RateLimited) as caught:
        await _collect(backend.send(SESSION, "hi", "mock/echo", after=None))
    assert caught.value.retry_after == 7


async def test_a_wrong_key_is_an_authentication_error_that_never_shows_the_key() -> None:
    refusal = orjson.dumps(
        {"error": {"message": f"invalid key {KEY}", "type": "authentication_error"}}
    )
    backend, _ = _remote(MockReply(401, refusal))
    with pytest.raises(AuthenticationError) as caught:
        await backend.sessions()
    assert "401" in caught.value.message and KEY not in caught.value.message


async def test_a_gateway_without_the_chat_api_says_so() -> None:
    missing = orjson.dumps({"error": {"message": "no route GET /chat/api/sessions"}})
    backend, _ = _remote(MockReply(404, missing))
    with pytest.raises(ModelwayError, match="no chat API"):
        await backend.sessions()


async def test_a_gateway_url_with_v1_on_it_is_said_to_be_the_wrong_url() -> None:
    missing = orjson.dumps({"error": {"message": "no route GET /v1/chat/api/sessions"}})
    backend = RemoteBackend(
        "http://gw.test/v1", KEY, transport=MockTransport(FakeGateway(MockReply(404, missing)))
    )
    with pytest.raises(ModelwayError, match="give --url the gateway's root, without /v1"):
        await backend.sessions()


async def test_remote_sessions_and_transcripts_are_read_from_the_chat_api() -> None:
    listing = {
        "sessions": [{"id": "s1", "title": "first", "model": "mock/echo", "updated_at": 5.0}]
    }
    backend, gateway = _remote(MockReply(200, orjson.dumps(listing)))
    assert await backend.sessions() == [SessionInfo("s1", "first", "mock/echo", None, 5.0)]
    assert gateway.requests[0].method == "GET"

    detail = {
        "session": {
            "id": "s1",
            "title": "first",
            "model": "mock/echo",
            "system": "be kind",
            "updated_at": 5.0,
        },
        "messages": [
            {"role": "user", "content": "hi", "model": None, "error": None},
            {"role": "assistant", "content": "", "model": "echo", "error": "stopped"},
        ],
    }
    backend, _ = _remote(MockReply(200, orjson.dumps(detail)))
    session, turns = await backend.open_session("s1")
    assert session.system == "be kind"
    assert turns == [Turn("user", "hi"), Turn("assistant", "", "echo", "stopped")]


# bpe_openai loads its data with importlib's deprecated ``open_binary``.
@pytest.mark.filterwarnings("ignore:open_binary is deprecated:DeprecationWarning")
async def test_one_shot_remote_answers_stream_from_the_openai_endpoint() -> None:
    chunks = [
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "model": "echo",
            "choices": [
                {"index": 0, "delta": {"role": "assistant", "content": "hi"}, "finish_reason": None}
            ],
        },
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "model": "echo",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        },
    ]
    body = b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
    backend, gateway = _remote(MockReply(200, body))
    events = await _collect(backend.answer_once("hi", "mock/echo", None))
    assert _text(events) == "hi"
    assert gateway.requests[0].url == "http://gw.test/v1/chat/completions"
    assert isinstance(events[-1], TokensUsed) and events[-1].estimated  # no usage was reported
