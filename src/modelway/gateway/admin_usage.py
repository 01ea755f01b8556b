"""The dashboard's usage API under ``/admin/api/``: series, totals, top-N, budgets, request log,
and the team names its filter offers.

Everything but the request log and the team names is read from the hourly roll-ups
(``store.dashboard``). Every query parameter is checked (a wrong one is a 400 naming it,
never a 500) and every answer is bounded: hour buckets span at most 31 days, day buckets
~3 years, pages 200 records, team names 200. The guard is the admin API's own.
"""

from __future__ import annotations

import base64
import binascii
import math
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any, cast

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelway.config import TeamBudget
from modelway.errors import BadRequest, NotFound
from modelway.gateway.admin_api import STATUSES, json_response
from modelway.gateway.admin_guard import admin_only
from modelway.gateway.state import GatewayState
from modelway.store import Store
from modelway.store.dashboard import Bucket, BudgetOwner, Dimension, UsageFilters

DAY_SECONDS = 86_400
#: The range a question covers when it names none.
DEFAULT_RANGE = 7 * DAY_SECONDS
#: The widest range per bucket size (a series has at most ~1,100 points).
MAX_RANGE = {"hour": 31 * DAY_SECONDS, "day": 1_100 * DAY_SECONDS}
MAX_PAGE = 200
MAX_TOP = 50
#: Team names a filter is offered at once (``/usage/teams``): typing narrows them.
MAX_TEAM_NAMES = 200
#: A filter value longer than this matches nothing a record can hold; it is refused.
MAX_FILTER_CHARS = 1_000
#: Epoch bounds of a date filter (years 2000 to 9999).
EARLIEST, LATEST = 946_684_800.0, 253_402_300_799.0
#: ``?by=`` of the top-N and the roll-up dimension it reads.
TOP_BY: dict[str, Dimension] = {
    "key": "key_id",
    "model": "model",
    "team": "team",
    "provider": "provider",
    "alias": "alias",
}


def _store(request: Request) -> Store:
    state: GatewayState = request.app.state.gateway
    return state.store


