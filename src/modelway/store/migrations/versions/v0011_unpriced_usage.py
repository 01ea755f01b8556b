"""Usage records say when their cost is unknown (the model had no price), and the hourly
roll-ups count them, so the dashboard shows "unpriced" instead of a $0.00 nobody spent.

Both are new columns with a default: SQLite and PostgreSQL add them in place, without
rewriting the tables. Records stored before say ``unpriced`` false: which of them had no
price was not kept.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision: str | None = "0010"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column(
        "usage_records",
        sa.Column("unpriced", sa.Boolean(), nullable=False, server_default=sa.text("false")),
    )
    op.add_column(
        "usage_hourly",
        sa.Column("unpriced", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
    )


def downgrade() -> None:
    # Batch mode: SQLite before 3.35 cannot drop a column in place.
    with op.batch_alter_table("usage_hourly") as batch:
        batch.drop_column("unpriced")
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_column("unpriced")
