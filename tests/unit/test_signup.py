"""Self-service sign-up spends the client address's budget of failed key checks.

Both ``/auth/register`` and ``/auth/keys`` run Argon2 for a caller nobody knows yet, so
a wrong password counts as a failure, a registration counts whatever its answer, and
past ``server.key_checks.failures_per_address`` both answer 429 with ``Retry-After``
before any Argon2 run — one budget shared with API keys and admin sign-ins.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelway.errors import BadRequest
from modelway.store import users
from tests.unit.gateways import Setup, in_process_gateway
from tests.unit.test_store_keys import cheap_argon2  # noqa: F401  (autouse)

ACCOUNT = {"email": "ada@example.com", "password": "correct horse battery"}
WRONG = {**ACCOUNT, "password": "not the password", "name": "laptop"}


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Setup]:
    config = "server:\n  signup: true\n  key_checks: {failures_per_address: 3}\n"
    async with in_process_gateway(tmp_path, config) as setup:
        yield setup


def stranger(setup: Setup, address: str = "203.0.113.7") -> httpx.AsyncClient:
    """A client with no key, from ``address``."""
    transport = httpx.ASGITransport(app=setup.app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://gateway")


@pytest.fixture
def argon2_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The Argon2 runs of the store's accounts, in order: ``hash`` or ``check``."""
    runs: list[str] = []
    real_hash, real_check = users.hash_secret, users.secret_matches

    async def hashing(secret: str) -> str:
        runs.append("hash")
        return await real_hash(secret)

    async def checking(secret_hash: str, secret: str) -> bool:
        runs.append("check")
        return await real_check(secret_hash, secret)

    monkeypatch.setattr(users, "hash_secret", hashing)
    monkeypatch.setattr(users, "secret_matches", checking)
    return runs


async def test_wrong_passwords_for_a_key_are_401_then_429_with_retry_after(
    gateway: Setup, argon2_runs: list[str]
) -> None:
    assert (await gateway.http.post("/auth/register", json=ACCOUNT)).status_code == 201
    async with stranger(gateway) as http:
        answers = [await http.post("/auth/keys", json=WRONG) for _ in range(15)]
        right = await http.post("/auth/keys", json={**WRONG, "password": ACCOUNT["password"]})
    assert [answer.status_code for answer in answers] == [401] * 3 + [429] * 12
    assert 1 <= int(answers[-1].headers["retry-after"]) <= 61
    assert answers[-1].json()["error"]["code"] == "too_many_failed_keys"
    assert right.status_code == 429  # the address is refused, whatever it sends
    assert argon2_runs == ["hash", "check", "check", "check"]  # refusals cost nothing


async def test_a_right_password_is_not_counted_as_a_failure(gateway: Setup) -> None:
    assert (await gateway.http.post("/auth/register", json=ACCOUNT)).status_code == 201
    right = {**WRONG, "password": ACCOUNT["password"]}
    async with stranger(gateway) as http:
        made = [await http.post("/auth/keys", json=right) for _ in range(5)]
        wrong = await http.post("/auth/keys", json=WRONG)
    assert [answer.status_code for answer in made] == [201] * 5
    assert wrong.status_code == 401


async def test_every_registration_is_counted_so_sign_ups_cannot_buy_argon2_at_will(
    gateway: Setup, argon2_runs: list[str]
) -> None:
    async with stranger(gateway) as http:
        answers = [
            await http.post("/auth/register", json={**ACCOUNT, "email": f"u{n}@example.com"})
            for n in range(5)
        ]
    assert [answer.status_code for answer in answers] == [201] * 3 + [429] * 2
    assert "retry-after" in answers[-1].headers
    assert argon2_runs == ["hash"] * 3
    assert await gateway.state.store.users.find("u3@example.com") is None
    async with stranger(gateway, "198.51.100.20") as http:  # another address: its own budget
        other = await http.post("/auth/register", json={**ACCOUNT, "email": "u3@example.com"})
    assert other.status_code == 201


async def test_sign_up_and_admin_sign_in_share_one_budget_of_wrong_guesses(
    gateway: Setup,
) -> None:
    async with stranger(gateway) as http:
        registered = await http.post("/auth/register", json=ACCOUNT)
        wrong_key = await http.post("/auth/keys", json=WRONG)
        wrong_sign_in = await http.post("/admin/api/session", json={"master_key": "mw-wrong"})
        refused = await http.post("/auth/keys", json=WRONG)
    statuses = [registered, wrong_key, wrong_sign_in, refused]
    assert [answer.status_code for answer in statuses] == [201, 401, 401, 429]


