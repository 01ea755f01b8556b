"""Virtual keys: ``mw-`` + random characters, stored as an Argon2id hash and a lookup prefix."""

from __future__ import annotations

import builtins
import math
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import msgspec
from sqlalchemy import ColumnElement, RowMapping, and_, func, insert, or_, select, update
from sqlalchemy.sql.dml import ReturningUpdate

from modelway.errors import BadRequest, NotFound
from modelway.store.argon2id import hash_secret
from modelway.store.engine import Database
from modelway.store.names import check_key_name, check_team_name
from modelway.store.records import BudgetPeriod, KeyRecord, new_id
from modelway.store.tables import api_keys, usage_records, users
from modelway.store.teams import period_start_of

KEY_MARKER = "mw-"
#: Characters after ``mw-`` kept in clear to find a key's row; 48 bits, not enough to guess with.
PREFIX_LENGTH = 8
#: Random bytes per key: token_urlsafe(32) gives 43 URL-safe characters.
KEY_BYTES = 32
BUDGET_PERIODS: frozenset[str] = frozenset(get_args(BudgetPeriod))
#: The largest ``rpm`` or ``tpm``: the columns are 32-bit integers (in PostgreSQL).
MAX_RATE = 2**31 - 1
#: The largest ``budget_tokens``: the column is a 64-bit integer.
MAX_TOKEN_BUDGET = 2**63 - 1
#: The latest ``expires_at``, 9999-12-31T23:59:59Z: no later time has a calendar date.
MAX_EXPIRES_AT = 253_402_300_799.0
#: The settings ``update`` may change (a key's id, prefix and hash never change).
EDITABLE = frozenset(
    {
        "name",
        "owner_user",
        "owner_team",
        "models",
        "rpm",
        "tpm",
        "budget_usd",
        "budget_tokens",
        "budget_period",
        "expires_at",
        "metadata",
    }
)
KeyStatus = Literal["active", "revoked", "expired", "all"]
KeySort = Literal["created_at", "name", "spend"]


def key_prefix(plaintext: str) -> str | None:
    """The lookup prefix of a key, or None when the text cannot be a modelway key."""
    if not plaintext.startswith(KEY_MARKER) or len(plaintext) < len(KEY_MARKER) + 32:
        return None
    return plaintext[len(KEY_MARKER) : len(KEY_MARKER) + PREFIX_LENGTH]


@dataclass(frozen=True)
class KeyCandidate:
    """A stored key whose prefix matches: its settings and the hash to verify against."""

    record: KeyRecord
    key_hash: str = field(repr=False)


