"""The web chat's API in-process: sessions, reply events, what is saved, connections."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from modelway.config import parse_config
from modelway.engine import Engine
from modelway.errors import BudgetExceeded, ModelwayError, UpstreamError
from modelway.gateway import web_pages
from modelway.gateway.app import Gateway, create_app
from modelway.gateway.chat_connections import restore_connections
from modelway.gateway.state import GatewayState
from modelway.providers.upstream import Call
from modelway.store import chats as chat_store
from modelway.store.chats import MAX_SYSTEM
from modelway.types import ChatRequest, MessageEnd, MessageStart, StreamEvent, TextDelta
from tests.unit.fakes import ScriptedBackend
from tests.unit.gateways import in_process_gateway


class QuietBackend(ScriptedBackend):
    """Answers without reporting usage, or fails after its first word when told to."""

    def __init__(self, name: str, fail_midway: ModelwayError | None = None) -> None:
        super().__init__(name)
        self.fail_midway = fail_midway
        self.requests: list[ChatRequest] = []
        self.hang = asyncio.Event()
        self.closed = False

    async def stream(
        self, request: ChatRequest, model: str, call: Call
    ) -> AsyncIterator[StreamEvent]:
        self.requests.append(request)
        yield MessageStart(id="r1", model=model)
        try:
            yield TextDelta("partial ")
            if self.fail_midway is not None:
                raise self.fail_midway
            if model == "hangs":
                await self.hang.wait()
            yield TextDelta("answer")
            yield MessageEnd("stop")
        finally:
            self.closed = True


class RefusingBackend(ScriptedBackend):
    """Refuses every call with the error it is given."""

    def __init__(self, name: str, error: ModelwayError) -> None:
        super().__init__(name, [error] * 10)


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    environ = {"MODELWAY_DATA_DIR": str(tmp_path)}
    app = create_app(parse_config("", environ), environ)
    async with app.lifespan():
        state: GatewayState = app.state.gateway
        built = state.engine
        state.calls.engine = Engine(
            state.config,
            {},
            {
                "quiet": QuietBackend("quiet"),
                "flaky": QuietBackend("flaky", UpstreamError("the upstream went away")),
                "broke": RefusingBackend("broke", BudgetExceeded("budget used up")),
            },
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            yield app, client
        await state.engine.aclose()
        state.calls.engine = built


async def _new_session(client: httpx.AsyncClient, **fields: Any) -> str:
    response = await client.post("/chat/api/sessions", json=fields)
    assert response.status_code == 201
    return str(response.json()["id"])


async def _events(client: httpx.AsyncClient, session_id: str, **body: Any) -> list[dict[str, Any]]:
    response = await client.post(f"/chat/api/sessions/{session_id}/messages", json=body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    blocks = [block for block in response.text.split("\n\n") if block]
    assert all(block.startswith("data: ") for block in blocks)
    return [orjson.loads(block[len("data: ") :]) for block in blocks]


async def _messages(client: httpx.AsyncClient, session_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/chat/api/sessions/{session_id}")
    assert response.status_code == 200
    messages: list[dict[str, Any]] = response.json()["messages"]
    return messages


async def test_a_reply_streams_provider_deltas_usage_and_done_and_both_turns_are_saved(
    gateway: tuple[Gateway, httpx.AsyncClient],
) -> None:
    _, client = gateway
    session_id = await _new_session(client, model="mock/echo")
    events = await _events(client, session_id, content="hello there")
    accepted = events[0]
    assert accepted["type"] == "accepted"
    assert events[1] == {"type": "provider", "provider": "mock", "model": "echo"}
    assert "".join(e["text"] for e in events if e["type"] == "delta") == "hello there"
    usage = next(e for e in events if e["type"] == "usage")
    assert usage["accurate"] is True
    assert usage["tokens"]["total"] == usage["tokens"]["prompt"] + usage["tokens"]["completion"]
    assert events[-1]["type"] == "done"
    user, reply = await _messages(client, session_id)
    assert (user["role"], user["content"]) == ("user", "hello there")
    assert (reply["role"], reply["content"], reply["error"]) == ("assistant", "hello there", None)
    assert reply["id"] == events[-1]["message_id"]
    assert reply["usage_accurate"] is True
    # The ids are told before the reply streams (a client stopping it knows them too).
    assert (accepted["question_id"], accepted["reply_id"]) == (user["id"], reply["id"])


# bpe-openai (the local tokenizer) loads its data through a deprecated importlib call.
@pytest.mark.filterwarnings("ignore:open_binary is deprecated:DeprecationWarning")
async def test_usage_is_estimated_when_the_provider_reports_none(
    gateway: tuple[Gateway, httpx.AsyncClient],
) -> None:
    _, client = gateway
    session_id = await _new_session(client)
    events = await _events(client, session_id, content="count me", model="quiet/m")
    usage = next(e for e in events if e["type"] == "usage")
    assert usage["accurate"] is False
    assert usage["tokens"]["completion"] > 0
    reply = (await _messages(client, session_id))[-1]
    assert reply["usage_accurate"] is False
    assert reply["completion_tokens"] == usage["tokens"]["completion"]


@pytest.mark.filterwarnings("ignore:open_binary is deprecated:DeprecationWarning")
async def test_the_session_settings_and_history_reach_the_model(
    gateway: tuple[Gateway, httpx.AsyncClient],
) -> None:
    app, client = gateway
    session_id = await _new_session(
        client, system="Be brief.", temperature=0.3, max_tokens=50, model="quiet/m"
    )
    await _events(client, session_id, content="first")
    await _events(client, session_id, content="second")
    backend = app.state.gateway.engine.router.backends["quiet"]
    request = backend.requests[-1]
    assert [(m.role, m.text()) for m in request.messages] == [
        ("system", "Be brief."),
        ("user", "first"),
        ("assistant", "partial answer"),
        ("user", "second"),
    ]
    assert (request.temperature, request.max_tokens) == (0.3, 50)


async def test_the_first_message_names_the_session_and_the_model_is_remembered(
    gateway: tuple[Gateway, httpx.AsyncClient],
) -> None:
    _, client = gateway
    session_id = await _new_session(client)
    await _events(
        client, session_id, content="Plan a trip to Lisbon\nwith details", model="quiet/m"
    )
    session = (await client.get(f"/chat/api/sessions/{session_id}")).json()["session"]
    assert session["title"] == "Plan a trip to Lisbon"
    assert session["model"] == "quiet/m"


@pytest.mark.filterwarnings("ignore:open_binary is deprecated:DeprecationWarning")
async def test_a_failure_mid_stream_is_an_error_event_and_the_partial_reply_keeps_it(
    gateway: tuple[Gateway, httpx.AsyncClient],
) -> None:
    _, client = gateway
    session_id = await _new_session(client, model="flaky/m")
    events = await _events(client, session_id, content="go")
    kinds = ["accepted", "provider", "delta", "error", "usage", "done"]
    assert [e["type"] for e in events] == kinds
    assert events[3] == {"type": "error", "message": "the upstream went away", "status": 502}
    reply = (await _messages(client, session_id))[-1]
    assert (reply["content"], reply["error"]) == ("partial ", "the upstream went away")
    # The usage the call was recorded with, estimated: the upstream reported none.
    usage = events[4]
    assert usage["accurate"] is False and usage["tokens"]["completion"] > 0
    assert (reply["prompt_tokens"], reply["completion_tokens"], reply["usage_accurate"]) == (
        usage["tokens"]["prompt"],
        usage["tokens"]["completion"],
        False,
    )


async def test_a_refusal_before_the_stream_opens_is_a_rate_limited_event(
    gateway: tuple[Gateway, httpx.AsyncClient],
) -> None:
    _, client = gateway
    session_id = await _new_session(client, model="broke/m")
    events = await _events(client, session_id, content="go")
    assert events[0]["type"] == "accepted"
    assert events[1] == {"type": "rate_limited", "message": "budget used up", "retry_after": None}
    assert events[2]["type"] == "done"
    assert (await _messages(client, session_id))[-1]["error"] == "budget used up"


async def test_an_unknown_model_is_an_error_event_not_a_broken_stream(
    gateway: tuple[Gateway, httpx.AsyncClient],
) -> None:
    _, client = gateway
    session_id = await _new_session(client)
    events = await _events(client, session_id, content="go", model="nobody/here")
    assert events[0]["type"] == "error"
    assert events[0]["status"] == 404


async def test_regenerate_answers_the_last_message_again_in_place_of_its_reply(
    gateway: tuple[Gateway, httpx.AsyncClient],
) -> None:
    _, client = gateway
    session_id = await _new_session(client, model="mock/echo")
    await _events(client, session_id, content="once more")
    first_reply = (await _messages(client, session_id))[-1]
    events = await _events(client, session_id, content="", regenerate=True)
    assert "".join(e["text"] for e in events if e["type"] == "delta") == "once more"
    messages = await _messages(client, session_id)
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[-1]["id"] != first_reply["id"]


@pytest.mark.filterwarnings("ignore:open_binary is deprecated:DeprecationWarning")
async def test_a_regenerate_that_fails_upstream_keeps_the_reply_it_would_replace(
    gateway: tuple[Gateway, httpx.AsyncClient],
) -> None:
    _, client = gateway
    session_id = await _new_session(client, model="quiet/m")
    await _events(client, session_id, content="once more")
    good = (await _messages(client, session_id))[-1]
    events = await _events(client, session_id, content="", regenerate=True, model="flaky/m")
    kinds = ["accepted", "provider", "delta", "error", "usage", "done"]
    assert [e["type"] for e in events] == kinds
    _, kept, failed = await _messages(client, session_id)
    assert (kept["id"], kept["content"], kept["error"]) == (good["id"], "partial answer", None)
    assert (failed["content"], failed["error"]) == ("partial ", "the upstream went away")
    assert failed["id"] == events[-1]["message_id"]
    # The next regenerate that ends well replaces both; the good one was in its prompt.
    await _events(client, session_id, content="", regenerate=True, model="quiet/m")
    messages = await _messages(client, session_id)
    assert [(m["role"], m["error"]) for m in messages] == [("user", None), ("assistant", None)]
    assert messages[-1]["id"] not in (good["id"], failed["id"])


async def test_a_regenerate_stopped_by_the_caller_keeps_the_reply_it_would_replace(
    gateway: tuple[Gateway, httpx.AsyncClient],
) -> None:
    app, client = gateway
    session_id = await _new_session(client, model="mock/echo")
    await _events(client, session_id, content="once more")
    good = (await _messages(client, session_id))[-1]
    first_delta = asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        if b'"delta"' in message.get("body", b""):
            first_delta.set()

    body = orjson.dumps({"content": "", "regenerate": True, "model": "quiet/hangs"})
    receive = _receive_then_hang_up(body, first_delta)
    await asyncio.wait_for(app(_post_message_scope(session_id), receive, send), timeout=10)
    messages = await _messages(client, session_id)
    assert [(m["id"], m["error"]) for m in messages[1:]] == [
        (good["id"], None),
        (messages[2]["id"], "stopped"),
    ]


def _post_message_scope(session_id: str) -> dict[str, Any]:
    path = f"/chat/api/sessions/{session_id}/messages"
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 1),
        "server": ("gateway", 80),
    }


def _receive_then_hang_up(body: bytes, hung_up: asyncio.Event) -> Any:
    """ASGI ``receive``: the body, then ``http.disconnect`` once ``hung_up`` is set."""
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await hung_up.wait()
        return {"type": "http.disconnect"}  # the browser's Stop

    return receive


@pytest.mark.filterwarnings("ignore:open_binary is deprecated:DeprecationWarning")
async def test_stopping_a_reply_closes_the_upstream_and_saves_what_arrived_as_stopped(
    gateway: tuple[Gateway, httpx.AsyncClient],
) -> None:
    app, client = gateway
    session_id = await _new_session(client, model="quiet/hangs")
    first_delta = asyncio.Event()
    sent: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        chunk = message.get("body", b"")
        sent.append(chunk)
        if b'"delta"' in chunk:
            first_delta.set()

    receive = _receive_then_hang_up(orjson.dumps({"content": "go"}), first_delta)
    await asyncio.wait_for(app(_post_message_scope(session_id), receive, send), timeout=10)
    assert app.state.gateway.engine.router.backends["quiet"].closed
    assert not any(b'"done"' in chunk for chunk in sent)
    reply = (await _messages(client, session_id))[-1]
    assert (reply["content"], reply["error"]) == ("partial ", "stopped")
    # With the usage its call was recorded with, estimated.
    assert reply["prompt_tokens"] is not None and reply["completion_tokens"] > 0
    assert reply["usage_accurate"] is False


async def test_a_hang_up_seen_twice_while_the_reply_saves_still_saves_it_as_stopped(
    gateway: tuple[Gateway, httpx.AsyncClient],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A write fails (the browser closed the connection) and the disconnect arrives too:
    # the first ends the stream, the second cancels the reply again while it is saving.
    app, client = gateway
    session_id = await _new_session(client, model="quiet/hangs")
    hung_up = asyncio.Event()
    chats = app.state.gateway.store.chats
    add_message = chats.add_message

    async def send(message: dict[str, Any]) -> None:
        if b'"delta"' in message.get("body", b""):
            hung_up.set()
            raise ConnectionResetError("RSGI transport is closed")

    async def add_message_slowly(session: str, role: str, *args: Any, **fields: Any) -> Any:
        if role == "assistant":
            for _ in range(20):  # the disconnect is seen and the reply cancelled meanwhile
                await asyncio.sleep(0)
        return await add_message(session, role, *args, **fields)

    monkeypatch.setattr(chats, "add_message", add_message_slowly)
    receive = _receive_then_hang_up(orjson.dumps({"content": "go"}), hung_up)
    await asyncio.wait_for(app(_post_message_scope(session_id), receive, send), timeout=10)
    await app.state.gateway.calls.drain()
    reply = (await _messages(client, session_id))[-1]
    assert (reply["role"], reply["content"], reply["error"]) == ("assistant", "partial ", "stopped")
    assert "chat reply failed" not in caplog.text  # a caller leaving is not a gateway error


async def test_session_settings_are_checked(gateway: tuple[Gateway, httpx.AsyncClient]) -> None:
    _, client = gateway
    for bad in ({"temperature": 3}, {"max_tokens": 0}, {"max_tokens": True}, {"title": " "}):
        response = await client.post("/chat/api/sessions", json=bad)
        assert response.status_code == 400
        assert response.json()["error"]["type"] == "invalid_request_error"
    session_id = await _new_session(client)
    response = await client.patch(f"/chat/api/sessions/{session_id}", json={"temperature": "hot"})
    assert response.status_code == 400


async def test_what_a_session_and_a_message_may_hold_is_bounded(
    gateway: tuple[Gateway, httpx.AsyncClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, client = gateway
    long_system = await client.post("/chat/api/sessions", json={"system": "s" * (MAX_SYSTEM + 1)})
    assert long_system.status_code == 400
    assert "system: at most 20,000 characters" in long_system.json()["error"]["message"]
    session_id = await _new_session(client, model="quiet/m", system="s" * MAX_SYSTEM)
    # A message naming a model past the bound is refused before anything is kept.
    named = {"content": "hi", "model": "m" * 1000}
    posted = await client.post(f"/chat/api/sessions/{session_id}/messages", json=named)
    assert posted.status_code == 400 and "model: at most 256" in posted.text
    session = (await client.get(f"/chat/api/sessions/{session_id}")).json()
    assert session["session"]["model"] == "quiet/m" and session["messages"] == []
    # A chat that is full refuses the next message, said plainly, and keeps what it has.
    monkeypatch.setattr(chat_store, "MAX_SESSION_MESSAGES", 2)
    assert [e["type"] for e in await _events(client, session_id, content="one")][-1] == "done"
    full = await client.post(f"/chat/api/sessions/{session_id}/messages", json={"content": "two"})
    assert full.status_code == 400
    assert "this chat is full" in full.json()["error"]["message"]
    kept = await _messages(client, session_id)
    assert [(m["role"], m["content"]) for m in kept][:1] == [("user", "one")] and len(kept) == 2


async def test_a_message_the_keys_limits_refuse_is_not_kept(tmp_path: Path) -> None:
    """The store grows only as fast as a key may call: a refused call saves nothing."""
    async with in_process_gateway(tmp_path) as gateway:
        _, key = await gateway.state.store.keys.create("web", rpm=1)
        headers = {"authorization": f"Bearer {key}"}
        created = await gateway.http.post(
            "/chat/api/sessions", json={"model": "mock/echo"}, headers=headers
        )
        session_id = created.json()["id"]
        url = f"/chat/api/sessions/{session_id}/messages"
        first = await gateway.http.post(url, json={"content": "one"}, headers=headers)
        assert '"type":"done"' in first.text.replace(" ", "")
        session_url = f"/chat/api/sessions/{session_id}"
        before = (await gateway.http.get(session_url, headers=headers)).json()
        for refused_body in (
            {"content": "x" * 1000},
            {"content": "another model", "model": "mock/other"},
            {"regenerate": True},  # the reply it would replace stays
        ):
            refused = await gateway.http.post(url, json=refused_body, headers=headers)
            events = [orjson.loads(b[len("data: ") :]) for b in refused.text.split("\n\n") if b]
            assert [e["type"] for e in events] == ["rate_limited", "done"]
            assert events[-1]["message_id"] is None
        after = (await gateway.http.get(session_url, headers=headers)).json()
        assert after["messages"] == before["messages"]  # "one" and its reply, untouched
        assert after["session"]["model"] == "mock/echo"


async def test_sessions_are_listed_renamed_and_deleted(
    gateway: tuple[Gateway, httpx.AsyncClient],
) -> None:
    _, client = gateway
    older = await _new_session(client)
    newer = await _new_session(client, title="Newer")
    listed = (await client.get("/chat/api/sessions")).json()["sessions"]
    assert [s["id"] for s in listed][:2] == [newer, older]
    renamed = await client.patch(f"/chat/api/sessions/{older}", json={"title": "Renamed"})
    assert renamed.json()["title"] == "Renamed"
    assert (await client.delete(f"/chat/api/sessions/{older}")).status_code == 204
    missing = await client.get(f"/chat/api/sessions/{older}")
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "not_found_error"
    posted = await client.post(f"/chat/api/sessions/{older}/messages", json={"content": "hi"})
    assert posted.status_code == 404


async def test_a_connected_provider_is_routed_to_and_its_key_is_never_answered_or_logged(
    gateway: tuple[Gateway, httpx.AsyncClient], caplog: pytest.LogCaptureFixture
) -> None:
    app, client = gateway
    secret = "gsk-unit-secret-value"
    caplog.set_level(logging.DEBUG, logger="modelway")
    created = await client.post(
        "/chat/api/connections",
        json={"provider": "groq", "api_key": secret, "base_url": "http://127.0.0.1:9/v1"},
    )
    assert created.status_code == 201
    listed = await client.get("/chat/api/connections")
    assert listed.json()["connections"] == [
        {
            "provider": "groq",
            "base_url": "http://127.0.0.1:9/v1",
            "has_key": True,
            "models_error": None,  # not listed yet
        }
    ]
    assert "groq" in listed.json()["providers"]
    assert secret not in created.text + listed.text + caplog.text
    assert app.state.gateway.engine.route("groq/llama").targets[0].backend.name == "groq"
    assert (await client.delete("/chat/api/connections/groq")).status_code == 204
    assert "groq" not in app.state.gateway.engine.router.backends
    assert (await client.delete("/chat/api/connections/groq")).status_code == 404


async def test_only_known_providers_can_be_connected(
    gateway: tuple[Gateway, httpx.AsyncClient],
) -> None:
    _, client = gateway
    for body in (
        {"provider": "mock"},
        {"provider": "nonsense"},
        {"provider": "openai", "base_url": "file:///etc"},
        # Stored and echoed once; urlsplit drops the line break, so another URL was used.
        {"provider": "openai", "base_url": "http://127.0.0.1:9/v1\r\nX-Injected: y"},
        {"provider": "openai", "base_url": "http://127.0.0.1:0/v1"},
        {"provider": "openai", "base_url": "http://127.0.0.1:abc/v1"},
    ):
        response = await client.post("/chat/api/connections", json=body)
        assert response.status_code == 400, body
    assert (await client.get("/chat/api/connections")).json()["connections"] == []


async def test_saved_connections_are_restored_at_start(
    gateway: tuple[Gateway, httpx.AsyncClient],
) -> None:
    app, _ = gateway
    state: GatewayState = app.state.gateway
    await state.store.connections.save("mistral", "mistral-key", None)
    await restore_connections(state)
    assert "mistral" in state.engine.router.backends


@pytest.mark.parametrize("page", ["/", "/admin"])
async def test_a_page_says_to_run_setup_when_the_web_pages_are_not_built(
    gateway: tuple[Gateway, httpx.AsyncClient],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    page: str,
) -> None:
    _, client = gateway
    monkeypatch.setattr(web_pages, "STATIC_DIR", tmp_path / "not-built")
    response = await client.get(page)
    assert response.status_code == 503
    assert "scripts/setup" in response.text
    assert "script-src 'self'" in response.headers["content-security-policy"]


# --- two tabs on one chat -------------------------------------------------------------


async def _post(client: httpx.AsyncClient, session_id: str, **body: Any) -> httpx.Response:
    return await client.post(f"/chat/api/sessions/{session_id}/messages", json=body)


async def test_a_message_sent_from_a_stale_view_of_the_chat_is_refused_and_changes_nothing(
    gateway: tuple[Gateway, httpx.AsyncClient],
) -> None:
    _, client = gateway
    session_id = await _new_session(client, model="mock/echo")
    # Both tabs showed the empty chat; the first one's message is taken.
    first = await _events(client, session_id, content="from tab A", after=None)
    before = await _messages(client, session_id)
    assert [m["content"] for m in before] == ["from tab A", "from tab A"]
    # The other tab still shows an empty chat: its message would follow a history it
    # has not seen.
    stale = await _post(client, session_id, content="from tab B", after=None)
    assert stale.status_code == 409
    error = stale.json()["error"]
    assert error["code"] == "chat_changed"
    assert "changed in another tab or window: reload it" in error["message"]
    assert await _messages(client, session_id) == before
    # Reloaded, it names the last message it now shows, and its message is taken.
    events = await _events(client, session_id, content="from tab B", after=first[-1]["message_id"])
    assert events[-1]["message_id"] is not None
    contents = [m["content"] for m in await _messages(client, session_id)]
    assert contents == ["from tab A"] * 2 + ["from tab B"] * 2


async def test_a_regenerate_from_a_stale_view_cannot_delete_another_tabs_reply(
    gateway: tuple[Gateway, httpx.AsyncClient],
) -> None:
    _, client = gateway
    session_id = await _new_session(client, model="mock/echo")
    shown = (await _events(client, session_id, content="one", after=None))[-1]["message_id"]
    # Tab A asks again; tab B, which still shows "one" answered last, regenerates.
    await _events(client, session_id, content="two", after=shown)
    before = await _messages(client, session_id)
    stale = await _post(client, session_id, content="", regenerate=True, after=shown)
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "chat_changed"
    assert await _messages(client, session_id) == before


async def test_after_must_name_a_message_or_be_null(
    gateway: tuple[Gateway, httpx.AsyncClient],
) -> None:
    _, client = gateway
    session_id = await _new_session(client, model="mock/echo")
    for bad in (1, [], {"id": "x"}):
        response = await _post(client, session_id, content="hi", after=bad)
        assert response.status_code == 400
        assert response.json()["error"]["message"].startswith("after: ")


@pytest.mark.filterwarnings("ignore:open_binary is deprecated:DeprecationWarning")
async def test_a_message_sent_while_another_tabs_reply_streams_waits_its_turn(
    gateway: tuple[Gateway, httpx.AsyncClient],
) -> None:
    app, client = gateway
    session_id = await _new_session(client, model="quiet/hangs")
    sent: list[dict[str, Any]] = []
    streaming = asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        for block in message.get("body", b"").split(b"\n\n"):
            if block.startswith(b"data: "):
                sent.append(orjson.loads(block[len(b"data: ") :]))
        if any(event["type"] == "delta" for event in sent):
            streaming.set()

    # Tab A's message: its question is saved, its reply streams (and hangs).
    body = orjson.dumps({"content": "from tab A", "after": None})
    tab_a = asyncio.ensure_future(
        app(_post_message_scope(session_id), _receive_then_hang_up(body, asyncio.Event()), send)
    )
    await asyncio.wait_for(streaming.wait(), timeout=10)
    accepted = sent[0]
    assert accepted["type"] == "accepted"
    # Tab B reloaded: it shows tab A's question, without its reply, and sends after it.
    busy = await _post(client, session_id, content="from tab B", after=accepted["question_id"])
    assert busy.status_code == 409
    error = busy.json()["error"]
    assert error["code"] == "chat_answering"
    assert "still answering a message sent from another tab or window" in error["message"]
    assert [m["content"] for m in await _messages(client, session_id)] == ["from tab A"]
    # The reply ends and is saved: tab B, reloaded again, sends after it.
    app.state.gateway.engine.router.backends["quiet"].hang.set()
    await asyncio.wait_for(tab_a, timeout=10)
    assert sent[-1] == {"type": "done", "message_id": accepted["reply_id"]}
    await _events(client, session_id, content="from tab B", after=accepted["reply_id"])
    saved = await _messages(client, session_id)
    assert [(m["role"], m["content"]) for m in saved] == [
        ("user", "from tab A"),
        ("assistant", "partial answer"),
        ("user", "from tab B"),
        ("assistant", "partial answer"),
    ]


@pytest.mark.filterwarnings("ignore:open_binary is deprecated:DeprecationWarning")
async def test_a_message_sent_right_after_stop_waits_for_the_stopped_reply_to_be_saved(
    gateway: tuple[Gateway, httpx.AsyncClient],
) -> None:
    app, client = gateway
    session_id = await _new_session(client, model="quiet/hangs")
    sent: list[dict[str, Any]] = []
    streaming, hung_up = asyncio.Event(), asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        for block in message.get("body", b"").split(b"\n\n"):
            if block.startswith(b"data: "):
                sent.append(orjson.loads(block[len(b"data: ") :]))
        if any(event["type"] == "delta" for event in sent):
            streaming.set()

    body = orjson.dumps({"content": "first", "after": None})
    stopping = asyncio.ensure_future(
        app(_post_message_scope(session_id), _receive_then_hang_up(body, hung_up), send)
    )
    await asyncio.wait_for(streaming.wait(), timeout=10)
    reply_id = sent[0]["reply_id"]
    # The page stopped the reply and sends again at once, naming the stopped reply: the
    # gateway may not have seen the hang-up yet. The message waits for the reply's save
    # rather than be refused, or saved before it.
    again = asyncio.ensure_future(
        _post(client, session_id, content="second", after=reply_id, model="quiet/m")
    )
    for _ in range(50):
        await asyncio.sleep(0)
    assert not again.done()
    hung_up.set()
    await asyncio.wait_for(stopping, timeout=10)
    answered = await asyncio.wait_for(again, timeout=10)
    assert answered.status_code == 200
    saved = await _messages(client, session_id)
    assert [(m["content"], m["error"]) for m in saved] == [
        ("first", None),
        ("partial ", "stopped"),
        ("second", None),
        ("partial answer", None),
    ]
    assert saved[1]["id"] == reply_id
