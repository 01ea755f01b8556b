"""The admin dashboard's writes and listings, fed realistic bodies with any part swapped
for any JSON: whatever arrives, the answer is never a 5xx and errors are OpenAI's shape.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.gateways import MASTER, Setup, in_process_gateway
from tests.unit.test_hostile_http_bodies import _PROPERTY, _QUERY_TEXT, check, swapped
from tests.unit.test_store_keys import cheap_argon2  # noqa: F401  (autouse)

#: (method, path, a realistic body); ``{key}`` is an existing key's id, ``{user}`` an account's.
WRITES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/admin/api/session", {"master_key": MASTER}),
    ("POST", "/admin/api/session", {"email": "ada@example.com", "password": "correct horse"}),
    (
        "PATCH",
        "/admin/api/keys/{key}",
        {
            "name": "ci",
            "owner_user": "ann",
            "owner_team": "ml",
            "models": ["gpt-*"],
            "rpm": 60,
            "tpm": 1000,
            "budget_usd": 5.0,
            "budget_tokens": 100,
            "budget_period": "day",
            "expires_at": "2099-01-01T00:00:00Z",
            "metadata": {"ticket": "OPS-1"},
        },
    ),
    (
        "POST",
        "/admin/api/teams",
        {"name": "ml2", "budget_usd": 5.0, "budget_period": "month", "metadata": {"a": 1}},
    ),
    ("PATCH", "/admin/api/teams/ml", {"budget_usd": 5.0, "budget_period": "day", "metadata": {}}),
    ("POST", "/admin/api/teams/ml/members", {"email": "ada@example.com"}),
    (
        "POST",
        "/admin/api/users",
        {"email": "bob@example.com", "password": "x" * 12, "is_admin": True},
    ),
    ("PATCH", "/admin/api/users/{user}", {"is_admin": True, "password": "y" * 12}),
]


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Setup]:
    async with in_process_gateway(tmp_path) as setup:
        yield setup


async def _ids(setup: Setup) -> dict[str, str]:
    key = (await setup.http.post("/admin/api/keys", json={"name": "k"})).json()
    await setup.http.post("/admin/api/teams", json={"name": "ml"})
    await setup.http.post(  # a second time: 400, the account exists
        "/admin/api/users",
        json={"email": "ada@example.com", "password": "correct horse", "is_admin": True},
    )
    users = (await setup.http.get("/admin/api/users")).json()["users"]
    ada = next(user for user in users if user["email"] == "ada@example.com")
    return {"key": key["id"], "user": ada["id"]}


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
@_PROPERTY
@given(data=st.data())
async def test_any_part_swapped_for_any_json_is_never_a_5xx(
    gateway: Setup, method: str, path: str, body: dict[str, Any], data: st.DataObject
) -> None:
    ids = await _ids(gateway) if "{" in path else {}
    target = path.format(**ids)
    sent = swapped(body, data)
    check(target, await gateway.http.request(method, target, content=json.dumps(sent)))


@_PROPERTY
@given(
    raw=st.binary(max_size=64) | st.text(max_size=64).map(str.encode),
    path=st.sampled_from(
        ["/admin/api/session", "/admin/api/teams", "/admin/api/users", "/admin/api/keys/x"]
    ),
)
async def test_any_bytes_are_never_a_5xx(gateway: Setup, raw: bytes, path: str) -> None:
    method = "PATCH" if path.endswith("/x") else "POST"
    check(path, await gateway.http.request(method, path, content=raw))


@_PROPERTY
@given(data=st.data())
async def test_any_key_listing_parameters_are_never_a_5xx(
    gateway: Setup, data: st.DataObject
) -> None:
    names = ["q", "status", "sort", "order", "limit", "offset", "id"]
    chosen = data.draw(st.lists(st.sampled_from(names), unique=True), label="names")
    params = [(name, data.draw(_QUERY_TEXT, label=name)) for name in chosen]
    ids = data.draw(st.lists(_QUERY_TEXT, max_size=3), label="more ids")  # ``id`` repeats
    params += [("id", one) for one in ids]
    check("/admin/api/keys", await gateway.http.get("/admin/api/keys", params=params))


async def test_a_key_listing_offset_past_a_database_integer_is_a_400(gateway: Setup) -> None:
    # Found by the property above: 2**63 overflowed SQLite's INTEGER (a 500).
    answer = await gateway.http.get("/admin/api/keys", params={"offset": str(2**63)})
    assert answer.status_code == 400


@_PROPERTY
@given(name=st.text(min_size=1, max_size=40), method=st.sampled_from(["GET", "PATCH", "DELETE"]))
async def test_any_team_name_or_account_id_in_the_path_is_never_a_5xx(
    gateway: Setup, name: str, method: str
) -> None:
    for path in (
        f"/admin/api/teams/{quote(name, safe='')}",
        f"/admin/api/users/{quote(name, safe='')}",
    ):
        if method == "GET" and "users" in path:
            continue
        check(path, await gateway.http.request(method, path, json={}))
