"""The admin API and self-service sign-up, against a real gateway process."""

from __future__ import annotations

import asyncio
import calendar
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from modelway.store import Store, UsageRecord, database_url
from tests.integration.gateway import running_gateway

MASTER = "mk-admin-test-master-key-0123456789"
AS_MASTER = {"authorization": f"Bearer {MASTER}"}
CHAT = {"model": "mock/echo", "messages": [{"role": "user", "content": "hello"}]}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("admin-data")


@pytest.fixture(scope="module")
def admin(data_dir: Path) -> Iterator[httpx.Client]:
    """A client of a gateway with a master key and sign-up off."""
    env = {"MODELWAY_MASTER_KEY": MASTER, "MODELWAY_DATA_DIR": str(data_dir)}
    with running_gateway(env) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def signup_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A client of a gateway with sign-up on and no master key."""
    env = {"MODELWAY_DATA_DIR": str(tmp_path_factory.mktemp("signup-data"))}
    config = "server:\n  signup: true\n"
    with running_gateway(env, config) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client


def create_key(client: httpx.Client, **settings: object) -> dict[str, object]:
    response = client.post("/admin/api/keys", json={"name": "test", **settings}, headers=AS_MASTER)
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()
    return created


def bearer(key: object) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def error_message(response: httpx.Response) -> str:
    message: str = response.json()["error"]["message"]
    return message


# --- who may call ------------------------------------------------------------------------


def test_the_admin_api_without_a_key_is_401(admin: httpx.Client) -> None:
    response = admin.get("/admin/api/keys")
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


def test_the_admin_api_with_a_virtual_key_is_403(admin: httpx.Client) -> None:
    created = create_key(admin, name="not an admin")
    response = admin.get("/admin/api/keys", headers=bearer(created["key"]))
    assert response.status_code == 403
    assert "master key" in error_message(response)


def test_the_admin_api_with_a_wrong_key_is_401(admin: httpx.Client) -> None:
    response = admin.get("/admin/api/keys", headers=bearer("mw-" + "x" * 43))
    assert response.status_code == 401


# --- keys --------------------------------------------------------------------------------


def test_a_created_key_is_shown_once_with_its_settings(admin: httpx.Client) -> None:
    created = create_key(
        admin,
        name="ci",
        owner_team="ml",
        models=["mock/*"],
        rpm=60,
        budget_usd=5,
        budget_period="day",
        expires_in_days=30,
        metadata={"ticket": "OPS-1"},
    )
    assert str(created["key"]).startswith("mw-")
    assert created["owner_team"] == "ml" and created["models"] == ["mock/*"]
    assert created["rpm"] == 60 and created["budget_period"] == "day"
    assert created["status"] == "active" and created["metadata"] == {"ticket": "OPS-1"}
    assert isinstance(created["expires_at"], float) and created["expires_at"] > time.time()

    listed = admin.get("/admin/api/keys", headers=AS_MASTER)
    one = admin.get(f"/admin/api/keys/{created['id']}", headers=AS_MASTER)
    assert listed.status_code == 200 and one.status_code == 200
    assert created["id"] in {key["id"] for key in listed.json()["keys"]}
    assert one.json()["name"] == "ci"
    for text in (listed.text, one.text):
        assert str(created["key"]) not in text and "argon2" not in text and '"key"' not in text


def test_a_created_key_calls_the_chat_api_until_it_is_revoked(admin: httpx.Client) -> None:
    created = create_key(admin, name="app", models=["mock/*"])
    answer = admin.post("/v1/chat/completions", json=CHAT, headers=bearer(created["key"]))
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"] == "hello"

    revoked = admin.delete(f"/admin/api/keys/{created['id']}", headers=AS_MASTER)
    assert revoked.status_code == 200
    assert revoked.json()["status"] == "revoked"

    refused = admin.post("/v1/chat/completions", json=CHAT, headers=bearer(created["key"]))
    assert refused.status_code == 401
    assert "revoked" in error_message(refused)


def test_a_key_may_only_use_its_models(admin: httpx.Client) -> None:
    created = create_key(admin, name="narrow", models=["mock/mock-*"])
    refused = admin.post("/v1/chat/completions", json=CHAT, headers=bearer(created["key"]))
    assert refused.status_code == 403


def test_an_expiry_time_may_be_an_rfc3339_time(admin: httpx.Client) -> None:
    created = create_key(admin, expires_at="2099-01-01T00:00:00Z")
    assert created["expires_at"] == 4070908800.0


# --- malformed requests ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "names"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "empty"),
        (b'["a list"]', "object"),
        (b'{"name": "x", "colour": "red"}', "colour"),
        (b'{"name": "x", "rpm": "sixty"}', "rpm"),
        (b'{"name": "x", "rpm": -1}', "rpm"),
        (b'{"name": "x", "models": "gpt-*"}', "models"),
        (b'{"name": "x", "budget_period": "week"}', "budget_period"),
        (b'{"rpm": 5}', "name"),
        (b'{"name": "x", "expires_at": 1, "expires_in_days": 1}', "expires_in_days"),
        (b'{"name": "x", "expires_at": "2001-01-01T00:00:00Z"}', "expires_at"),
    ],
)
def test_a_malformed_key_request_is_400_naming_the_problem(
    admin: httpx.Client, body: bytes, names: str
) -> None:
    response = admin.post("/admin/api/keys", content=body, headers=AS_MASTER)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert names in error_message(response)


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_an_unknown_key_id_is_404(admin: httpx.Client, method: str) -> None:
    response = admin.request(method, "/admin/api/keys/no-such-key", headers=AS_MASTER)
    assert response.status_code == 404
    assert "no-such-key" in error_message(response)


@pytest.mark.parametrize(
    ("path", "names"),
    [
        ("/admin/api/usage?by=week", "by"),
        ("/admin/api/usage?since=yesterday", "since"),
        ("/admin/api/requests?limit=lots", "limit"),
        ("/admin/api/requests?status=ok", "status"),
    ],
)
def test_a_malformed_usage_query_is_400(admin: httpx.Client, path: str, names: str) -> None:
    response = admin.get(path, headers=AS_MASTER)
    assert response.status_code == 400
    assert error_message(response).startswith(names)


# --- usage -------------------------------------------------------------------------------


def _record_usage(data_dir: Path, *records: UsageRecord) -> None:
    async def insert() -> None:
        store = await Store.open(database_url({"MODELWAY_DATA_DIR": str(data_dir)}))
        try:
            await store.usage.insert_many(records)
        finally:
            await store.aclose()

    asyncio.run(insert())


def test_usage_is_summarised_by_key_model_and_day(admin: httpx.Client, data_dir: Path) -> None:
    created = create_key(admin, name="reporting")
    key_id = str(created["id"])
    day = float(calendar.timegm((2031, 3, 4, 12, 0, 0)))
    _record_usage(
        data_dir,
        UsageRecord(
            request_id="r1",
            time=day,
            key_id=key_id,
            alias="fast",
            provider="openai",
            model="gpt-x",
            prompt_tokens=10,
        ),
        UsageRecord(
            request_id="r2",
            time=day,
            key_id=key_id,
            alias="fast",
            provider="azure",
            model="gpt-x",
            status=429,
        ),
        UsageRecord(
            request_id="r3",
            time=day + 1,
            key_id=key_id,
            team="research",
            alias="fast",
            provider="anthropic",
            model="claude-y",
            cost_usd=0.5,
        ),
    )

    by_key = admin.get(f"/admin/api/usage?by=key&key_id={key_id}", headers=AS_MASTER).json()
    assert by_key["by"] == "key"
    [row] = by_key["rows"]
    assert row["group"] == key_id and row["key_name"] == "reporting"
    assert (row["requests"], row["errors"], row["prompt_tokens"]) == (3, 1, 10)
    assert row["cost_usd"] == 0.5 and row["latency_p50_ms"] is not None

    by_model = admin.get(f"/admin/api/usage?by=model&key_id={key_id}", headers=AS_MASTER).json()
    assert {row["group"]: row["requests"] for row in by_model["rows"]} == {
        "gpt-x": 2,
        "claude-y": 1,
    }
    # One model served by two providers, one alias over three: each view tells them apart.
    for by, groups in {
        "provider": {"openai": 1, "azure": 1, "anthropic": 1},
        "alias": {"fast": 3},
        "team": {None: 2, "research": 1},
    }.items():
        rows = admin.get(f"/admin/api/usage?by={by}&key_id={key_id}", headers=AS_MASTER).json()
        assert {row["group"]: row["requests"] for row in rows["rows"]} == groups, by
    wrong = admin.get("/admin/api/usage?by=colour", headers=AS_MASTER)
    assert wrong.status_code == 400
    assert "key, model, provider, alias, team, day" in wrong.json()["error"]["message"]

    by_day = admin.get("/admin/api/usage?by=day&since=2031-03-04", headers=AS_MASTER).json()
    assert [row["group"] for row in by_day["rows"]] == ["2031-03-04"]
    later = admin.get("/admin/api/usage?by=day&since=2031-03-05", headers=AS_MASTER).json()
    assert later["rows"] == []


def test_recent_requests_can_be_filtered(admin: httpx.Client, data_dir: Path) -> None:
    created = create_key(admin, name="audited")
    key_id = str(created["id"])
    now = time.time()
    _record_usage(
        data_dir,
        UsageRecord(request_id="a", time=now, key_id=key_id, model="m1", status=200),
        UsageRecord(request_id="b", time=now + 1, key_id=key_id, model="m2", status=500),
    )
    newest = admin.get(f"/admin/api/requests?key_id={key_id}&limit=1", headers=AS_MASTER)
    assert [r["request_id"] for r in newest.json()["requests"]] == ["b"]
    failed = admin.get(f"/admin/api/requests?key_id={key_id}&status=500", headers=AS_MASTER)
    assert [r["model"] for r in failed.json()["requests"]] == ["m2"]
    by_model = admin.get(f"/admin/api/requests?key_id={key_id}&model=m1", headers=AS_MASTER)
    [record] = by_model.json()["requests"]
    assert record["status"] == 200 and record["key_id"] == key_id


# --- sign-up -----------------------------------------------------------------------------


def test_sign_up_is_404_unless_enabled(admin: httpx.Client) -> None:
    body = {"email": "someone@example.com", "password": "long enough"}
    assert admin.post("/auth/register", json=body).status_code == 404
    assert admin.post("/auth/keys", json={**body, "name": "k"}).status_code == 404


def test_an_account_gets_keys_that_call_the_chat_api(signup_gateway: httpx.Client) -> None:
    account = {"email": "Ada@Example.com", "password": "correct horse battery"}
    registered = signup_gateway.post("/auth/register", json=account)
    assert registered.status_code == 201, registered.text
    assert registered.json()["email"] == "ada@example.com"
    assert "password" not in registered.text and "argon2" not in registered.text

    created = signup_gateway.post("/auth/keys", json={**account, "name": "laptop"})
    assert created.status_code == 201, created.text
    assert created.json()["owner_user"] == "ada@example.com"
    answer = signup_gateway.post(
        "/v1/chat/completions", json=CHAT, headers=bearer(created.json()["key"])
    )
    assert answer.status_code == 200, answer.text


def test_sign_up_refuses_a_wrong_password_and_a_taken_email(signup_gateway: httpx.Client) -> None:
    account = {"email": "grace@example.com", "password": "a proper password"}
    assert signup_gateway.post("/auth/register", json=account).status_code == 201
    assert signup_gateway.post("/auth/register", json=account).status_code == 400
    wrong = {**account, "password": "not the password", "name": "k"}
    refused = signup_gateway.post("/auth/keys", json=wrong)
    assert refused.status_code == 401
    assert "wrong email or password" in error_message(refused)


def test_sign_up_bodies_are_checked(signup_gateway: httpx.Client) -> None:
    extra = {"email": "x@example.com", "password": "long enough", "admin": True}
    response = signup_gateway.post("/auth/register", json=extra)
    assert response.status_code == 400 and "admin" in error_message(response)
    account = {"email": "x@example.com", "password": "long enough"}
    assert signup_gateway.post("/auth/register", json=account).status_code == 201
    for name in ("n" * 201, "laptop\nforged line"):  # a key's name, as the admin API checks it
        response = signup_gateway.post("/auth/keys", json={**account, "name": name})
        assert response.status_code == 400, response.text


def test_sign_up_bodies_never_show_the_password() -> None:
    from modelway.gateway.signup import KeyRequest, Registration

    shown = repr(Registration(email="a@b.co", password="hunter2hunter2")) + repr(
        KeyRequest(email="a@b.co", password="hunter2hunter2", name="laptop")
    )
    assert "hunter2" not in shown and "a@b.co" in shown


def test_without_a_master_key_the_admin_api_says_so(signup_gateway: httpx.Client) -> None:
    account = {"email": "lin@example.com", "password": "a proper password"}
    signup_gateway.post("/auth/register", json=account)
    key = signup_gateway.post("/auth/keys", json={**account, "name": "k"}).json()["key"]
    response = signup_gateway.get("/admin/api/keys", headers=bearer(key))
    assert response.status_code == 403
    assert "MODELWAY_MASTER_KEY" in error_message(response)
    # Any key, even one the gateway never made (the CLI sent its own master key): the
    # answer says the admin API is off, not "invalid API key".
    unknown = signup_gateway.get("/admin/api/keys", headers=bearer("mw-" + "x" * 40))
    assert unknown.status_code == 403
    assert "the admin API is off" in error_message(unknown)


# --- request bodies ----------------------------------------------------------------------


def test_a_chunked_body_past_max_body_bytes_is_413_and_not_taken_in(tmp_path: Path) -> None:
    env = {"MODELWAY_MASTER_KEY": MASTER, "MODELWAY_DATA_DIR": str(tmp_path)}
    config = "server:\n  max_body_bytes: 4096\n"
    chunk, chunks = b"x" * 65536, 1024  # 64 MiB, no Content-Length
    with running_gateway(env, config) as url, httpx.Client(base_url=url, timeout=30) as client:
        for path in ("/admin/api/keys", "/chat/api/sessions"):
            sent = 0

            def body() -> Iterator[bytes]:
                nonlocal sent
                for _ in range(chunks):
                    sent += 1
                    yield chunk

            json = {"content-type": "application/json"}  # the web chat's API takes no other
            response = client.post(path, content=body(), headers={**AS_MASTER, **json})

            assert response.status_code == 413, response.text
            assert response.json()["error"]["code"] == "payload_too_large"
            # The gateway stopped reading and closed: only what the sockets buffer went out.
            assert sent < chunks // 2
        assert client.post("/admin/api/keys", json={"name": "small"}, headers=AS_MASTER).is_success