def _text(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    if not value:
        return None
    if len(value) > MAX_FILTER_CHARS:
        raise BadRequest(f"{name}: at most {MAX_FILTER_CHARS} characters")
    return value


def _whole(request: Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query_params.get(name)
    if not text:
        return default
    try:
        value = int(text) if len(text) <= 20 else None
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise BadRequest(f"{name}: a whole number from {low} to {high} (not {text[:40]!r})")
    return value


def moment(name: str, text: str) -> float:
    """``YYYY-MM-DD`` (UTC midnight) or an RFC 3339 time (UTC without an offset) as epoch."""
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            at = datetime(day.year, day.month, day.day, tzinfo=UTC)
        else:
            at = datetime.fromisoformat(value)
            at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
        epoch = at.timestamp()
    except (ValueError, OverflowError):
        raise BadRequest(f"{name}: a date like 2025-01-31 or an RFC 3339 time") from None
    if not EARLIEST <= epoch <= LATEST:
        raise BadRequest(f"{name}: a time between the years 2000 and 9999")
    return epoch


def time_range(request: Request, now: float, widest: float | None) -> tuple[float, float]:
    """``?from=&to=`` as ``[start, end)``: the last 7 days unless given, at most ``widest``."""
    start_text, end_text = request.query_params.get("from"), request.query_params.get("to")
    end = moment("to", end_text) if end_text else now
    start = moment("from", start_text) if start_text else end - DEFAULT_RANGE
    if start >= end:
        raise BadRequest("from: must be earlier than to")
    if widest is not None and end - start > widest:
        days = widest / DAY_SECONDS
        raise BadRequest(f"from, to: at most {days:.0f} days apart for this bucket")
    return start, end


def usage_filters(request: Request, now: float, widest: float | None) -> UsageFilters:
    """The common filters of every usage question."""
    start, end = time_range(request, now, widest)
    return UsageFilters(
        start=start,
        end=end,
        key_id=_text(request, "key_id"),
        team=_text(request, "team"),
        model=_text(request, "model"),
        provider=_text(request, "provider"),
        alias=_text(request, "alias"),
    )


def encode_cursor(record_time: float, record_id: str) -> str:
    """The opaque cursor after a record: its (time, id)."""
    return base64.urlsafe_b64encode(msgspec.json.encode([record_time, record_id])).decode()


def decode_cursor(text: str) -> tuple[float, str]:
    """A cursor back as (time, id); anything else is a 400."""
    try:
        padded = text + "=" * (-len(text) % 4)
        value = msgspec.json.decode(
            base64.urlsafe_b64decode(padded.encode("ascii")), type=tuple[float, str]
        )
    except (ValueError, binascii.Error, UnicodeEncodeError, msgspec.DecodeError):
        raise BadRequest("cursor: not a cursor this API gave") from None
    if not math.isfinite(value[0]) or len(value[1]) > 64:
        raise BadRequest("cursor: not a cursor this API gave")
    return value


@admin_only
async def get_series(request: Request) -> Response:
    """Usage per hour or UTC day: ``?bucket=hour|day`` and the common filters."""
    bucket = request.query_params.get("bucket", "hour")
    if bucket not in MAX_RANGE:
        raise BadRequest(f"bucket: hour or day (not {bucket[:40]!r})")
    filters = usage_filters(request, time.time(), MAX_RANGE[bucket])
    points = await _store(request).dashboard.series(filters, cast(Bucket, bucket))
    return json_response(
        {"bucket": bucket, "from": filters.start, "to": filters.end, "points": points}
    )


@admin_only
async def get_totals(request: Request) -> Response:
    """Usage over the range, summed: the common filters."""
    filters = usage_filters(request, time.time(), MAX_RANGE["day"])
    return json_response(await _store(request).dashboard.totals(filters))


@admin_only
async def get_top(request: Request) -> Response:
    """The groups that cost most: ``?by=key|model|team|provider|alias&limit=1..50``."""
    by = request.query_params.get("by", "key")
    if by not in TOP_BY:
        raise BadRequest(f"by: one of {', '.join(TOP_BY)} (not {by[:40]!r})")
    limit = _whole(request, "limit", 10, 1, MAX_TOP)
    filters = usage_filters(request, time.time(), MAX_RANGE["day"])
    rows = await _store(request).dashboard.top(filters, TOP_BY[by], limit)
    return json_response({"by": by, "rows": rows})


@admin_only
async def get_budgets(request: Request) -> Response:
    """Each key's USD budget, and each owner team's spend, over the current period."""
    store = _store(request)
    state: GatewayState = request.app.state.gateway
    owners = await budget_owners(store, state.calls.accounts.team_budgets.all())
    burns = await store.dashboard.burn_down(owners, time.time())
    return json_response({"budgets": burns})


async def budget_owners(store: Store, team_budgets: Sequence[TeamBudget] = ()) -> list[BudgetOwner]:
    """Every live key with a USD budget, and every team that has a budget or owns keys.

    A team's budget is the one admission enforces (``team_budgets``: the store's teams and
    the config's ``budgets:``); its spend is that of all its keys. A team without one is
    shown with ``budget_usd`` None over the month.
    """
    keys = await store.keys.list(include_revoked=True)
    owners = [
        BudgetOwner(
            kind="key",
            id=key.id,
            name=key.name,
            budget_usd=key.budget_usd,
            budget_period=key.budget_period,
            since=key.created_at,
            key_ids=(key.id,),
        )
        for key in keys
        if key.budget_usd is not None and not key.revoked
    ]
    teams: dict[str, list[str]] = {budget.team: [] for budget in team_budgets}
    for key in keys:
        if key.owner_team:
            teams.setdefault(key.owner_team, []).append(key.id)
    budgets = {budget.team: budget for budget in team_budgets}
    for team, key_ids in sorted(teams.items()):
        budget = budgets.get(team)
        owners.append(
            BudgetOwner(
                kind="team",
                id=team,
                name=team,
                budget_usd=None if budget is None else budget.usd,
                budget_period="month" if budget is None else budget.period,
                since=0.0,
                key_ids=tuple(key_ids),
            )
        )
    return owners


@admin_only
async def get_team_names(request: Request) -> Response:
    """Every team a filter can name, sorted, at most ``limit``: ``?q=&limit=1..200``.

    The teams made in the admin API, those the config's ``budgets:`` name, and those only
    keys' ``owner_team`` or the usage records name; ``q`` matches a part of a name.
    """
    text = (_text(request, "q") or "").strip()
    limit = _whole(request, "limit", 50, 1, MAX_TEAM_NAMES)
    state: GatewayState = request.app.state.gateway
    names = set(await state.store.teams.names(text=text or None, limit=limit))
    configured = (budget.team for budget in state.calls.accounts.team_budgets.all())
    names.update(name for name in configured if text.lower() in name.lower())
    return json_response({"teams": sorted(names)[:limit]})


@admin_only
async def get_requests(request: Request) -> Response:
    """The request log, newest first: filters, ``?limit=1..200&cursor=``.

    A larger ``limit`` (old callers could ask up to 1,000) gets a page of 200.
    """
    limit = min(_whole(request, "limit", 100, 1, 1_000_000), MAX_PAGE)
    status = _whole(request, "status", 0, STATUSES.start, STATUSES.stop - 1) or None
    cursor = _text(request, "cursor")
    start_text, end_text = request.query_params.get("from"), request.query_params.get("to")
    start = moment("from", start_text) if start_text else None
    end = moment("to", end_text) if end_text else None
    # One more than the page: a next cursor only when an older record exists, so "Older"
    # never leads to an empty page (a full last page used to offer one).
    records = await _store(request).usage.page(
        limit + 1,
        decode_cursor(cursor) if cursor else None,
        start=start,
        end=end,
        key_id=_text(request, "key_id"),
        model=_text(request, "model"),
        provider=_text(request, "provider"),
        status=status,
        error_type=_text(request, "error_type"),
    )
    more = len(records) > limit
    records = records[:limit]
    last = records[-1] if more else None
    body: dict[str, Any] = {
        "requests": records,
        "next_cursor": None if last is None else encode_cursor(last.time, last.id),
    }
    return json_response(body)


@admin_only
async def get_one_request(request: Request) -> Response:
    """One usage record by its id."""
    record_id = request.path_params["record_id"]
    record = await _store(request).usage.get(record_id[:MAX_FILTER_CHARS])
    if record is None:
        raise NotFound(f"no usage record with id {record_id[:64]!r}")
    return json_response(record)


ROUTES = [
    Route("/admin/api/usage/series", get_series, methods=["GET"]),
    Route("/admin/api/usage/totals", get_totals, methods=["GET"]),
    Route("/admin/api/usage/top", get_top, methods=["GET"]),
    Route("/admin/api/usage/budgets", get_budgets, methods=["GET"]),
    Route("/admin/api/usage/teams", get_team_names, methods=["GET"]),
    Route("/admin/api/requests", get_requests, methods=["GET"]),
    Route("/admin/api/requests/{record_id}", get_one_request, methods=["GET"]),
]
