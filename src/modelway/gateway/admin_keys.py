"""Keys in the admin API: the searchable list, one key, and edits (``PATCH``).

Every key view carries ``spend_usd``: what the key spent in its current budget period
(UTC day, UTC month, or all time), summed from the usage records in the same query
as the page. An edit takes the path a revocation takes: this worker forgets the key
at once, every other worker and replica re-reads it within 5 s (``KeyVerifier``), and
the next request is admitted with the new models, limits and budgets.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated, Any, cast

import msgspec
from msgspec import UNSET, UnsetType
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelway.calls import seed_key_budget
from modelway.errors import BadRequest
from modelway.gateway.admin_api import (
    MAX_MODEL_GLOBS,
    Label,
    ModelGlob,
    Rate,
    Tokens,
    decode_body,
    expires_at_epoch,
    json_response,
    key_view,
    no_such_key,
)
from modelway.gateway.admin_guard import admin_only
from modelway.gateway.http import check_nesting, read_body
from modelway.gateway.state import GatewayState
from modelway.limits.budgets import period_starts
from modelway.store.keys import KeySort, KeyStatus
from modelway.store.records import BudgetPeriod

STATUSES = ("active", "revoked", "expired", "all")
SORTS = ("created_at", "name", "spend")
MAX_PAGE = 200
MAX_QUERY = 200
#: Keys asked for by id at once (``?id=``): a page of the request log names at most 200.
MAX_IDS = 200
#: A key id is 32 hex digits; a longer ``id`` names no key.
MAX_ID_CHARS = 64
#: The largest offset a page may start at: the largest integer SQLite and PostgreSQL hold.
MAX_OFFSET = 2**63 - 1
#: Fields whose change moves a key's budget: its spend is re-seeded on this worker.
_BUDGET_FIELDS = frozenset({"budget_usd", "budget_tokens", "budget_period"})


class KeyChanges(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``PATCH /admin/api/keys/{id}``: only the fields sent change; ``null`` clears one."""

    name: Label | UnsetType = UNSET
    owner_user: Label | UnsetType | None = UNSET
    owner_team: Label | UnsetType | None = UNSET
    #: ``null`` or ``[]``: any model.
    models: (
        Annotated[list[ModelGlob], msgspec.Meta(max_length=MAX_MODEL_GLOBS)] | UnsetType | None
    ) = UNSET
    rpm: Rate | UnsetType | None = UNSET
    tpm: Rate | UnsetType | None = UNSET
    budget_usd: Annotated[float, msgspec.Meta(ge=0)] | UnsetType | None = UNSET
    budget_tokens: Tokens | UnsetType | None = UNSET
    budget_period: BudgetPeriod | UnsetType = UNSET
    expires_at: float | datetime | UnsetType | None = UNSET
    #: ``null``: no metadata.
    metadata: dict[str, Any] | UnsetType | None = UNSET

    def changes(self, now: float) -> dict[str, Any]:
        """The fields sent, as the store keeps them."""
        sent = {
            name: getattr(self, name)
            for name in self.__struct_fields__
            if getattr(self, name) is not UNSET
        }
        if "name" in sent:
            sent["name"] = sent["name"].strip()
        if "models" in sent:
            sent["models"] = [glob for glob in sent["models"] or () if glob.strip()]
        if "metadata" in sent:
            sent["metadata"] = sent["metadata"] or {}
            check_nesting("metadata", sent["metadata"])
        if sent.get("expires_at") is not None:
            sent["expires_at"] = expires_at_epoch(sent["expires_at"], now)
        return sent


def _choice(request: Request, name: str, choices: tuple[str, ...], default: str) -> str:
    value = request.query_params.get(name) or default
    if value not in choices:
        raise BadRequest(f"{name}: one of {', '.join(choices)} (not {value[:40]!r})")
    return value


def _ids(request: Request) -> list[str] | None:
    """``?id=a&id=b``: the keys asked for by id (empty values ignored), or None for any key."""
    ids = [value for value in request.query_params.getlist("id") if value]
    if len(ids) > MAX_IDS:
        raise BadRequest(f"id: at most {MAX_IDS} ids at once (not {len(ids)})")
    if any(len(value) > MAX_ID_CHARS for value in ids):
        raise BadRequest(f"id: each at most {MAX_ID_CHARS} characters")
    return ids or None


def _whole(request: Request, name: str, low: int, high: int | None) -> int | None:
    text = request.query_params.get(name)
    if text is None or text == "":
        return None
    try:
        value = int(text)
    except ValueError:
        raise BadRequest(f"{name}: a whole number (not {text[:40]!r})") from None
    if value < low or (high is not None and value > high):
        most = f" to {high}" if high is not None else " or more"
        raise BadRequest(f"{name}: {low}{most}")
    return value


@admin_only
async def get_keys(request: Request) -> Response:
    """Keys, searched, filtered, sorted and paged: ``?q=&status=&sort=&order=&limit=&offset=``,
    and ``?id=`` (repeated, at most ``MAX_IDS``) for the keys with those ids.

    Without ``limit``, every match (the CLI's ``modelway keys list --url``).
    """
    state: GatewayState = request.app.state.gateway
    text = request.query_params.get("q", "").strip()
    if len(text) > MAX_QUERY:
        raise BadRequest(f"q: at most {MAX_QUERY} characters")
    status = _choice(request, "status", STATUSES, "all")
    sort = _choice(request, "sort", SORTS, "created_at")
    order = _choice(request, "order", ("asc", "desc"), "desc")
    limit = _whole(request, "limit", 1, MAX_PAGE)
    offset = _whole(request, "offset", 0, MAX_OFFSET) or 0
    ids = _ids(request)
    now = time.time()
    page, total = await state.store.keys.search(
        now=now,
        starts=period_starts(now),
        text=text or None,
        status=cast(KeyStatus, status),
        sort=cast(KeySort, sort),
        descending=order == "desc",
        limit=limit,
        offset=offset,
        ids=ids,
    )
    keys = [{**key_view(record, now), "spend_usd": spend} for record, spend in page]
    return json_response({"keys": keys, "total": total})


async def _one(state: GatewayState, key_id: str) -> dict[str, Any]:
    now = time.time()
    found = await state.store.keys.spend_of(key_id, now=now, starts=period_starts(now))
    if found is None:
        raise no_such_key(key_id)
    record, spend = found
    return {**key_view(record, now), "spend_usd": spend}


@admin_only
async def get_one_key(request: Request) -> Response:
    """One key by id, with its spend this budget period."""
    state: GatewayState = request.app.state.gateway
    return json_response(await _one(state, request.path_params["key_id"]))


@admin_only
async def patch_key(request: Request) -> Response:
    """Change a key's settings; every worker and replica applies them within 5 s."""
    state: GatewayState = request.app.state.gateway
    key_id = request.path_params["key_id"]
    body = decode_body(await read_body(request, state.body_limits), KeyChanges)
    changes = body.changes(time.time())
    record = await state.store.keys.update(key_id, changes)
    if record is None:
        raise no_such_key(key_id)
    await state.auth.key_changes.changed(key_id)  # every worker: at once with Redis
    if _BUDGET_FIELDS & changes.keys():
        await seed_key_budget(state.calls.accounts, record)
    return json_response(await _one(state, key_id))


ROUTES = [
    Route("/admin/api/keys", get_keys, methods=["GET"]),
    Route("/admin/api/keys/{key_id}", get_one_key, methods=["GET"]),
    Route("/admin/api/keys/{key_id}", patch_key, methods=["PATCH"]),
]
