"""Hourly usage roll-ups for the admin dashboard, and an index per request-log filter.

``usage_hourly`` is filled from the records already stored, in chunks, by the same
function the usage writer calls on every batch (``store.rollups.rollup_rows``). The
request log pages on (time, id): each filter's index now ends in both.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

#: Latency and TTFT histogram buckets per row (``tables.HISTOGRAM_BUCKETS`` at this revision).
BUCKETS = 56
#: Records read per chunk of the back-fill.
CHUNK = 50_000
#: Roll-up counters later revisions added (0011): not in the table this revision makes.
_LATER_COUNTERS = ("unpriced",)
#: The roll-up dimensions with an index (dims, dimension, hour).
_INDEXED_DIMENSIONS = ("key_id", "team", "model")
_NEW_INDEXES = {
    "ix_usage_records_time_id": ["time", "id"],
    "ix_usage_records_key_id_time_id": ["key_id", "time", "id"],
    "ix_usage_records_model_time_id": ["model", "time", "id"],
    "ix_usage_records_provider_time_id": ["provider", "time", "id"],
    "ix_usage_records_status_time_id": ["status", "time", "id"],
    "ix_usage_records_error_type_time_id": ["error_type", "time", "id"],
}
_OLD_INDEXES = {
    "ix_usage_records_time": ["time"],
    "ix_usage_records_key_id_time": ["key_id", "time"],
    "ix_usage_records_model_time": ["model", "time"],
}


def upgrade() -> None:
    counters = [
        sa.Column(name, sa.BigInteger(), nullable=False)
        for name in ("requests", "errors", "prompt_tokens", "completion_tokens")
    ]
    counters += [
        sa.Column("cached_tokens", sa.BigInteger(), nullable=False),
        sa.Column("reasoning_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost_usd", sa.Double(), nullable=False),
        sa.Column("latency_ms_sum", sa.Double(), nullable=False),
        sa.Column("ttft_count", sa.BigInteger(), nullable=False),
        sa.Column("ttft_ms_sum", sa.Double(), nullable=False),
    ]
    histograms = [
        sa.Column(f"{kind}_{i:02d}", sa.Integer(), nullable=False)
        for kind in ("latency", "ttft")
        for i in range(BUCKETS)
    ]
    op.create_table(
        "usage_hourly",
        sa.Column("dims", sa.SmallInteger(), nullable=False),
        sa.Column("hour", sa.BigInteger(), nullable=False),
        *(
            sa.Column(name, sa.Text(), nullable=False)
            for name in ("key_id", "team", "model", "provider", "alias")
        ),
        *counters,
        *histograms,
        sa.PrimaryKeyConstraint(
            "dims", "hour", "key_id", "team", "model", "provider", "alias", name="pk_usage_hourly"
        ),
    )
    for dimension in _INDEXED_DIMENSIONS:
        op.create_index(
            f"ix_usage_hourly_dims_{dimension}_hour", "usage_hourly", ["dims", dimension, "hour"]
        )
    for name in _OLD_INDEXES:
        op.drop_index(name, table_name="usage_records")
    for name, columns in _NEW_INDEXES.items():
        op.create_index(name, "usage_records", columns)
    _back_fill(op.get_bind())


def _back_fill(connection: sa.Connection) -> None:
    """Roll up every stored record, ``CHUNK`` at a time in id order, summed in memory.

    The sums are kept across chunks (a few hundred rows per hour of traffic) and written
    once, with the writer's own upsert.
    """
    from modelway.store.rollups import COUNTER_COLUMNS, KEY_COLUMNS, rollup_rows, upsert_sql

    records = sa.table(
        "usage_records",
        *(
            sa.column(name)
            for name in ("id", "time", "key_id", "team", "model", "provider", "alias", "status")
        ),
        *(
            sa.column(name)
            for name in (
                "prompt_tokens",
                "completion_tokens",
                "cached_tokens",
                "reasoning_tokens",
                "cost_usd",
                "latency_ms",
                "ttft_ms",
            )
        ),
    )
    # The writer's function reads columns later revisions added: the records here have none.
    later = [sa.false().label(name) for name in _LATER_COUNTERS]
    totals: dict[tuple[Any, ...], list[Any]] = {}
    after = ""
    while True:
        chunk = connection.execute(
            sa.select(records, *later)
            .where(records.c.id > after)
            .order_by(records.c.id)
            .limit(CHUNK)
        ).all()
        if not chunk:
            break
        after = chunk[-1].id
        for row in rollup_rows(chunk):
            key, values = row[: len(KEY_COLUMNS)], list(row[len(KEY_COLUMNS) :])
            held = totals.get(key)
            totals[key] = (
                values if held is None else [a + b for a, b in zip(held, values, strict=True)]
            )
    if not totals:
        return
    # Named parameters through SQLAlchemy: the upsert is the writer's, in one style, of
    # this revision's counters.
    names = [*KEY_COLUMNS, *COUNTER_COLUMNS]
    counters = [name for name in COUNTER_COLUMNS if name not in _LATER_COUNTERS]
    statement = sa.text(upsert_sql("named", counters))
    rows = [
        {
            name: value
            for name, value in zip(names, (*key, *values), strict=True)
            if name not in _LATER_COUNTERS
        }
        for key, values in sorted(totals.items())
    ]
    for start in range(0, len(rows), 5_000):
        connection.execute(statement, rows[start : start + 5_000])


def downgrade() -> None:
    for name in _NEW_INDEXES:
        op.drop_index(name, table_name="usage_records")
    for name, columns in _OLD_INDEXES.items():
        op.create_index(name, "usage_records", columns)
    for dimension in _INDEXED_DIMENSIONS:
        op.drop_index(f"ix_usage_hourly_dims_{dimension}_hour", table_name="usage_hourly")
    op.drop_table("usage_hourly")
