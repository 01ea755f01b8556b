"""The admin dashboard's API in the real app (in-process): sign-in and sessions, the one
guard with its CSRF checks, key search and edits, teams, accounts and team budgets.

The same app as ``modelway serve`` runs, through httpx's ASGI transport; its clock is
injected so a session expires without waiting. tests/integration/test_admin_dashboard.py
runs the parts that need real processes (several workers, a real socket).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelway.gateway.admin_guard import COOKIE
from modelway.gateway.admin_keys import MAX_ID_CHARS, MAX_IDS
from modelway.secrets import Secret
from tests.polling import eventually
from tests.unit.gateways import MASTER, Setup, in_process_gateway
from tests.unit.test_store_keys import cheap_argon2  # noqa: F401  (autouse)

CHAT = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
PASSWORD = "correct horse battery"


class Clock:
    """Epoch seconds that move only when told to."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def gateway(tmp_path: Path, clock: Clock) -> AsyncIterator[Setup]:
    config = "server:\n  key_checks: {failures_per_address: 3}\nadmin:\n  session_hours: 2\n"
    async with in_process_gateway(tmp_path, config, clock=clock) as setup:
        yield setup


def browser(setup: Setup, base_url: str = "http://gateway") -> httpx.AsyncClient:
    """A client with no key, as the dashboard's page is (cookies kept)."""
    return httpx.AsyncClient(transport=setup.http._transport, base_url=base_url)


async def signed_in(setup: Setup, **credentials: str) -> tuple[httpx.AsyncClient, str]:
    """A browser signed in (with the master key unless told otherwise) and its CSRF token."""
    page = browser(setup)
    answer = await page.post("/admin/api/session", json=credentials or {"master_key": MASTER})
    assert answer.status_code == 200, answer.text
    return page, answer.json()["csrf"]


async def new_key(setup: Setup, **settings: object) -> dict[str, object]:
    answer = await setup.http.post("/admin/api/keys", json={"name": "k", **settings})
    assert answer.status_code == 201, answer.text
    created: dict[str, object] = answer.json()
    return created


# --- sign-in -----------------------------------------------------------------------------


async def test_signing_in_with_the_master_key_sets_a_strict_http_only_cookie(
    gateway: Setup, clock: Clock
) -> None:
    page = browser(gateway)
    answer = await page.post("/admin/api/session", json={"master_key": MASTER})
    assert answer.status_code == 200
    body = answer.json()
    assert body["who"] == {"kind": "master", "email": None}
    assert body["expires_at"] == pytest.approx(clock.now + 2 * 3600)
    assert MASTER not in answer.text and answer.headers["cache-control"] == "no-store"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and MASTER not in cookie
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/admin", "max-age=7200"} <= flags
    assert "secure" not in flags  # plain http
    again = await page.get("/admin/api/session")
    assert again.status_code == 200 and again.json() == body
    assert (await page.get("/admin/api/keys")).status_code == 200


async def test_over_https_the_cookie_is_secure(tmp_path: Path) -> None:
    async with in_process_gateway(tmp_path, base_url="https://gateway") as setup:
        page = browser(setup, "https://gateway")
        answer = await page.post("/admin/api/session", json={"master_key": MASTER})
        assert answer.status_code == 200
        flags = {part.strip().lower() for part in answer.headers["set-cookie"].split(";")}
        assert "secure" in flags


async def test_an_admin_account_signs_in_and_a_plain_one_cannot(gateway: Setup) -> None:
    for email, is_admin in (("ada@example.com", True), ("bob@example.com", False)):
        made = await gateway.http.post(
            "/admin/api/users", json={"email": email, "password": PASSWORD, "is_admin": is_admin}
        )
        assert made.status_code == 201 and PASSWORD not in made.text
    page, _ = await signed_in(gateway, email="ada@example.com", password=PASSWORD)
    who = (await page.get("/admin/api/session")).json()["who"]
    assert who == {"kind": "user", "email": "ada@example.com"}
    plain = await browser(gateway).post(
        "/admin/api/session", json={"email": "bob@example.com", "password": PASSWORD}
    )
    assert plain.status_code == 401 and "set-cookie" not in plain.headers


