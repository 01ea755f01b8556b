"""A chat reply that failed keeps the HTTP status it failed with (429: rate limited), so the
chat shows it after a reload as it did live.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("chat_messages", sa.Column("error_status", sa.Integer(), nullable=True))


def downgrade() -> None:
    # Batch mode: SQLite before 3.35 cannot drop a column in place.
    with op.batch_alter_table("chat_messages") as batch:
        batch.drop_column("error_status")