async def test_a_malformed_body_costs_no_argon2_and_is_not_counted(
    gateway: Setup, argon2_runs: list[str]
) -> None:
    async with stranger(gateway) as http:
        for _ in range(5):
            answer = await http.post("/auth/register", json={**ACCOUNT, "admin": True})
            assert answer.status_code == 400
        assert (await http.post("/auth/register", json=ACCOUNT)).status_code == 201
    assert argon2_runs == ["hash"]


async def test_deleting_an_account_revokes_its_keys_and_a_new_account_does_not_get_them(
    gateway: Setup,
) -> None:
    account = {"email": "bob@x.io", "password": "correct horse battery"}
    user = (await gateway.http.post("/auth/register", json=account)).json()
    made = await gateway.http.post("/auth/keys", json={**account, "name": "laptop"})
    key = {"authorization": f"Bearer {made.json()['key']}"}
    async with stranger(gateway) as http:
        assert (await http.get("/v1/models", headers=key)).status_code == 200
        deleted = await gateway.http.delete(f"/admin/api/users/{user['id']}")
        assert deleted.status_code == 204
        # Revoked on this worker at once (the others re-read the key within 5 s).
        assert (await http.get("/v1/models", headers=key)).status_code == 401
        assert (await http.post("/auth/register", json=account)).status_code == 201
    found = (await gateway.http.get("/admin/api/keys", params={"q": "bob"})).json()
    assert [(row["id"], row["status"]) for row in found["keys"]] == [(made.json()["id"], "revoked")]


async def test_an_account_deleted_while_its_password_is_checked_gets_no_working_key(
    gateway: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The deletion commits between the password check and the new key: it revoked the
    # keys the account had then, and the new one must not work either.
    account = {"email": "eve@x.io", "password": "correct horse battery"}
    user = (await gateway.http.post("/auth/register", json=account)).json()
    store = gateway.state.store
    authenticate = store.users.authenticate

    async def deleted_meanwhile(email: str, password: str) -> users.UserRecord:
        record = await authenticate(email, password)
        assert await store.users.delete(user["id"]) == []
        return record

    monkeypatch.setattr(store.users, "authenticate", deleted_meanwhile)
    async with stranger(gateway) as http:
        made = await http.post("/auth/keys", json={**account, "name": "laptop"})
    assert made.status_code == 401
    listed = (await gateway.http.get("/admin/api/keys", params={"q": "eve"})).json()["keys"]
    assert listed == []  # the store would not make a key for an account that is gone


async def test_an_account_deleted_as_its_key_is_stored_gets_no_working_key(
    gateway: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLite has no row lock to hold the deletion off while the key is stored: the
    # deletion commits right after the key, so it revoked the keys it saw, not this one.
    account = {"email": "mal@x.io", "password": "correct horse battery"}
    user = (await gateway.http.post("/auth/register", json=account)).json()
    store = gateway.state.store
    create = store.keys.create

    async def deleted_right_after(*args: Any, **kwargs: Any) -> Any:
        made = await create(*args, **kwargs)
        await store.users.delete(user["id"])
        return made

    monkeypatch.setattr(store.keys, "create", deleted_right_after)
    async with stranger(gateway) as http:
        made = await http.post("/auth/keys", json={**account, "name": "laptop"})
    assert made.status_code == 401
    listed = (await gateway.http.get("/admin/api/keys", params={"q": "mal"})).json()["keys"]
    assert [row["status"] for row in listed] == ["revoked"]


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("  Ada@Example.COM ", "ada@example.com"),
        ("\uff41da@example.com", "ada@example.com"),  # a fullwidth a
        ("e\u0301@example.com", "\u00e9@example.com"),  # e + combining acute is é
        ("\u00e9@example.com", "\u00e9@example.com"),
    ],
)
def test_an_email_is_stored_in_one_form_whatever_way_it_was_typed(given: str, stored: str) -> None:
    assert users.normalise_email(given) == stored


@pytest.mark.parametrize(
    "given",
    ["nul\u0000x@example.com", "zero\u200bwidth@example.com", "bell\u0007@example.com"],
)
def test_an_email_with_a_control_or_invisible_character_is_refused(given: str) -> None:
    with pytest.raises(BadRequest):
        users.normalise_email(given)