@pytest.mark.parametrize(
    "body",
    [{"master_key": "mk-wrong"}, {"email": "nobody@example.com", "password": "whatever1"}],
)
async def test_wrong_credentials_are_401_and_then_throttled(
    gateway: Setup, body: dict[str, str]
) -> None:
    page = browser(gateway)
    for _ in range(3):  # key_checks.failures_per_address
        wrong = await page.post("/admin/api/session", json=body)
        assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
    throttled = await page.post("/admin/api/session", json={"master_key": MASTER})
    assert throttled.status_code == 429 and "retry-after" in throttled.headers


@pytest.mark.parametrize(
    "body", [{}, {"master_key": MASTER, "email": "a@example.com"}, {"email": "a@example.com"}]
)
async def test_a_sign_in_needs_one_kind_of_credentials(
    gateway: Setup, body: dict[str, str]
) -> None:
    answer = await browser(gateway).post("/admin/api/session", json=body)
    assert answer.status_code == 400


async def test_a_session_expires_on_the_clock(gateway: Setup, clock: Clock) -> None:
    page, _ = await signed_in(gateway)
    clock.now += 2 * 3600 - 1
    assert (await page.get("/admin/api/keys")).status_code == 200
    clock.now += 1
    assert (await page.get("/admin/api/keys")).status_code == 401
    assert (await page.get("/admin/api/session")).status_code == 401


async def test_a_master_session_ends_when_the_gateway_gets_another_master_key(
    gateway: Setup,
) -> None:
    page, _ = await signed_in(gateway)
    assert (await page.get("/admin/api/keys")).status_code == 200
    gateway.state.auth.master_key = Secret(MASTER + "-rotated")  # as a restart with a new one
    assert (await page.get("/admin/api/keys")).status_code == 401
    assert (await page.get("/admin/api/session")).status_code == 401


async def test_signing_out_ends_the_session_everywhere(gateway: Setup) -> None:
    page, csrf = await signed_in(gateway)
    cookie = page.cookies[COOKIE]
    out = await page.delete("/admin/api/session", headers={"x-csrf-token": csrf})
    assert out.status_code == 204 and "max-age=0" in out.headers["set-cookie"].lower()
    replayed = browser(gateway)
    replayed.cookies.set(COOKIE, cookie)  # a copy of the cookie taken before sign-out
    assert (await replayed.get("/admin/api/keys")).status_code == 401


# --- CSRF --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-csrf-token": "wrong"},
        {"x-csrf-token": "<the token>", "origin": "https://evil.example"},
        {"x-csrf-token": "<the token>", "sec-fetch-site": "cross-site"},
    ],
)
async def test_a_state_change_on_the_cookie_needs_the_token_from_this_origin(
    gateway: Setup, headers: dict[str, str]
) -> None:
    page, csrf = await signed_in(gateway)
    sent = {name: csrf if value == "<the token>" else value for name, value in headers.items()}
    refused = await page.post("/admin/api/keys", json={"name": "x"}, headers=sent)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
    allowed = await page.post(
        "/admin/api/keys",
        json={"name": "x"},
        headers={"x-csrf-token": csrf, "origin": "http://gateway"},
    )
    assert allowed.status_code == 201


async def test_the_master_key_as_a_bearer_needs_no_csrf_token(gateway: Setup) -> None:
    assert (await gateway.http.post("/admin/api/keys", json={"name": "cli"})).status_code == 201


ADMIN_ROUTES = [
    ("GET", "/admin/api/keys"),
    ("POST", "/admin/api/keys"),
    ("GET", "/admin/api/keys/some-id"),
    ("PATCH", "/admin/api/keys/some-id"),
    ("DELETE", "/admin/api/keys/some-id"),
    ("GET", "/admin/api/usage"),
    ("GET", "/admin/api/requests"),
    ("GET", "/admin/api/teams"),
    ("POST", "/admin/api/teams"),
    ("GET", "/admin/api/teams/ml"),
    ("PATCH", "/admin/api/teams/ml"),
    ("DELETE", "/admin/api/teams/ml"),
    ("POST", "/admin/api/teams/ml/members"),
    ("DELETE", "/admin/api/teams/ml/members/u1"),
    ("GET", "/admin/api/users"),
    ("POST", "/admin/api/users"),
    ("PATCH", "/admin/api/users/u1"),
    ("DELETE", "/admin/api/users/u1"),
]


