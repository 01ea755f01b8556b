"""The usage audit: one row per request, written in batches, read as summaries and spend."""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any, Literal

from msgspec.structs import astuple
from sqlalchemy import Integer, Select, case, cast, func, or_, select, tuple_
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.elements import ColumnElement

from modelway.errors import BadRequest
from modelway.store.engine import Database, nul_replaced
from modelway.store.records import UsageRecord, UsageRow
from modelway.store.rollups import UPSERT_SQL, rollup_rows
from modelway.store.tables import usage_records

SummaryBy = Literal["key", "model", "provider", "alias", "team", "day"]
_GROUP_COLUMNS = {
    "key": usage_records.c.key_id,
    "model": usage_records.c.model,
    "provider": usage_records.c.provider,
    "alias": usage_records.c.alias,
    "team": usage_records.c.team,
    "day": usage_records.c.day,
}
_RECORD_COLUMNS = [usage_records.c[name] for name in UsageRecord.__struct_fields__]
#: The insert's columns: a record's fields in their order, then the derived ``day``.
_INSERT_COLUMNS = (*UsageRecord.__struct_fields__, "day")
assert set(_INSERT_COLUMNS) == set(usage_records.c.keys()), "usage_records and UsageRecord differ"


@functools.cache
def _insert_sql(dialect: str, rows: int = 1) -> str:
    """The batch insert in the driver's own parameter style; stored ids are skipped.

    On PostgreSQL one statement inserts the whole batch from arrays (``unnest``) and
    returns the ids it stored, which are the records the roll-up counts. On SQLite one
    statement inserts ``rows`` records (``_ROWS_PER_INSERT`` at most).
    """
    names = ", ".join(f'"{name}"' for name in _INSERT_COLUMNS)  # "user" is reserved
    if dialect == "postgresql":
        # Imported here: a gateway on SQLite never loads SQLAlchemy's PostgreSQL dialect.
        from sqlalchemy.dialects.postgresql.base import PGDialect

        postgres: Dialect = PGDialect()  # type: ignore[no-untyped-call]
        arrays = ", ".join(
            f"${n}::{usage_records.c[name].type.compile(dialect=postgres)}[]"
            for n, name in enumerate(_INSERT_COLUMNS, start=1)
        )
        return (
            f"INSERT INTO usage_records ({names}) SELECT * FROM unnest({arrays}) "
            "ON CONFLICT (id) DO NOTHING RETURNING id"
        )
    marks = ", ".join("?" for _ in _INSERT_COLUMNS)
    values = ", ".join([f"({marks})"] * rows)
    return f"INSERT INTO usage_records ({names}) VALUES {values} ON CONFLICT (id) DO NOTHING"


#: Ids looked up per statement when SQLite checks which records a batch already stored.
_IDS_PER_LOOKUP = 500
#: Records one SQLite statement inserts. The driver holds the GIL while it binds a
#: statement's parameters and lets go while SQLite runs it, so the event loop waits on
#: the store's thread once per statement: one per record (``executemany``) made a
#: 500-record batch hand the GIL back and forth 500 times, and added ~2 ms to the p99 of
#: calls at one connection; 100 per statement ~0.7 ms, 25 ~0.6 ms (docs/store.md).
_ROWS_PER_INSERT = 32


def utc_day(epoch: float) -> str:
    """The UTC date of an epoch time, as the ``day`` column keeps it."""
    return time.strftime("%Y-%m-%d", time.gmtime(epoch))


