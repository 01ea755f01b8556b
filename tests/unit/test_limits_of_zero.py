"""A limit of 0 — a key's rpm, tpm, token or dollar budget, a team's budget — refuses every
call, and the admin API and ``modelway keys create`` take it; a value that makes no sense
(negative, larger than the store holds) is a 400 naming the field, or a usage error."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

import modelway.cli  # noqa: F401  (registers every command)
from modelway.cli.app import app as cli_app
from modelway.store.keys import MAX_RATE, MAX_TOKEN_BUDGET
from tests.unit.gateways import Setup, in_process_gateway
from tests.unit.test_hostile_http_bodies import _PROPERTY
from tests.unit.test_store_keys import cheap_argon2  # noqa: F401  (autouse)

CHAT = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
#: Each limit, what a refusal by it says, and its error code.
ZEROS = {
    "rpm": ("requests per minute: limit 0", "rate_limit_exceeded"),
    "tpm": ("tokens per minute: limit 0", "rate_limit_exceeded"),
    "budget_tokens": ("budget is 0 tokens: no call may spend", "budget_exceeded"),
    "budget_usd": ("budget is $0.00: no call may spend", "budget_exceeded"),
}
#: The most each whole-number limit may be: what the store's columns hold.
MOST = {"rpm": MAX_RATE, "tpm": MAX_RATE, "budget_tokens": MAX_TOKEN_BUDGET}
WHOLE = st.sampled_from(sorted(MOST))
AMOUNTS = st.integers() | st.sampled_from([-1, 0, 1, MAX_RATE, MAX_RATE + 1, MAX_TOKEN_BUDGET + 1])


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Setup]:
    async with in_process_gateway(tmp_path) as setup:
        yield setup


async def call_with(setup: Setup, key: dict[str, Any]) -> Any:
    return await setup.http.post(
        "/v1/chat/completions", json=CHAT, headers={"authorization": f"Bearer {key['key']}"}
    )


def refused_by(answer: Any, field: str) -> None:
    words, code = ZEROS[field]
    assert answer.status_code == 429, answer.text
    error = answer.json()["error"]
    assert words in error["message"] and error["code"] == code
    assert "retry-after" not in answer.headers  # no amount of waiting helps


@pytest.mark.parametrize("field", sorted(ZEROS))
async def test_a_key_made_with_a_limit_of_0_keeps_it_and_is_refused_every_call(
    gateway: Setup, field: str
) -> None:
    made = await gateway.http.post("/admin/api/keys", json={"name": "k", field: 0})
    assert made.status_code == 201, made.text
    key = made.json()
    assert key[field] == 0
    refused_by(await call_with(gateway, key), field)


@pytest.mark.parametrize("field", sorted(ZEROS))
async def test_a_key_edited_to_a_limit_of_0_is_refused_the_next_call(
    gateway: Setup, field: str
) -> None:
    key = (await gateway.http.post("/admin/api/keys", json={"name": "k"})).json()
    assert (await call_with(gateway, key)).status_code == 200
    edited = await gateway.http.patch(f"/admin/api/keys/{key['id']}", json={field: 0})
    assert edited.status_code == 200, edited.text
    assert edited.json()[field] == 0
    refused_by(await call_with(gateway, key), field)


async def test_a_team_budget_of_0_refuses_every_key_of_the_team(gateway: Setup) -> None:
    made = await gateway.http.post("/admin/api/teams", json={"name": "ml", "budget_usd": 0})
    assert made.status_code == 201, made.text
    key = (
        await gateway.http.post("/admin/api/keys", json={"name": "k", "owner_team": "ml"})
    ).json()
    refused_by(await call_with(gateway, key), "budget_usd")


@_PROPERTY
@given(field=WHOLE, value=AMOUNTS)
async def test_a_whole_number_limit_is_taken_from_0_to_what_the_store_holds(
    gateway: Setup, field: str, value: int
) -> None:
    made = await gateway.http.post("/admin/api/keys", json={"name": "k", field: value})
    other = (await gateway.http.post("/admin/api/keys", json={"name": "k"})).json()
    edited = await gateway.http.patch(f"/admin/api/keys/{other['id']}", json={field: value})
    if 0 <= value <= MOST[field]:
        assert (made.status_code, edited.status_code) == (201, 200), (made.text, edited.text)
        assert made.json()[field] == edited.json()[field] == value
    else:
        for answer in (made, edited):
            assert answer.status_code == 400, answer.text
            assert answer.json()["error"]["message"].startswith(f"{field}: ")


@_PROPERTY
@given(value=st.floats(allow_nan=False, allow_infinity=False))
async def test_a_budget_in_dollars_is_taken_from_0_up(gateway: Setup, value: float) -> None:
    key = (await gateway.http.post("/admin/api/keys", json={"name": "k"})).json()
    answers = [
        await gateway.http.post("/admin/api/keys", json={"name": "k", "budget_usd": value}),
        await gateway.http.patch(f"/admin/api/keys/{key['id']}", json={"budget_usd": value}),
        await gateway.http.post("/admin/api/teams", json={"name": "t", "budget_usd": value}),
        await gateway.http.patch("/admin/api/teams/t", json={"budget_usd": value}),
    ]
    await gateway.http.delete("/admin/api/teams/t")
    for answer in answers:
        if value >= 0:
            assert answer.status_code in (200, 201, 404), answer.text  # 404: no team "t" made
        else:
            assert answer.status_code in (400, 404), answer.text
            if answer.status_code == 400:
                assert answer.json()["error"]["message"].startswith("budget_usd: ")
    if value >= 0:
        assert answers[0].json()["budget_usd"] == value


# --- the command line ----------------------------------------------------------------------


def keys(tmp_path: Path, *args: str) -> Any:
    environ = {
        "MODELWAY_DATA_DIR": str(tmp_path),
        "DATABASE_URL": "",
        "MODELWAY_MASTER_KEY": "",
        "COLUMNS": "200",  # the table's limits in one line
    }
    return CliRunner().invoke(cli_app, ["keys", *args], env=environ)


def test_keys_create_takes_a_limit_of_0(tmp_path: Path) -> None:
    zeros = ["--rpm", "0", "--tpm", "0", "--budget-tokens", "0", "--budget-usd", "0"]
    made = keys(tmp_path, "create", "--name", "n", *zeros, "--json")
    assert made.exit_code == 0, made.output
    (key,) = json.loads(keys(tmp_path, "list", "--json").output)
    assert [key[field] for field in ("rpm", "tpm", "budget_tokens", "budget_usd")] == [0, 0, 0, 0]
    assert "0 rpm, 0 tpm, $0.00 + 0 tokens / month" in keys(tmp_path, "list").output


@pytest.mark.parametrize(
    "given",
    [
        ["--rpm", "-1"],
        ["--tpm", "-5"],
        ["--budget-tokens", "-1"],
        ["--budget-usd", "-0.5"],
        ["--rpm", str(MAX_RATE + 1)],
        ["--budget-usd", "nan"],
        ["--budget-usd", "inf"],
    ],
)
def test_keys_create_refuses_a_limit_that_makes_no_sense(tmp_path: Path, given: list[str]) -> None:
    made = keys(tmp_path, "create", "--name", "n", *given)
    assert made.exit_code != 0 and "Traceback" not in made.output
    named = given[0].removeprefix("--").replace("-", "_")
    assert given[0] in made.output or named in made.output, made.output
    assert json.loads(keys(tmp_path, "list", "--json").output) == []
