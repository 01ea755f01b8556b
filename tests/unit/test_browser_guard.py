"""What a browser may not make the gateway do: DNS rebinding, cross-site requests, HTML
without its security headers. In-process, through the ASGI app and the RSGI chat path."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import httpx
import orjson
import pytest

from modelway.config import parse_config
from modelway.gateway import web_pages
from modelway.gateway.app import BIND_HOST_VARIABLE, Gateway, create_app
from modelway.gateway.browser_guard import HostPolicy
from modelway.gateway.rsgi import RsgiGateway
from modelway.gateway.state import GatewayState
from tests.unit.test_rsgi_bridge import Protocol, answer_of, post

MASTER = "mw-master-key-for-the-browser-tests-01"
HELLO = {"model": "mock/echo", "messages": [{"role": "user", "content": "hi"}]}
EVIL = "http://evil.example"
#: What a cross-site page can send without a preflight: a "simple" text/plain POST.
SIMPLE = {"content-type": "text/plain;charset=UTF-8"}


@pytest.fixture
async def open_gateway(tmp_path: Path) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    async with serving(tmp_path, {}) as served:
        yield served


@pytest.fixture
async def keyed_gateway(tmp_path: Path) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    async with serving(tmp_path, {"MODELWAY_MASTER_KEY": MASTER}) as served:
        served[1].headers["authorization"] = f"Bearer {MASTER}"
        yield served


@contextlib.asynccontextmanager
async def serving(
    tmp_path: Path, env: Mapping[str, str], config: str = ""
) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    """The gateway in-process, with a client at ``http://127.0.0.1:8080``."""
    environ = {"MODELWAY_DATA_DIR": str(tmp_path), **env}
    app = create_app(parse_config(config, environ), environ)
    async with app.lifespan():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1:8080"
        ) as client:
            yield app, client


def error_of(response: httpx.Response) -> dict[str, object]:
    error: dict[str, object] = response.json()["error"]
    return error


# --- DNS rebinding: the Host an open gateway answers to -----------------------------------


async def test_an_open_gateway_answers_no_foreign_host_name(
    open_gateway: tuple[Gateway, httpx.AsyncClient],
) -> None:
    _, client = open_gateway
    rebound = {"host": "attacker.example:8080"}
    refused = await client.get("/chat/api/sessions", headers=rebound)
    assert refused.status_code == 421
    assert error_of(refused)["code"] == "host_not_allowed"
    assert "server.allowed_hosts" in str(error_of(refused)["message"])
    assert refused.headers["x-request-id"]
    # Every route, in its own error shape: Ollama's, Anthropic's (the chat path too).
    ollama = await client.get("/api/tags", headers=rebound)
    assert ollama.status_code == 421 and isinstance(ollama.json()["error"], str)
    anthropic = await client.post("/v1/messages", json=HELLO, headers=rebound)
    assert anthropic.status_code == 421 and anthropic.json()["type"] == "error"
    chat = await client.post("/v1/chat/completions", json=HELLO, headers=rebound)
    assert chat.status_code == 421


@pytest.mark.parametrize(
    "host", ["127.0.0.1:8080", "localhost:8080", "LOCALHOST", "[::1]:9", "127.0.0.2", "localhost."]
)
async def test_loopback_host_names_are_answered_on_any_port(
    open_gateway: tuple[Gateway, httpx.AsyncClient], host: str
) -> None:
    _, client = open_gateway
    assert (await client.get("/chat/api/sessions", headers={"host": host})).status_code == 200


@pytest.mark.parametrize(
    ("allowed_hosts", "bind_host", "host", "answered"),
    [
        (["chat.lan"], "127.0.0.1", "chat.lan:8080", True),
        (["chat.lan"], "127.0.0.1", "other.lan", False),
        (["*"], "127.0.0.1", "anything.example", True),
        ([], "192.168.7.7", "192.168.7.7:8080", True),  # `serve --host 192.168.7.7 --insecure`
        ([], "192.168.7.7", "10.0.0.1:8080", False),
        ([], "0.0.0.0", "10.0.0.1:8080", True),  # every interface: any address, never a name
        ([], "::", "[fd00::5]:8080", True),
        ([], "0.0.0.0", "rebound.example:8080", False),
        ([], "127.0.0.1", "192.168.7.7", False),
    ],
)
async def test_the_allowed_hosts_and_the_bound_address_are_answered_too(
    tmp_path: Path, allowed_hosts: list[str], bind_host: str, host: str, answered: bool
) -> None:
    config = f"server:\n  allowed_hosts: {orjson.dumps(allowed_hosts).decode()}\n"
    async with serving(tmp_path, {BIND_HOST_VARIABLE: bind_host}, config) as (_, client):
        response = await client.get("/health", headers={"host": host})
    assert response.status_code == (200 if answered else 421)