def _rows(records: Sequence[UsageRecord]) -> list[tuple[Any, ...]]:
    days: dict[int, str] = {}  # a batch spans a day or two: format each once
    rows = []
    for record in records:
        day_number = int(record.time // 86400)
        day = days.get(day_number)
        if day is None:
            day = days[day_number] = utc_day(record.time)
        rows.append((*astuple(record), day))
    return rows


class UsageRepository:
    """Write usage records (idempotently) and answer questions about them."""

    def __init__(self, engine: Database) -> None:
        self._engine = engine

    async def insert_many(self, records: Sequence[UsageRecord]) -> None:
        """Store records and add them to the hourly roll-ups, in one transaction.

        A record whose ``id`` is already stored is skipped, and not rolled up again, so
        retries and replays are safe. The driver's own connection does the work:
        SQLAlchemy's per-row parameter handling cost ~22 µs of the event loop's time per
        record, the driver ~0.5 µs (measured with 40,000 records on SQLite).
        """
        if not records:
            return
        async with self._engine.connect() as connection:
            dialect = connection.dialect.name
            if dialect not in ("postgresql", "sqlite"):
                raise ValueError(f"the store runs on PostgreSQL or SQLite, not {dialect!r}")
            driver: Any = (await connection.get_raw_connection()).driver_connection
            try:
                if dialect == "postgresql":
                    await _insert_postgres(driver, records)
                else:
                    await _insert_sqlite(driver, records)
            except BaseException:
                # The driver's connection, used behind SQLAlchemy's back, may be left
                # mid-operation (the writer's timeout cancelled it, the server went away):
                # handed out again, its next user met "another operation is in progress"
                # (asyncpg), as a chaos run's PostgreSQL restart showed. It goes.
                with contextlib.suppress(Exception):
                    await connection.invalidate()
                raise

    async def summary(
        self, by: SummaryBy = "key", since: float | None = None, key_id: str | None = None
    ) -> list[UsageRow]:
        """Requests, errors, tokens, cost and latency percentiles per key, model (as the
        provider names it), provider, alias (as the caller named it), team or UTC day."""
        if by not in _GROUP_COLUMNS:
            raise BadRequest(f"usage is summarised by {', '.join(_GROUP_COLUMNS)} (not {by!r})")
        group = _GROUP_COLUMNS[by]
        table = usage_records
        filters = _filters(since=since, key_id=key_id)
        async with self._engine.connect() as connection:
            on_postgres = connection.dialect.name == "postgresql"
            columns: list[Any] = [
                group.label("group"),
                func.count().label("requests"),
                func.coalesce(func.sum(case((table.c.status >= 400, 1), else_=0)), 0)
                .cast(Integer)
                .label("errors"),
                func.coalesce(func.sum(table.c.prompt_tokens), 0).label("prompt_tokens"),
                func.coalesce(func.sum(table.c.completion_tokens), 0).label("completion_tokens"),
                func.coalesce(func.sum(table.c.cost_usd), 0.0).label("cost_usd"),
                func.coalesce(func.sum(case((table.c.unpriced, 1), else_=0)), 0)
                .cast(Integer)
                .label("unpriced"),
            ]
            if on_postgres:
                columns += [
                    func.percentile_cont(0.5).within_group(table.c.latency_ms).label("p50"),
                    func.percentile_cont(0.95).within_group(table.c.latency_ms).label("p95"),
                ]
            query = select(*columns).where(*filters).group_by(group)
            rows = (await connection.execute(query)).all()
            if on_postgres:
                percentiles = {row.group: (row.p50, row.p95) for row in rows}
            else:
                percentiles = await _sqlite_percentiles(connection, group, filters)
        summary = [
            UsageRow(
                group=row.group,
                requests=int(row.requests),
                errors=int(row.errors),
                prompt_tokens=int(row.prompt_tokens),
                completion_tokens=int(row.completion_tokens),
                cost_usd=float(row.cost_usd),
                unpriced_requests=int(row.unpriced),
                latency_p50_ms=_float(percentiles.get(row.group, (None, None))[0]),
                latency_p95_ms=_float(percentiles.get(row.group, (None, None))[1]),
            )
            for row in rows
        ]
        if by == "day":
            return sorted(summary, key=lambda row: row.group or "")
        return sorted(summary, key=lambda row: (-row.requests, row.group or ""))

    async def recent(
        self,
        limit: int = 100,
        key_id: str | None = None,
        model: str | None = None,
        status: int | None = None,
    ) -> list[UsageRecord]:
        """The newest records first, optionally only one key's, one model's or one status's."""
        query: Select[Any] = (
            select(*_RECORD_COLUMNS)
            .where(*_filters(key_id=key_id, model=model, status=status))
            .order_by(usage_records.c.time.desc())
            .limit(max(0, limit))
        )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [UsageRecord(**row._asdict()) for row in rows]

    async def page(
        self,
        limit: int,
        before: tuple[float, str] | None = None,
        *,
        start: float | None = None,
        end: float | None = None,
        key_id: str | None = None,
        model: str | None = None,
        provider: str | None = None,
        status: int | None = None,
        error_type: str | None = None,
    ) -> list[UsageRecord]:
        """Up to ``limit`` records newest first, after ``before`` (the last one's (time, id)).

        Keyset pagination on (time, id): with any one filter, a page is one range scan of
        that filter's (…, time, id) index, however deep it is.
        """
        table = usage_records
        conditions = _filters(key_id=key_id, model=model, status=status)
        if provider is not None:
            conditions.append(table.c.provider == provider)
        if error_type is not None:
            conditions.append(table.c.error_type == error_type)
        if start is not None:
            conditions.append(table.c.time >= start)
        if end is not None:
            conditions.append(table.c.time < end)
        if before is not None:
            conditions.append(tuple_(table.c.time, table.c.id) < tuple_(*before))
        query = (
            select(*_RECORD_COLUMNS)
            .where(*conditions)
            .order_by(table.c.time.desc(), table.c.id.desc())
            .limit(max(0, limit))
        )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [UsageRecord(**row._asdict()) for row in rows]

    async def get(self, record_id: str) -> UsageRecord | None:
        """One record by its id."""
        query = select(*_RECORD_COLUMNS).where(usage_records.c.id == record_id)
        async with self._engine.connect() as connection:
            row = (await connection.execute(query)).one_or_none()
        return None if row is None else UsageRecord(**row._asdict())

    async def spend(
        self, key_id: str | None = None, team: str | None = None, since: float | None = None
    ) -> tuple[float, int]:
        """USD and tokens (prompt + completion) spent, to seed budgets at start."""
        table = usage_records
        query = select(
            func.coalesce(func.sum(table.c.cost_usd), 0.0),
            func.coalesce(func.sum(table.c.prompt_tokens + table.c.completion_tokens), 0),
        ).where(*_filters(since=since, key_id=key_id, team=team))
        async with self._engine.connect() as connection:
            cost, tokens = (await connection.execute(query)).one()
        return float(cost), int(tokens)


async def _insert_postgres(driver: Any, records: Sequence[UsageRecord]) -> None:
    rows = [nul_replaced(row) for row in _rows(records)]  # as the engine does for Core
    columns = [list(column) for column in zip(*rows, strict=True)]
    async with driver.transaction():
        stored = {row[0] for row in await driver.fetch(_insert_sql("postgresql"), *columns)}
        fresh = _stored_once(records, stored.__contains__)
        if fresh:
            rollups = [nul_replaced(row) for row in rollup_rows(fresh)]
            await driver.executemany(UPSERT_SQL["postgresql"], rollups)


async def _insert_sqlite(driver: Any, records: Sequence[UsageRecord]) -> None:
    # BEGIN IMMEDIATE takes the write lock first: no other writer can store one of these
    # ids between the look-up and the insert.
    await (await driver.execute("BEGIN IMMEDIATE")).close()
    try:
        ids = [record.id for record in records]
        stored: set[str] = set()
        for start in range(0, len(ids), _IDS_PER_LOOKUP):
            chunk = ids[start : start + _IDS_PER_LOOKUP]
            marks = ", ".join("?" * len(chunk))
            found = await driver.execute_fetchall(
                f"SELECT id FROM usage_records WHERE id IN ({marks})", chunk
            )
            stored.update(row[0] for row in found)
        fresh = _stored_once(records, lambda record_id: record_id not in stored)
        if fresh:
            rows = _rows(fresh)
            for start in range(0, len(rows), _ROWS_PER_INSERT):
                part = rows[start : start + _ROWS_PER_INSERT]
                values = list(itertools.chain.from_iterable(part))
                await (await driver.execute(_insert_sql("sqlite", len(part)), values)).close()
            await driver.executemany(UPSERT_SQL["sqlite"], rollup_rows(fresh))
        await driver.commit()
    except BaseException:
        await driver.rollback()
        raise


def _stored_once(
    records: Sequence[UsageRecord], is_new: Callable[[str], bool]
) -> list[UsageRecord]:
    """The records this write stores: those whose id ``is_new``, each id once."""
    seen: set[str] = set()
    fresh = []
    for record in records:
        if record.id not in seen and is_new(record.id):
            seen.add(record.id)
            fresh.append(record)
    return fresh


def _filters(
    *,
    since: float | None = None,
    key_id: str | None = None,
    team: str | None = None,
    model: str | None = None,
    status: int | None = None,
) -> list[ColumnElement[bool]]:
    table = usage_records
    filters: list[ColumnElement[bool]] = []
    if since is not None:
        filters.append(table.c.time >= since)
    if key_id is not None:
        filters.append(table.c.key_id == key_id)
    if team is not None:
        filters.append(table.c.team == team)
    if model is not None:
        filters.append(table.c.model == model)
    if status is not None:
        filters.append(table.c.status == status)
    return filters


#: The latency percentiles a summary gives.
_FRACTIONS = (0.5, 0.95)


async def _sqlite_percentiles(
    connection: Any, group: ColumnElement[Any], filters: Sequence[ColumnElement[bool]]
) -> dict[str | None, tuple[float, float]]:
    """p50 and p95 per group, interpolated as PostgreSQL's ``percentile_cont`` does, on
    SQLite (which has no percentile aggregate) without reading every record into Python:
    SQLite ranks each group's latencies (a window function, sorted in its own memory or
    temporary file) and hands back only the two ranks around each percentile's place."""
    table = usage_records
    ranked = (
        select(
            group.label("group"),
            table.c.latency_ms.label("latency"),
            (func.row_number().over(partition_by=group, order_by=table.c.latency_ms) - 1).label(
                "rank"
            ),
            func.count().over(partition_by=group).label("n"),
        )
        .where(*filters)
        .subquery()
    )
    wanted = []
    for fraction in _FRACTIONS:
        place = fraction * (ranked.c.n - 1)
        below = cast(place, Integer)  # the floor: the place is never negative
        above = case((place > below, below + 1), else_=below)
        wanted += [ranked.c.rank == below, ranked.c.rank == above]
    query = select(ranked.c.group, ranked.c.rank, ranked.c.n, ranked.c.latency).where(or_(*wanted))
    ranks: dict[str | None, dict[int, float]] = defaultdict(dict)
    sizes: dict[str | None, int] = {}
    for name, rank, size, latency in await connection.execute(query):
        ranks[name][rank] = latency
        sizes[name] = size
    return {
        name: (
            _interpolated(ranks[name], sizes[name], _FRACTIONS[0]),
            _interpolated(ranks[name], sizes[name], _FRACTIONS[1]),
        )
        for name in sizes
    }


def _interpolated(ranks: dict[int, float], size: int, fraction: float) -> float:
    """The value at ``fraction`` of ``size`` ordered values, between the two ranks around it."""
    place = fraction * (size - 1)
    low, high = math.floor(place), math.ceil(place)
    return ranks[low] + (ranks[high] - ranks[low]) * (place - low)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