class KeyRepository:
    """Create, list, read and revoke virtual keys."""

    def __init__(self, engine: Database) -> None:
        self._engine = engine

    async def create(
        self,
        name: str,
        *,
        owner_user: str | None = None,
        owner_team: str | None = None,
        models: Sequence[str] = (),
        rpm: int | None = None,
        tpm: int | None = None,
        budget_usd: float | None = None,
        budget_tokens: int | None = None,
        budget_period: BudgetPeriod = "month",
        expires_at: float | None = None,
        metadata: Mapping[str, Any] | None = None,
        account: str | None = None,
    ) -> tuple[KeyRecord, str]:
        """A new key: its record, and the plaintext, which is never available again.

        ``account``: the id of the account the key is made for (sign-up), which must still
        exist when the key is stored (``NotFound`` otherwise). On PostgreSQL its row is
        locked for share in the insert's transaction, so a deletion of the account either
        comes after the key (and revokes it) or before (and no key is made); SQLite has no
        row locks, and its caller checks the account again once the key is stored.
        """
        _check_settings(name, rpm, tpm, budget_usd, budget_tokens, budget_period)
        if owner_team is not None:
            check_team_name(owner_team, field="owner_team")
        if expires_at is not None and not expires_at <= MAX_EXPIRES_AT:  # NaN too
            raise BadRequest("expires_at: no later than 9999-12-31T23:59:59Z")
        plaintext = KEY_MARKER + secrets.token_urlsafe(KEY_BYTES)
        prefix = key_prefix(plaintext)
        assert prefix is not None
        record = KeyRecord(
            id=new_id(),
            name=name,
            prefix=prefix,
            owner_user=owner_user,
            owner_team=owner_team,
            models=tuple(models),
            rpm=rpm,
            tpm=tpm,
            budget_usd=budget_usd,
            budget_tokens=budget_tokens,
            budget_period=budget_period,
            expires_at=expires_at,
            metadata=dict(metadata or {}),
            created_at=time.time(),
            revoked_at=None,
        )
        key_hash = await hash_secret(plaintext)
        values = {
            **{name: getattr(record, name) for name in record.__struct_fields__},
            "models": list(record.models),
            "key_hash": key_hash,
        }
        async with self._engine.begin() as connection:
            if account is not None:
                alive = select(users.c.id).where(users.c.id == account).with_for_update(read=True)
                if (await connection.execute(alive)).first() is None:
                    raise NotFound("the account is gone")
            await connection.execute(insert(api_keys).values(values))
        return record, plaintext

    async def list(self, *, include_revoked: bool = True) -> list[KeyRecord]:
        """Every key, newest first."""
        query = select(*_RECORD_COLUMNS).order_by(api_keys.c.created_at.desc())
        if not include_revoked:
            query = query.where(api_keys.c.revoked_at.is_(None))
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [_record(row._mapping) for row in rows]

    async def get(self, key_id: str) -> KeyRecord | None:
        """One key by id, revoked or not; None if there is no such key."""
        query = select(*_RECORD_COLUMNS).where(api_keys.c.id == key_id)
        async with self._engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return None if row is None else _record(row._mapping)

    async def any_in_team(self, team: str) -> bool:
        """Whether any key, revoked or not, has ``team`` as its ``owner_team``."""
        query = select(api_keys.c.id).where(api_keys.c.owner_team == team).limit(1)
        async with self._engine.connect() as connection:
            return (await connection.execute(query)).first() is not None

    async def revoke(self, key_id: str) -> bool:
        """Revoke a key for good; False if there was no such key or it was already revoked."""
        async with self._engine.begin() as connection:
            result = await connection.execute(revoking(api_keys.c.id == key_id))
            return bool(result.all())

    async def update(self, key_id: str, changes: Mapping[str, Any]) -> KeyRecord | None:
        """Change a key's settings (checked as ``create`` checks them); None if no such key.

        Callers with the key cached see the change when their cache re-reads it
        (``KeyVerifier``: within 5 s), as with a revocation.
        """
        unknown = set(changes) - EDITABLE
        if unknown:
            raise ValueError(f"keys cannot change {sorted(unknown)}")
        current = await self.get(key_id)
        if current is None:
            return None
        values = dict(changes)
        if "models" in values:
            values["models"] = tuple(values["models"])
        changed = msgspec.structs.replace(current, **values)
        _check_settings(
            changed.name,
            changed.rpm,
            changed.tpm,
            changed.budget_usd,
            changed.budget_tokens,
            changed.budget_period,
        )
        if values.get("owner_team") is not None:  # only when set: an older key keeps its own
            check_team_name(values["owner_team"], field="owner_team")
        if changed.expires_at is not None and not changed.expires_at <= MAX_EXPIRES_AT:
            raise BadRequest("expires_at: no later than 9999-12-31T23:59:59Z")
        if "models" in values:
            values["models"] = list(values["models"])
        if values:
            statement = update(api_keys).where(api_keys.c.id == key_id).values(values)
            async with self._engine.begin() as connection:
                await connection.execute(statement)
        return changed

    async def search(
        self,
        *,
        now: float,
        starts: Mapping[str, float],
        text: str | None = None,
        status: KeyStatus = "all",
        sort: KeySort = "created_at",
        descending: bool = True,
        limit: int | None = None,
        offset: int = 0,
        ids: Sequence[str] | None = None,
    ) -> tuple[builtins.list[tuple[KeyRecord, float]], int]:
        """One page of keys with what each spent this budget period, and how many match.

        ``text`` matches a part of the name, id, prefix or owner (any case); ``ids``, when
        given, keeps only the keys with those ids; ``starts`` holds the epoch seconds the
        current ``day`` and ``month`` began.
        """
        filters = _search_filters(text, status, now)
        if ids is not None:
            filters.append(api_keys.c.id.in_(ids))
        spent = (
            select(func.coalesce(func.sum(usage_records.c.cost_usd), 0.0))
            .where(
                usage_records.c.key_id == api_keys.c.id,
                usage_records.c.time >= period_start_of(api_keys.c.budget_period, starts),
            )
            .scalar_subquery()
            .label("spend_usd")
        )
        column = {"created_at": api_keys.c.created_at, "name": api_keys.c.name}.get(sort, spent)
        ordering = [column.desc(), api_keys.c.id.desc()] if descending else [column, api_keys.c.id]
        query = select(*_RECORD_COLUMNS, spent).where(*filters).order_by(*ordering).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        count = select(func.count()).select_from(api_keys).where(*filters)
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
            total = (await connection.execute(count)).scalar_one()
        page = [(_record(row._mapping), float(row.spend_usd)) for row in rows]
        return page, int(total)

    async def spend_of(
        self, key_id: str, *, now: float, starts: Mapping[str, float]
    ) -> tuple[KeyRecord, float] | None:
        """One key and what it spent this budget period (``search``); None if no such key."""
        page, _ = await self.search(now=now, starts=starts, ids=(key_id,))
        return page[0] if page else None

    async def find_candidates(self, prefix: str) -> builtins.list[KeyCandidate]:
        """The keys (revoked ones too) whose lookup prefix is ``prefix``, with their hashes."""
        query = select(*_RECORD_COLUMNS, api_keys.c.key_hash).where(api_keys.c.prefix == prefix)
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [KeyCandidate(record=_record(row._mapping), key_hash=row.key_hash) for row in rows]


