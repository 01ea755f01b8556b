"""Calls to a model with no price, through the gateway: recorded as unpriced (its cost
unknown, never a silent $0), shown so in the admin API, and refused to a USD budget."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from modelway.store.records import UsageRecord
from tests.polling import eventually
from tests.unit.gateways import Setup, in_process_gateway

UNPRICED = "openai/gpt-99-ultra"
PRICED = "openai/gpt-4o"


def chat(model: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}]}


async def key_headers(setup: Setup, **settings: Any) -> dict[str, str]:
    _, plaintext = await setup.state.store.keys.create("app", **settings)
    return {"authorization": f"Bearer {plaintext}"}


async def stored(setup: Setup, count: int) -> list[UsageRecord]:
    async def enough() -> list[UsageRecord] | None:
        found = await setup.state.store.usage.recent(limit=count + 1)
        return found if len(found) >= count else None

    found: list[UsageRecord] | None = await eventually(enough)
    assert found is not None and len(found) == count
    return found


@pytest.fixture
async def setup(tmp_path: Path) -> Any:
    async with in_process_gateway(tmp_path) as setup:
        yield setup


async def test_a_usd_budget_is_refused_a_model_with_no_price_in_the_callers_own_format(
    setup: Setup,
) -> None:
    headers = await key_headers(setup, budget_usd=0.000001, budget_period="total")

    openai = await setup.http.post("/v1/chat/completions", json=chat(UNPRICED), headers=headers)
    anthropic = await setup.http.post(
        "/v1/messages", json={**chat(UNPRICED), "max_tokens": 10}, headers=headers
    )

    assert openai.status_code == 403, openai.text
    error = openai.json()["error"]
    assert error["code"] == "model_unpriced"
    assert error["message"].startswith(f"model {UNPRICED} has no price")
    assert openai.headers["x-should-retry"] == "false"
    assert anthropic.status_code == 403
    assert anthropic.json()["error"]["type"] == "permission_error"
    # A priced model is served, and then the spent budget refuses: it holds.
    served = await setup.http.post("/v1/chat/completions", json=chat(PRICED), headers=headers)
    spent = await setup.http.post("/v1/chat/completions", json=chat(PRICED), headers=headers)
    assert (served.status_code, spent.status_code) == (200, 429)


async def test_an_unpriced_call_shows_as_unpriced_in_the_admin_api_never_as_free(
    setup: Setup,
) -> None:
    headers = await key_headers(setup)  # no budget: the call is served
    for model in (UNPRICED, UNPRICED, PRICED):
        answered = await setup.http.post("/v1/chat/completions", json=chat(model), headers=headers)
        assert answered.status_code == 200, answered.text
    records = await stored(setup, 3)
    assert sorted((r.model, r.unpriced) for r in records) == [
        ("gpt-4o", False),
        ("gpt-99-ultra", True),
        ("gpt-99-ultra", True),
    ]

    log = (await setup.http.get("/admin/api/requests")).json()["requests"]
    assert sorted((r["model"], r["unpriced"]) for r in log) == [
        ("gpt-4o", False),
        ("gpt-99-ultra", True),
        ("gpt-99-ultra", True),
    ]
    totals = (await setup.http.get("/admin/api/usage/totals")).json()
    assert (totals["requests"], totals["unpriced_requests"]) == (3, 2)
    assert totals["cost_usd"] > 0  # gpt-4o's
    top = (await setup.http.get("/admin/api/usage/top", params={"by": "model"})).json()
    assert {row["group"]: row["unpriced_requests"] for row in top["rows"]} == {
        "gpt-4o": 0,
        "gpt-99-ultra": 2,
    }
    summary = (await setup.http.get("/admin/api/usage", params={"by": "model"})).json()
    assert {row["group"]: row["unpriced_requests"] for row in summary["rows"]} == {
        "gpt-4o": 0,
        "gpt-99-ultra": 2,
    }


def test_modelway_usage_says_unpriced_rather_than_a_cost_of_zero(tmp_path: Path) -> None:
    from modelway.cli import app as cli_app
    from modelway.store import Store, database_url

    environ = {"MODELWAY_DATA_DIR": str(tmp_path), "DATABASE_URL": "", "MODELWAY_CONFIG": ""}
    records = [
        UsageRecord(request_id="a", time=time.time(), model="house", unpriced=True),
        UsageRecord(request_id="b", time=time.time(), model="gpt-4o", cost_usd=1.2),
    ]

    async def write() -> None:
        store = await Store.open(database_url(environ))
        try:
            await store.usage.insert_many(records)
        finally:
            await store.aclose()

    asyncio.run(write())
    runner = CliRunner()
    by_model = runner.invoke(cli_app, ["usage", "--by", "model"], env=environ)
    by_day = runner.invoke(cli_app, ["usage", "--by", "day"], env=environ)

    assert by_model.exit_code == 0, by_model.output
    [house] = [line for line in by_model.output.splitlines() if "house" in line]
    assert "unpriced" in house and "$0.00" not in house
    assert "calls to a model with no price" in by_model.output
    assert "$1.20+?" in by_day.output  # the day's cost is at least what was priced