async def test_a_virtual_key_is_refused_on_every_admin_route(gateway: Setup) -> None:
    created = await new_key(gateway, name="not an admin")
    as_key = {"authorization": f"Bearer {created['key']}"}
    for method, path in ADMIN_ROUTES:
        answer = await browser(gateway).request(method, path, json={}, headers=as_key)
        assert answer.status_code == 403, (method, path, answer.text)
        anonymous = await browser(gateway).request(method, path, json={})
        assert anonymous.status_code == 401, (method, path, anonymous.text)


# --- keys --------------------------------------------------------------------------------


async def test_keys_are_searched_sorted_and_paged(gateway: Setup) -> None:
    for name in ("delta", "alpha", "charlie", "bravo"):
        # A "." is in no key's random prefix (URL-safe characters): only the team matches.
        await new_key(gateway, name=name, owner_team="ml.ops" if name == "bravo" else None)
    listed = await gateway.http.get(
        "/admin/api/keys", params={"sort": "name", "order": "asc", "limit": 2, "offset": 1}
    )
    assert listed.status_code == 200
    body = listed.json()
    assert [key["name"] for key in body["keys"]] == ["bravo", "charlie"] and body["total"] == 4
    assert all(key["spend_usd"] == 0.0 and "key" not in key for key in body["keys"])
    found = (await gateway.http.get("/admin/api/keys", params={"q": "ML.OPS"})).json()
    assert [key["name"] for key in found["keys"]] == ["bravo"]
    everything = (await gateway.http.get("/admin/api/keys")).json()  # the CLI's call
    assert len(everything["keys"]) == 4


async def test_keys_are_read_by_their_ids(gateway: Setup) -> None:
    # What the request log asks to name the keys of its page.
    made = [await new_key(gateway, name=f"k{n}") for n in range(3)]
    asked = [made[2]["id"], made[0]["id"], "0" * 32, "", made[0]["id"]]
    listed = await gateway.http.get("/admin/api/keys", params=[("id", one) for one in asked])
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert {key["name"] for key in body["keys"]} == {"k0", "k2"} and body["total"] == 2
    await gateway.http.delete(f"/admin/api/keys/{made[2]['id']}")
    revoked = await gateway.http.get(
        "/admin/api/keys",
        params=[("id", made[2]["id"]), ("id", made[1]["id"]), ("status", "revoked")],
    )
    assert [key["name"] for key in revoked.json()["keys"]] == ["k2"]


@pytest.mark.parametrize(
    "params",
    [
        [("id", f"{n:032x}") for n in range(MAX_IDS + 1)],
        [("id", "a" * (MAX_ID_CHARS + 1))],
    ],
)
async def test_too_many_or_too_long_ids_are_400(
    gateway: Setup, params: list[tuple[str, str]]
) -> None:
    answer = await gateway.http.get("/admin/api/keys", params=params)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["message"].startswith("id:")