def test_host_decisions_are_remembered_only_up_to_a_bound() -> None:
    policy = HostPolicy([], "127.0.0.1")
    for index in range(1000):  # a caller sending a new Host each time
        assert not policy.allows(f"name-{index}.example")
    assert len(policy._decided) == 256
    assert policy.allows("localhost:1") and not policy.allows("name-999.example")


async def test_a_gateway_with_keys_answers_any_host_name(
    keyed_gateway: tuple[Gateway, httpx.AsyncClient],
) -> None:
    _, client = keyed_gateway
    response = await client.get("/chat/api/sessions", headers={"host": "gateway.example.com"})
    assert response.status_code == 200  # a rebound page has no key to send


# --- cross-site requests -------------------------------------------------------------------


async def test_a_cross_site_page_cannot_re_point_a_provider(
    open_gateway: tuple[Gateway, httpx.AsyncClient],
) -> None:
    app, client = open_gateway
    body = orjson.dumps({"provider": "openai", "base_url": "http://attacker.example/v1"})
    refused = await client.post(
        "/chat/api/connections", content=body, headers={**SIMPLE, "origin": EVIL}
    )
    assert refused.status_code == 403
    assert error_of(refused)["code"] == "cross_site_request"
    state: GatewayState = app.state.gateway
    assert await state.store.connections.list() == []
    assert "openai" not in state.engine.router.backends


async def test_a_cross_site_page_cannot_create_sessions_or_chat(
    open_gateway: tuple[Gateway, httpx.AsyncClient],
) -> None:
    app, client = open_gateway
    for headers in ({"origin": EVIL}, {"sec-fetch-site": "cross-site"}, {"origin": "null"}):
        refused = await client.post("/chat/api/sessions", json={}, headers=headers)
        assert refused.status_code == 403, headers
    session = (await client.post("/chat/api/sessions", json={})).json()["id"]
    post_message = f"/chat/api/sessions/{session}/messages"
    refused = await client.post(post_message, json={"content": "hi"}, headers={"origin": EVIL})
    assert refused.status_code == 403
    deleted = await client.delete(f"/chat/api/sessions/{session}", headers={"origin": EVIL})
    assert deleted.status_code == 403
    sessions = await app.state.gateway.store.chats.list_sessions(owner=None)
    assert [s.id for s in sessions] == [session]  # only the one made without an Origin


async def test_a_cross_site_page_cannot_open_accounts_or_keys_on_a_keyed_gateway(
    tmp_path: Path,
) -> None:
    # Sign-up needs no key, so a page's visitors' browsers could open accounts (each one
    # spending the visitor's address's budget of failed key checks).
    env = {"MODELWAY_MASTER_KEY": MASTER}
    async with serving(tmp_path, env, "server: {signup: true}\n") as (_app, client):
        account = {"email": "ada@example.com", "password": "correct horse battery"}
        for path, body in (("/auth/register", account), ("/auth/keys", {**account, "name": "k"})):
            for headers in ({**SIMPLE, "origin": EVIL}, {"sec-fetch-site": "cross-site"}):
                refused = await client.post(path, content=orjson.dumps(body), headers=headers)
                assert refused.status_code == 403, (path, headers)
                assert error_of(refused)["code"] == "cross_site_request"
        registered = await client.post("/auth/register", json=account)  # no browser: as ever
        assert registered.status_code == 201


async def test_a_port_on_the_same_machine_is_another_origin(
    open_gateway: tuple[Gateway, httpx.AsyncClient],
) -> None:
    _, client = open_gateway
    same_site = {"origin": "http://127.0.0.1:3000", "sec-fetch-site": "same-site"}
    assert (await client.post("/chat/api/sessions", json={}, headers=same_site)).status_code == 403
    no_fetch_metadata = {"origin": "http://127.0.0.1:3000"}  # an older browser
    response = await client.post("/chat/api/sessions", json={}, headers=no_fetch_metadata)
    assert response.status_code == 403


async def test_the_gateways_own_page_may_post(
    open_gateway: tuple[Gateway, httpx.AsyncClient],
) -> None:
    _, client = open_gateway
    own = {"origin": "http://127.0.0.1:8080", "sec-fetch-site": "same-origin"}
    assert (await client.post("/chat/api/sessions", json={}, headers=own)).status_code == 201
    older_browser = {"origin": "http://127.0.0.1:8080"}
    created = await client.post("/chat/api/sessions", json={}, headers=older_browser)
    assert created.status_code == 201
    # Behind a proxy that rewrites Host the browser's own word still counts.
    proxied = {"origin": "https://chat.example.com", "sec-fetch-site": "same-origin"}
    assert (await client.post("/chat/api/sessions", json={}, headers=proxied)).status_code == 201


