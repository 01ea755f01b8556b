"""Usage records count the completion tokens spent thinking.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # NOT NULL with a server default: SQLite and PostgreSQL both fill existing rows with 0.
    op.add_column(
        "usage_records",
        sa.Column("reasoning_tokens", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
    )


def downgrade() -> None:
    # Batch mode: SQLite before 3.35 cannot drop a column in place.
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_column("reasoning_tokens")