_IDS = st.lists(
    st.text(max_size=MAX_ID_CHARS + 2)
    | st.text("0123456789abcdef", min_size=32, max_size=32)
    | st.just(""),
    max_size=MAX_IDS + 3,
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_any_ids_answer_exactly_the_keys_they_name_or_a_400(
    gateway: Setup, data: st.DataObject
) -> None:
    existing = [key.id for key in await gateway.state.store.keys.list()]
    if not existing:
        existing = [str((await new_key(gateway))["id"]) for _ in range(3)]
    ids = data.draw(_IDS | st.lists(st.sampled_from(existing), max_size=5), label="ids")
    extra = data.draw(st.lists(st.sampled_from(existing), max_size=3), label="extra")
    asked = [*ids, *extra]
    answer = await gateway.http.get("/admin/api/keys", params=[("id", one) for one in asked])
    named = [one for one in asked if one]
    if len(named) > MAX_IDS or any(len(one) > MAX_ID_CHARS for one in named):
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["message"].startswith("id:")
        return
    assert answer.status_code == 200, answer.text
    found = {key["id"] for key in answer.json()["keys"]}
    assert found == (set(named) & set(existing) if named else set(existing))


@pytest.mark.parametrize(
    "params",
    [{"limit": "0"}, {"limit": "201"}, {"offset": "-1"}, {"sort": "id"}, {"status": "dead"}],
)
async def test_a_malformed_key_listing_is_400(gateway: Setup, params: dict[str, str]) -> None:
    assert (await gateway.http.get("/admin/api/keys", params=params)).status_code == 400


async def test_an_edit_applies_to_the_next_request(gateway: Setup) -> None:
    created = await new_key(gateway, rpm=100, models=["openai/*"])
    as_key = {"authorization": f"Bearer {created['key']}"}
    assert (
        await browser(gateway).post("/v1/chat/completions", json=CHAT, headers=as_key)
    ).status_code == 200
    edited = await gateway.http.patch(
        f"/admin/api/keys/{created['id']}", json={"rpm": 1, "name": "renamed", "metadata": None}
    )
    assert edited.status_code == 200, edited.text
    view = edited.json()
    assert (view["rpm"], view["name"], view["metadata"], view["models"]) == (
        1,
        "renamed",
        {},
        ["openai/*"],
    )
    refused = await browser(gateway).post("/v1/chat/completions", json=CHAT, headers=as_key)
    assert refused.status_code == 429
    cleared = await gateway.http.patch(f"/admin/api/keys/{created['id']}", json={"rpm": None})
    assert cleared.json()["rpm"] is None
    assert (
        await browser(gateway).post("/v1/chat/completions", json=CHAT, headers=as_key)
    ).status_code == 200


@pytest.mark.parametrize(
    "body",
    [{"rpm": -1}, {"name": ""}, {"budget_period": None}, {"expires_at": 1.0}, {"owner": "x"}],
)
async def test_a_wrong_edit_is_400_and_changes_nothing(
    gateway: Setup, body: dict[str, object]
) -> None:
    created = await new_key(gateway, rpm=5)
    answer = await gateway.http.patch(f"/admin/api/keys/{created['id']}", json=body)
    assert answer.status_code == 400, answer.text
    again = (await gateway.http.get(f"/admin/api/keys/{created['id']}")).json()
    assert again["rpm"] == 5 and again["name"] == "k"


async def test_editing_an_unknown_key_is_404(gateway: Setup) -> None:
    assert (await gateway.http.patch("/admin/api/keys/nope", json={"rpm": 1})).status_code == 404


# --- teams, accounts and team budgets ----------------------------------------------------


async def test_teams_and_their_members_are_managed(gateway: Setup) -> None:
    made = await gateway.http.post(
        "/admin/api/teams", json={"name": "ml", "budget_usd": 10, "budget_period": "day"}
    )
    assert made.status_code == 201, made.text
    assert (await gateway.http.post("/admin/api/teams", json={"name": "ml"})).status_code == 400
    user = (
        await gateway.http.post(
            "/admin/api/users", json={"email": "ada@example.com", "password": PASSWORD}
        )
    ).json()
    joined = await gateway.http.post(
        "/admin/api/teams/ml/members", json={"email": "ada@example.com"}
    )
    assert joined.json()["members"] == [{"id": user["id"], "email": "ada@example.com"}]
    await new_key(gateway, owner_team="ml")
    team = (await gateway.http.get("/admin/api/teams/ml")).json()
    assert (team["key_count"], team["spend_usd"], team["budget_usd"]) == (1, 0.0, 10.0)
    users = (await gateway.http.get("/admin/api/users")).json()["users"]
    assert users == [
        {
            "id": user["id"],
            "email": "ada@example.com",
            "is_admin": False,
            "teams": ["ml"],
            "created_at": user["created_at"],
        }
    ]
    patched = await gateway.http.patch("/admin/api/teams/ml", json={"budget_usd": None})
    assert patched.json()["budget_usd"] is None
    left = await gateway.http.delete(f"/admin/api/teams/ml/members/{user['id']}")
    assert left.json()["members"] == []
    assert (
        await gateway.http.delete(f"/admin/api/teams/ml/members/{user['id']}")
    ).status_code == 404
    assert (await gateway.http.delete("/admin/api/teams/ml")).status_code == 204
    assert (await gateway.http.get("/admin/api/teams/ml")).status_code == 404
    assert (await gateway.http.get("/admin/api/teams")).json() == {"teams": []}


@pytest.mark.parametrize("name", ["a/b", "\u0000", "x\u001b[31m", "..", "t" * 201])
async def test_a_team_name_no_route_could_reach_is_refused(gateway: Setup, name: str) -> None:
    made = await gateway.http.post("/admin/api/teams", json={"name": name})
    assert made.status_code == 400
    assert "name" in made.json()["error"]["message"]
    assert (await gateway.http.get("/admin/api/teams")).json() == {"teams": []}
    key = await gateway.http.post("/admin/api/keys", json={"name": "k", "owner_team": name})
    assert key.status_code == 400


async def test_a_team_with_any_other_name_is_read_changed_and_deleted(gateway: Setup) -> None:
    name = "ml ops?#%&ü"
    assert (await gateway.http.post("/admin/api/teams", json={"name": name})).status_code == 201
    path = f"/admin/api/teams/{quote(name, safe='')}"
    assert (await gateway.http.get(path)).json()["name"] == name
    assert (await gateway.http.patch(path, json={"budget_usd": 1})).status_code == 200
    assert (await gateway.http.delete(path)).status_code == 204


async def test_accounts_are_made_changed_and_deleted(gateway: Setup) -> None:
    made = await gateway.http.post(
        "/admin/api/users",
        json={"email": "ada@example.com", "password": PASSWORD, "is_admin": True},
    )
    user = made.json()
    page, _ = await signed_in(gateway, email="ada@example.com", password=PASSWORD)
    changed = await gateway.http.patch(
        f"/admin/api/users/{user['id']}", json={"password": "a new password"}
    )
    assert changed.status_code == 200 and changed.json()["is_admin"] is True
    assert (await page.get("/admin/api/keys")).status_code == 401  # its sessions ended
    await signed_in(gateway, email="ada@example.com", password="a new password")
    assert (await gateway.http.delete(f"/admin/api/users/{user['id']}")).status_code == 204
    assert (await gateway.http.get("/admin/api/users")).json() == {"users": []}
    assert (await gateway.http.delete(f"/admin/api/users/{user['id']}")).status_code == 404


async def test_a_team_budget_refuses_every_key_of_the_team_once_spent(gateway: Setup) -> None:
    # One call costs 5 x 0.15 + 1 x 0.60 = 1.35 millionths of a dollar (gpt-4o-mini).
    made = await gateway.http.post("/admin/api/teams", json={"name": "ml", "budget_usd": 0.000001})
    assert made.status_code == 201
    first, second = [await new_key(gateway, owner_team="ml") for _ in range(2)]
    outsider = await new_key(gateway, owner_team="other")

    async def status(key: dict[str, object]) -> int:
        answer = await browser(gateway).post(
            "/v1/chat/completions", json=CHAT, headers={"authorization": f"Bearer {key['key']}"}
        )
        if answer.status_code == 429:
            assert answer.json()["error"]["code"] == "budget_exceeded"
        return answer.status_code

    assert await status(first) == 200

    async def second_refused() -> bool:  # the charge follows the answer by a moment
        return await status(second) == 429

    assert await eventually(second_refused, within=10, what="the team budget refused")
    assert await status(outsider) == 200
    raised = await gateway.http.patch("/admin/api/teams/ml", json={"budget_usd": 1.0})
    assert raised.status_code == 200
    assert await status(first) == 200