async def test_the_browser_apis_take_only_json(
    open_gateway: tuple[Gateway, httpx.AsyncClient],
) -> None:
    _, client = open_gateway
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = {"content-type": content_type} if content_type else {}
        refused = await client.post("/chat/api/sessions", content=b"{}", headers=headers)
        assert refused.status_code == 415, content_type
        assert "application/json" in str(error_of(refused)["message"])
    json_with_charset = {"content-type": "application/json; charset=utf-8"}
    created = await client.post("/chat/api/sessions", content=b"{}", headers=json_with_charset)
    assert created.status_code == 201
    deleted = await client.delete(f"/chat/api/sessions/{created.json()['id']}")
    assert deleted.status_code == 204  # a DELETE has no body to type


async def test_an_open_gateway_refuses_a_cross_site_chat_call_but_not_an_sdk(
    open_gateway: tuple[Gateway, httpx.AsyncClient],
) -> None:
    _, client = open_gateway
    drive_by = await client.post(
        "/v1/chat/completions", content=orjson.dumps(HELLO), headers={**SIMPLE, "origin": EVIL}
    )
    assert drive_by.status_code == 403 and error_of(drive_by)["code"] == "cross_site_request"
    ollama = await client.post("/api/chat", json=HELLO, headers={"sec-fetch-site": "cross-site"})
    assert ollama.status_code == 403 and isinstance(ollama.json()["error"], str)
    sdk = await client.post("/v1/chat/completions", json=HELLO)
    assert sdk.status_code == 200
    curl = await client.post("/api/chat", content=orjson.dumps({**HELLO, "stream": False}))
    assert curl.status_code == 200  # no JSON content type needed on the API


async def test_with_keys_the_api_takes_cross_origin_calls_but_the_browser_apis_do_not(
    keyed_gateway: tuple[Gateway, httpx.AsyncClient],
) -> None:
    _, client = keyed_gateway
    # The key is the credential: a page cannot send it without having it.
    browser_app = {"origin": "https://tool.example", "sec-fetch-site": "cross-site"}
    answered = await client.post("/v1/chat/completions", json=HELLO, headers=browser_app)
    assert answered.status_code == 200
    refused = await client.post("/chat/api/sessions", json={}, headers=browser_app)
    assert refused.status_code == 403
    not_json = await client.post("/chat/api/sessions", content=b"{}")
    assert not_json.status_code == 415


async def test_the_rsgi_chat_path_refuses_before_reading_the_body(tmp_path: Path) -> None:
    environ = {"MODELWAY_DATA_DIR": str(tmp_path)}
    config = parse_config("", environ)
    app = create_app(config, environ)
    body = orjson.dumps(HELLO)
    length = ("content-length", str(len(body)))
    cross_site, rebound = Protocol(body=body), Protocol(body=body)
    async with app.lifespan():
        worker = RsgiGateway(app, config.server)
        loopback, origin = ("host", "127.0.0.1:8080"), ("origin", EVIL)
        await worker.__rsgi__(post("/v1/chat/completions", loopback, length, origin), cross_site)
        await worker.__rsgi__(post("/v1/messages", ("host", "attacker.example"), length), rebound)
    status, answer = answer_of(cross_site)
    assert status == 403 and orjson.loads(answer)["error"]["code"] == "cross_site_request"
    assert cross_site.whole_reads == cross_site.chunks_read == 0
    status, answer = answer_of(rebound)
    assert status == 421 and orjson.loads(answer)["type"] == "error"  # Anthropic's shape
    assert rebound.whole_reads == rebound.chunks_read == 0
    # What passes is served as before: through granian in tests/integration.


# --- every HTML answer carries the page's security headers ---------------------------------


async def test_every_html_answer_carries_the_same_security_headers(
    open_gateway: tuple[Gateway, httpx.AsyncClient],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    app, client = open_gateway
    built = tmp_path / "built"
    built.mkdir()
    (built / "index.html").write_text("<!doctype html><title>chat</title>")
    (built / "app-ABCDEFGH.js").write_text("export {};")
    monkeypatch.setattr(web_pages, "STATIC_DIR", built)
    assets = next(r for r in app.app.routes if getattr(r, "path", "") == "/static")
    monkeypatch.setattr(assets.app, "all_directories", [built])  # type: ignore[attr-defined]

    page = await client.get("/")
    same_page = await client.get("/static/index.html")
    monkeypatch.setattr(web_pages, "STATIC_DIR", tmp_path / "not-built")
    not_built = await client.get("/")
    script = await client.get("/static/app-ABCDEFGH.js")

    assert (page.status_code, same_page.status_code, not_built.status_code) == (200, 200, 503)
    for response in (page, same_page, not_built):
        assert response.headers["content-type"].startswith("text/html")
        for name, value in web_pages.SECURITY_HEADERS.items():
            assert response.headers[name] == value, (response.url, name)
    assert "frame-ancestors 'none'" in same_page.headers["content-security-policy"]
    assert "content-security-policy" not in script.headers  # not HTML
    assert script.headers["x-content-type-options"] == "nosniff"
