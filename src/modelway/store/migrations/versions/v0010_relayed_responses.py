"""Responses API answers relayed to a provider that keeps them itself (OpenAI, Azure): whose
each one is and which provider holds it, so ``GET``/``DELETE /v1/responses/{id}`` reach it.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "relayed_responses",
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("owner", sa.Text(), nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("upstream", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_relayed_responses"),
    )
    op.create_index("ix_relayed_responses_expires_at", "relayed_responses", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_relayed_responses_expires_at", table_name="relayed_responses")
    op.drop_table("relayed_responses")
