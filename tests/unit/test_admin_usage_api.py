"""The dashboard's usage API over HTTP: shapes, filters, the cursor, and no query is a 5xx."""

from __future__ import annotations

import calendar
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelway.store import UsageRecord
from tests.unit.gateways import Setup, in_process_gateway
from tests.unit.test_store_keys import cheap_argon2  # noqa: F401  (autouse)
from tests.unit.test_store_rollups import traffic

START = calendar.timegm((2025, 3, 1, 0, 0, 0))
DAY = 86_400
RANGE = {"from": "2025-03-01", "to": "2025-03-04T00:00:00Z"}
POINT_FIELDS = {
    "requests", "errors", "prompt_tokens", "completion_tokens", "cached_tokens",
    "reasoning_tokens", "cost_usd", "unpriced_requests", "latency_p50_ms", "latency_p95_ms",
    "ttft_p50_ms", "ttft_p95_ms",
}  # fmt: skip


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Setup]:
    async with in_process_gateway(tmp_path) as setup:
        yield setup


@pytest.fixture
async def records(gateway: Setup) -> list[UsageRecord]:
    records = traffic(300, seed=4)
    await gateway.state.store.usage.insert_many(records)
    return records


async def get(gateway: Setup, path: str, **params: Any) -> Any:
    response = await gateway.http.get(path, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return response.json()


async def test_the_series_has_a_point_per_bucket_with_traffic(
    gateway: Setup, records: list[UsageRecord]
) -> None:
    body = await get(gateway, "/admin/api/usage/series", bucket="day", model="m1", **RANGE)
    assert (body["bucket"], body["from"], body["to"]) == ("day", START, START + 3 * DAY)
    assert [point["t"] for point in body["points"]] == [START, START + DAY, START + 2 * DAY]
    assert set(body["points"][0]) == POINT_FIELDS | {"t"}
    assert sum(point["requests"] for point in body["points"]) == sum(
        record.model == "m1" for record in records
    )
    hourly = await get(gateway, "/admin/api/usage/series", bucket="hour", **RANGE)
    assert sum(point["requests"] for point in hourly["points"]) == len(records)


async def test_totals_sum_the_filtered_traffic(gateway: Setup, records: list[UsageRecord]) -> None:
    body = await get(gateway, "/admin/api/usage/totals", key_id="k2", team="t0", **RANGE)
    chosen = [r for r in records if r.key_id == "k2" and r.team == "t0"]
    assert set(body) == POINT_FIELDS
    assert (body["requests"], body["errors"]) == (
        len(chosen),
        sum(r.status >= 400 for r in chosen),
    )
    assert body["prompt_tokens"] == sum(r.prompt_tokens for r in chosen)
    assert body["unpriced_requests"] == sum(r.unpriced for r in chosen)


async def test_top_keys_are_named_and_ordered_by_cost(gateway: Setup) -> None:
    key, _ = await gateway.state.store.keys.create("batch jobs")
    await gateway.state.store.usage.insert_many(
        [
            UsageRecord(request_id="a", time=START + 60, key_id=key.id, cost_usd=3.0,
                        prompt_tokens=3, completion_tokens=4),
            UsageRecord(request_id="b", time=START + 60, key_id="other", cost_usd=1.0),
            UsageRecord(request_id="c", time=START + 60, key_id="other", cost_usd=1.0),
            UsageRecord(request_id="d", time=START + 60, key_id="other", unpriced=True),
        ]
    )  # fmt: skip
    body = await get(gateway, "/admin/api/usage/top", by="key", limit="5", **RANGE)
    assert body == {
        "by": "key",
        "rows": [
            {"group": key.id, "name": "batch jobs", "requests": 1, "tokens": 7, "cost_usd": 3.0,
             "unpriced_requests": 0},
            {"group": "other", "name": None, "requests": 3, "tokens": 0, "cost_usd": 2.0,
             "unpriced_requests": 1},
        ],
    }  # fmt: skip
    by_model = await get(gateway, "/admin/api/usage/top", by="model", **RANGE)
    assert by_model["rows"][0]["name"] == by_model["rows"][0]["group"]


async def test_budgets_list_each_budgeted_key_and_each_owner_team(gateway: Setup) -> None:
    store = gateway.state.store
    budgeted, _ = await store.keys.create("capped", budget_usd=5.0, budget_period="day",
                                          owner_team="research")  # fmt: skip
    await store.keys.create("free", owner_team="research")
    await store.keys.create("nobody's")
    now = time.time()
    await store.usage.insert_many(
        [UsageRecord(request_id="a", time=now - 1, key_id=budgeted.id, cost_usd=1.25)]
    )
    body = await get(gateway, "/admin/api/usage/budgets")
    by_kind = {(budget["kind"], budget["id"]): budget for budget in body["budgets"]}
    assert set(by_kind) == {("key", budgeted.id), ("team", "research")}
    key = by_kind["key", budgeted.id]
    assert (key["name"], key["budget_usd"], key["budget_period"]) == ("capped", 5.0, "day")
    assert key["spent_usd"] == 1.25
    assert key["period_start"] == int(now // DAY) * DAY
    assert [point["spent_usd"] for point in key["points"]] == [1.25]
    assert by_kind["team", "research"]["spent_usd"] == 1.25


async def test_a_team_budget_shows_as_admission_enforces_it(gateway: Setup) -> None:
    created = await gateway.http.post(
        "/admin/api/teams", json={"name": "ops", "budget_usd": 40.0, "budget_period": "month"}
    )
    assert created.status_code == 201, created.text
    key, _ = await gateway.state.store.keys.create("ops key", owner_team="ops")
    await gateway.state.store.usage.insert_many(
        [UsageRecord(request_id="b", time=time.time() - 1, key_id=key.id, cost_usd=0.5)]
    )
    body = await get(gateway, "/admin/api/usage/budgets")
    (team,) = [budget for budget in body["budgets"] if budget["kind"] == "team"]
    assert (team["id"], team["budget_usd"], team["budget_period"]) == ("ops", 40.0, "month")
    assert team["spent_usd"] == 0.5


async def test_the_team_filter_is_offered_every_team_however_it_is_known(tmp_path: Path) -> None:
    # A team exists once anything names it: made here, a config budget, a key's owner_team,
    # or only the usage it recorded (its key has another team now).
    config = "budgets:\n  - {team: Finance, usd: 10}\n"
    async with in_process_gateway(tmp_path, config) as gateway:
        made = await gateway.http.post("/admin/api/teams", json={"name": "made"})
        assert made.status_code == 201, made.text
        store = gateway.state.store
        await store.keys.create("k", owner_team="keyed")
        await store.usage.insert_many([UsageRecord(request_id="r", time=START, team="used")])

        body = await get(gateway, "/admin/api/usage/teams")
        assert body == {"teams": ["Finance", "keyed", "made", "used"]}
        assert (await get(gateway, "/admin/api/usage/teams", q="E"))["teams"] == [
            "Finance",
            "keyed",
            "made",
            "used",
        ]
        assert (await get(gateway, "/admin/api/usage/teams", q="SE"))["teams"] == ["used"]
        assert (await get(gateway, "/admin/api/usage/teams", q="_"))["teams"] == []
        assert (await get(gateway, "/admin/api/usage/teams", limit=2))["teams"] == [
            "Finance",
            "keyed",
        ]


async def test_the_teams_offered_are_bounded(gateway: Setup) -> None:
    store = gateway.state.store
    await store.usage.insert_many(
        [UsageRecord(request_id=f"r{n}", time=START, team=f"t{n:03d}") for n in range(250)]
    )
    assert len((await get(gateway, "/admin/api/usage/teams"))["teams"]) == 50
    most = (await get(gateway, "/admin/api/usage/teams", limit=200))["teams"]
    assert most == [f"t{n:03d}" for n in range(200)]
    refused = await gateway.http.get("/admin/api/usage/teams", params={"limit": "201"})
    assert refused.status_code == 400
    assert refused.json()["error"]["message"].startswith("limit")


async def test_the_request_log_pages_through_a_cursor(
    gateway: Setup, records: list[UsageRecord]
) -> None:
    expected = sorted(
        (r for r in records if r.provider == "p0"), key=lambda r: (r.time, r.id), reverse=True
    )
    seen: list[str] = []
    params: dict[str, Any] = {"provider": "p0", "limit": "50"}
    while True:
        body = await get(gateway, "/admin/api/requests", **params)
        seen += [record["id"] for record in body["requests"]]
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    assert seen == [record.id for record in expected]


async def test_a_full_last_page_offers_no_older_page(
    gateway: Setup, records: list[UsageRecord]
) -> None:
    chosen = [r for r in records if r.key_id == "k1" and r.status == 200]
    assert 1 < len(chosen) <= 200
    page = {"key_id": "k1", "status": "200"}
    whole = await get(gateway, "/admin/api/requests", **page, limit=str(len(chosen)))
    assert len(whole["requests"]) == len(chosen)
    assert whole["next_cursor"] is None  # nothing older: no cursor to an empty page
    short = await get(gateway, "/admin/api/requests", **page, limit=str(len(chosen) - 1))
    assert short["next_cursor"] is not None
    rest = await get(gateway, "/admin/api/requests", **page, cursor=short["next_cursor"])
    assert len(rest["requests"]) == 1 and rest["next_cursor"] is None


async def test_old_request_log_callers_keep_their_answers(
    gateway: Setup, records: list[UsageRecord]
) -> None:
    body = await get(gateway, "/admin/api/requests", limit="5000", key_id="k1", status="200")
    chosen = [r for r in records if r.key_id == "k1" and r.status == 200]
    assert len(body["requests"]) == len(chosen) <= 200
    newest = await get(gateway, "/admin/api/requests", limit="1", model="m2")
    assert newest["requests"][0]["model"] == "m2"


async def test_one_record_by_id_or_404(gateway: Setup, records: list[UsageRecord]) -> None:
    body = await get(gateway, f"/admin/api/requests/{records[3].id}")
    assert (body["id"], body["request_id"]) == (records[3].id, records[3].request_id)
    missing = await gateway.http.get("/admin/api/requests/nope")
    assert missing.status_code == 404
    assert "nope" in missing.json()["error"]["message"]


@pytest.mark.parametrize(
    ("path", "named"),
    [
        ("/admin/api/usage/series?bucket=week", "bucket"),
        ("/admin/api/usage/series?bucket=hour&from=2025-01-01&to=2025-03-01", "from, to"),
        ("/admin/api/usage/series?bucket=day&from=2020-01-01&to=2025-03-01", "from, to"),
        ("/admin/api/usage/totals?from=2025-03-02&to=2025-03-01", "from"),
        ("/admin/api/usage/totals?from=yesterday", "from"),
        ("/admin/api/usage/totals?to=1999-12-31", "to"),
        ("/admin/api/usage/top?by=user", "by"),
        ("/admin/api/usage/top?limit=51", "limit"),
        ("/admin/api/usage/top?limit=0", "limit"),
        ("/admin/api/requests?limit=0", "limit"),
        ("/admin/api/requests?limit=lots", "limit"),
        ("/admin/api/requests?status=99", "status"),
        ("/admin/api/requests?cursor=abc", "cursor"),
        ("/admin/api/requests?cursor=%3D%3D%3D%3D%3D", "cursor"),
        ("/admin/api/requests?cursor=WzEsMl0", "cursor"),  # [1,2]: not (time, id)
        ("/admin/api/requests?key_id=" + "k" * 1001, "key_id"),
    ],
)
async def test_a_wrong_parameter_is_a_400_naming_it(gateway: Setup, path: str, named: str) -> None:
    response = await gateway.http.get(path)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["message"].startswith(named)


PATHS = [
    "/admin/api/usage/series",
    "/admin/api/usage/totals",
    "/admin/api/usage/top",
    "/admin/api/usage/budgets",
    "/admin/api/usage/teams",
    "/admin/api/requests",
    "/admin/api/requests/x",
]
NAMES = ["bucket", "from", "to", "key_id", "team", "model", "provider", "alias", "by", "limit",
         "cursor", "status", "error_type", "since", "q"]  # fmt: skip
VALUES = st.sampled_from(
    ["", "0", "-1", "1e9", "2**63", "9" * 30, "NaN", "hour", "day", "key", "2025-03-01",
     "2025-02-30", "9999-12-31T23:59:59Z", "0001-01-01", "2025-03-01T00:00:00+25:00",
     "\x00", "é€", "W10", "WzEuMCwiYSJd", "WzFlMzA5LCJhIl0", "%", "a" * 1001]
) | st.text(max_size=40)  # fmt: skip


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    path=st.sampled_from(PATHS),
    query=st.lists(st.tuples(st.sampled_from(NAMES) | st.text(max_size=8), VALUES), max_size=6),
)
async def test_no_query_string_is_a_5xx(
    gateway: Setup, path: str, query: list[tuple[str, str]]
) -> None:
    response = await gateway.http.get(path, params=tuple(query))
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert isinstance(response.json()["error"]["message"], str)


async def test_a_virtual_key_is_refused_everywhere(gateway: Setup) -> None:
    _, plaintext = await gateway.state.store.keys.create("not an admin")
    for path in PATHS:
        response = await gateway.http.get(path, headers={"authorization": f"Bearer {plaintext}"})
        assert response.status_code in (401, 403), path


async def test_the_default_range_is_the_last_seven_days(gateway: Setup) -> None:
    now = time.time()
    await gateway.state.store.usage.insert_many(
        [
            UsageRecord(request_id="recent", time=now - 3 * DAY),
            UsageRecord(request_id="old", time=now - 9 * DAY),
        ]
    )
    body = await get(gateway, "/admin/api/usage/totals")
    assert body["requests"] == 1
