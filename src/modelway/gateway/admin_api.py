"""The admin API under ``/admin/api/``: virtual keys and usage, for the master key or an
admin session (``admin_guard``; keys' listing and edits are in ``admin_keys``).

The dashboard's usage series, budgets and request log are in ``admin_usage``.

Bodies are checked by msgspec structs (unknown fields and wrong types are a 400 that
names the field); errors come in OpenAI's shape. The store-side operations are plain
functions of a ``Store`` so ``modelway keys`` / ``modelway usage`` give the same answers
without a running gateway. A new key's plaintext is in the create answer and nowhere else.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, date, datetime
from typing import Annotated, Any, TypeVar, get_args

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelway.errors import BadRequest, NotFound
from modelway.gateway.admin_guard import NO_MASTER_KEY as NO_MASTER_KEY
from modelway.gateway.admin_guard import NOT_MASTER as NOT_MASTER
from modelway.gateway.admin_guard import admin_only
from modelway.gateway.http import check_nesting, read_body
from modelway.gateway.state import GatewayState
from modelway.store import KeyRecord, Store
from modelway.store.keys import (
    KEY_MARKER,
    MAX_EXPIRES_AT,
    MAX_RATE,
    MAX_TOKEN_BUDGET,
)
from modelway.store.names import MAX_NAME
from modelway.store.records import BudgetPeriod
from modelway.store.usage import SummaryBy

SUMMARY_GROUPS: tuple[SummaryBy, ...] = get_args(SummaryBy)
DAY_SECONDS = 86_400.0

#: An ``rpm`` or ``tpm``; a token budget (bounded by the store's columns). 0 is a limit
#: no call passes (docs/limits.md), as a budget of $0 is.
Rate = Annotated[int, msgspec.Meta(ge=0, le=MAX_RATE)]
Tokens = Annotated[int, msgspec.Meta(ge=0, le=MAX_TOKEN_BUDGET)]
#: The HTTP statuses a usage record can hold (``?status=`` outside them is a 400).
STATUSES = range(100, 600)
#: A key's name, user or team: each reaches every usage record and report of the key.
Label = Annotated[str, msgspec.Meta(max_length=MAX_NAME)]
#: A model glob a key may use, and how many a key may have.
ModelGlob = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
MAX_MODEL_GLOBS = 256
Body = TypeVar("Body", bound=msgspec.Struct)


class NewKey(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``POST /admin/api/keys``: a key's settings; only ``name`` is required."""

    name: Label
    owner_user: Label | None = None
    owner_team: Label | None = None
    models: Annotated[list[ModelGlob], msgspec.Meta(max_length=MAX_MODEL_GLOBS)] = msgspec.field(
        default_factory=list
    )
    rpm: Rate | None = None
    tpm: Rate | None = None
    budget_usd: Annotated[float, msgspec.Meta(ge=0)] | None = None
    budget_tokens: Tokens | None = None
    budget_period: BudgetPeriod = "month"
    #: Epoch seconds or an RFC 3339 time (UTC when it has no offset).
    expires_at: float | datetime | None = None
    expires_in_days: Annotated[float, msgspec.Meta(gt=0)] | None = None
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)


def decode_body(raw: bytes, schema: type[Body]) -> Body:
    """The body as ``schema``, or ``BadRequest`` naming the field that is wrong."""
    if not raw.strip():
        raise BadRequest("the request body is empty; expected a JSON object")
    try:
        return msgspec.json.decode(raw, type=schema)
    except msgspec.ValidationError as exc:
        raise BadRequest(_field_message(str(exc))) from None
    except msgspec.DecodeError as exc:
        raise BadRequest(f"the request body is not valid JSON ({exc})") from None
    except RecursionError:  # a free-form field (``metadata``) nested deeper than msgspec goes
        raise BadRequest("the request body nests too deep") from None


_AT_FIELD = re.compile(r"^(?P<problem>.*) - at `\$\.?(?P<field>[^`]*)`$")


def _field_message(text: str) -> str:
    """msgspec's ``Expected int, got str - at `$.rpm``` as ``rpm: expected int, got str``."""
    match = _AT_FIELD.match(text)
    if match is None:  # about the whole body: a missing or unknown field, or not an object
        return f"invalid request body: {text[:1].lower()}{text[1:]}"
    problem, field = match["problem"], match["field"] or "body"
    return f"{field}: {problem[:1].lower()}{problem[1:]}"


def key_view(record: KeyRecord, now: float | None = None) -> dict[str, Any]:
    """A key as the API shows it: its settings and status; never its hash or plaintext."""
    now = time.time() if now is None else now
    status = "revoked" if record.revoked else "expired" if record.expired(now) else "active"
    view: dict[str, Any] = msgspec.to_builtins(record)
    view["status"] = status
    return view


def expiry_of(new: NewKey, now: float) -> float | None:
    """Epoch seconds at which the new key expires (None: never), at the latest in year 9999."""
    if new.expires_at is not None and new.expires_in_days is not None:
        raise BadRequest("give expires_at or expires_in_days, not both")
    if new.expires_in_days is not None:
        expiry = now + new.expires_in_days * DAY_SECONDS
        if not expiry <= MAX_EXPIRES_AT:  # NaN too
            most = (MAX_EXPIRES_AT - now) // DAY_SECONDS
            raise BadRequest(f"expires_in_days: at most {most:.0f} (the end of year 9999)")
        return expiry
    return None if new.expires_at is None else expires_at_epoch(new.expires_at, now)


