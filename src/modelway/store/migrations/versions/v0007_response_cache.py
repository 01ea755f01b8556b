"""The response cache: usage records keep the cost a hit saved; clears reach every worker.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # NOT NULL with a server default: SQLite and PostgreSQL both fill existing rows with 0.
    op.add_column(
        "usage_records",
        sa.Column("cost_saved_usd", sa.Double(), nullable=False, server_default=sa.text("0")),
    )
    op.create_table(
        "cache_clears",
        sa.Column("namespace", sa.String(300), primary_key=True),
        sa.Column("generation", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("cache_clears")
    # Batch mode: SQLite before 3.35 cannot drop a column in place.
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_column("cost_saved_usd")