def revoking(which: ColumnElement[bool]) -> ReturningUpdate[tuple[str]]:
    """The statement that revokes, now, the unrevoked keys ``which`` selects; it returns
    their ids. Callers with a key cached see it revoked within 5 s (``KeyVerifier``)."""
    return (
        update(api_keys)
        .where(which, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=time.time())
        .returning(api_keys.c.id)
    )


_RECORD_COLUMNS = [api_keys.c[name] for name in KeyRecord.__struct_fields__]


def _record(values: RowMapping) -> KeyRecord:
    return KeyRecord(
        **{name: values[name] for name in KeyRecord.__struct_fields__ if name != "models"},
        models=tuple(values["models"]),
    )


def _search_filters(text: str | None, status: KeyStatus, now: float) -> list[ColumnElement[bool]]:
    filters: list[ColumnElement[bool]] = []
    if text:
        needle = text.lower()
        columns = ("name", "id", "prefix", "owner_user", "owner_team")
        matches = (
            func.lower(api_keys.c[name]).contains(needle, autoescape=True) for name in columns
        )
        filters.append(or_(*matches))
    live = api_keys.c.revoked_at.is_(None)
    expired = and_(api_keys.c.expires_at.is_not(None), api_keys.c.expires_at <= now)
    if status == "active":
        filters += [live, ~expired]
    elif status == "revoked":
        filters.append(~live)
    elif status == "expired":
        filters += [live, expired]
    return filters


def _check_settings(
    name: str,
    rpm: int | None,
    tpm: int | None,
    budget_usd: float | None,
    budget_tokens: int | None,
    budget_period: str,
) -> None:
    check_key_name(name)
    if budget_period not in BUDGET_PERIODS:
        raise BadRequest(f"budget period is one of day, month, total (not {budget_period!r})")
    limits = [("rpm", rpm, MAX_RATE), ("tpm", tpm, MAX_RATE)]
    limits.append(("budget_tokens", budget_tokens, MAX_TOKEN_BUDGET))
    for label, limit, most in limits:
        if limit is not None and not 0 <= limit <= most:  # 0: no call passes
            raise BadRequest(f"{label} must be from 0 to {most}")
    if budget_usd is not None and not 0 <= budget_usd < math.inf:  # NaN is neither
        raise BadRequest("budget_usd must be a finite number, not negative")