def expires_at_epoch(at: float | datetime, now: float) -> float:
    """An ``expires_at`` (epoch seconds, or RFC 3339 read as UTC without an offset) checked:
    after ``now``, at the latest in year 9999."""
    if isinstance(at, datetime):
        at = (at if at.tzinfo is not None else at.replace(tzinfo=UTC)).timestamp()
    if at <= now:
        raise BadRequest("expires_at: that time has already passed")
    if not at <= MAX_EXPIRES_AT:
        raise BadRequest("expires_at: no later than 9999-12-31T23:59:59Z")
    return at


async def create_key(store: Store, new: NewKey, account: str | None = None) -> dict[str, Any]:
    """Store a new key; its view plus ``key``, the plaintext, shown this once (``account``:
    the account it is made for, which must still exist: ``KeyRepository.create``)."""
    check_nesting("metadata", new.metadata)
    now = time.time()
    record, plaintext = await store.keys.create(
        new.name.strip(),
        owner_user=new.owner_user,
        owner_team=new.owner_team,
        models=[glob for glob in new.models if glob.strip()],
        rpm=new.rpm,
        tpm=new.tpm,
        budget_usd=new.budget_usd,
        budget_tokens=new.budget_tokens,
        budget_period=new.budget_period,
        expires_at=expiry_of(new, now),
        metadata=new.metadata,
        account=account,
    )
    return {**key_view(record, now), "key": plaintext}


async def list_keys(store: Store) -> list[dict[str, Any]]:
    """Every key, newest first, revoked ones included (with their status)."""
    now = time.time()
    return [key_view(record, now) for record in await store.keys.list(include_revoked=True)]


async def get_key(store: Store, key_id: str) -> KeyRecord:
    """One key; ``NotFound`` if there is none with that id."""
    record = await store.keys.get(key_id)
    if record is None:
        raise no_such_key(key_id)
    return record


def no_such_key(key_id: str) -> NotFound:
    """The answer for an id no key has. A key pasted where its id belongs is not said
    back: the error may reach a log or a screen someone else reads."""
    if key_id.startswith(KEY_MARKER):
        return NotFound("no key has that id; that looks like a key itself: give its id (keys list)")
    return NotFound(f"no key with id {key_id[:64]!r}")


async def revoke_key(store: Store, key_id: str) -> dict[str, Any]:
    """Revoke a key (revoking twice is harmless); its view afterwards."""
    await get_key(store, key_id)
    await store.keys.revoke(key_id)
    return key_view(await get_key(store, key_id))


def since_epoch(text: str | None) -> float | None:
    """``YYYY-MM-DD`` (UTC midnight) or an RFC 3339 time as epoch seconds."""
    if text is None or not text.strip():
        return None
    try:
        if len(text.strip()) == 10:
            day = date.fromisoformat(text.strip())
            return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadRequest(f"since: a date like 2025-01-31 (not {text[:40]!r})") from None
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).timestamp()


async def usage_summary(
    store: Store, by: str = "key", since: str | None = None, key_id: str | None = None
) -> dict[str, Any]:
    """Requests, errors, tokens, cost and latency per key, model, provider, alias, team
    or UTC day."""
    if by not in SUMMARY_GROUPS:
        raise BadRequest(f"by: one of {', '.join(SUMMARY_GROUPS)} (not {by!r})")
    summary = await store.usage.summary(by=by, since=since_epoch(since), key_id=key_id or None)
    rows: list[dict[str, Any]] = msgspec.to_builtins(summary)
    if by == "key":
        names = {record.id: record.name for record in await store.keys.list()}
        for row in rows:
            row["key_name"] = names.get(row["group"])
    return {"by": by, "since": since or None, "key_id": key_id or None, "rows": rows}


# --- HTTP --------------------------------------------------------------------------------


def json_response(body: object, status: int = 200) -> Response:
    """``body`` as JSON, never cached (some answers hold a key shown once)."""
    return Response(
        msgspec.json.encode(body),
        status_code=status,
        media_type="application/json",
        headers={"cache-control": "no-store"},
    )


def _store(request: Request) -> Store:
    state: GatewayState = request.app.state.gateway
    return state.store


def _query_int(request: Request, name: str, default: int | None) -> int | None:
    text = request.query_params.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:  # not a number, or more digits than Python converts
        raise BadRequest(f"{name}: a whole number (not {text[:40]!r})") from None


def _query_text(request: Request, name: str) -> str | None:
    return request.query_params.get(name) or None


@admin_only
async def post_key(request: Request) -> Response:
    """Create a key; the answer holds its plaintext, which is never shown again."""
    state: GatewayState = request.app.state.gateway
    new = decode_body(await read_body(request, state.body_limits), NewKey)
    return json_response(await create_key(state.store, new), status=201)


@admin_only
async def delete_key(request: Request) -> Response:
    """Revoke a key; it stops working on this worker at once, on the others at once with
    Redis, else within 5 s (``key_changes``)."""
    state: GatewayState = request.app.state.gateway
    key_id = request.path_params["key_id"]
    view = await revoke_key(state.store, key_id)
    await state.auth.key_changes.changed(key_id)
    return json_response(view)


@admin_only
async def get_usage(request: Request) -> Response:
    """The usage summary: ``?by=key|model|day&since=YYYY-MM-DD&key_id=``."""
    summary = await usage_summary(
        _store(request),
        by=request.query_params.get("by", "key"),
        since=_query_text(request, "since"),
        key_id=_query_text(request, "key_id"),
    )
    return json_response(summary)


ROUTES = [
    Route("/admin/api/keys", post_key, methods=["POST"]),
    Route("/admin/api/keys/{key_id}", delete_key, methods=["DELETE"]),
    Route("/admin/api/usage", get_usage, methods=["GET"]),
]
