"""Initial schema: keys, users, usage, chat sessions and messages, provider connections.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

Id = sa.String(32)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", Id, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.Text(), nullable=False),
        sa.Column("owner_user", sa.Text()),
        sa.Column("owner_team", sa.Text()),
        sa.Column("models", sa.JSON(), nullable=False),
        sa.Column("rpm", sa.Integer()),
        sa.Column("tpm", sa.Integer()),
        sa.Column("budget_usd", sa.Double()),
        sa.Column("budget_tokens", sa.BigInteger()),
        sa.Column("budget_period", sa.String(8), nullable=False),
        sa.Column("expires_at", sa.Double()),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("revoked_at", sa.Double()),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
    )
    op.create_index("ix_api_keys_prefix", "api_keys", ["prefix"])

    op.create_table(
        "users",
        sa.Column("id", Id, nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("email", name="uq_users_email"),
    )

    op.create_table(
        "usage_records",
        sa.Column("id", Id, nullable=False),
        sa.Column("request_id", sa.Text(), nullable=False),
        sa.Column("time", sa.Double(), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("key_id", Id),
        sa.Column("user", sa.Text()),
        sa.Column("team", sa.Text()),
        sa.Column("dialect", sa.Text()),
        sa.Column("alias", sa.Text()),
        sa.Column("provider", sa.Text()),
        sa.Column("model", sa.Text()),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("error_type", sa.Text()),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cached_tokens", sa.BigInteger(), nullable=False),
        sa.Column("usage_estimated", sa.Boolean(), nullable=False),
        sa.Column("cost_usd", sa.Double(), nullable=False),
        sa.Column("latency_ms", sa.Double(), nullable=False),
        sa.Column("ttft_ms", sa.Double()),
        sa.Column("stream", sa.Boolean(), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("fallback_used", sa.Text()),
        sa.Column("cache_hit", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_usage_records"),
    )
    op.create_index("ix_usage_records_request_id", "usage_records", ["request_id"])
    op.create_index("ix_usage_records_time", "usage_records", ["time"])
    op.create_index("ix_usage_records_day", "usage_records", ["day"])
    op.create_index("ix_usage_records_key_id_time", "usage_records", ["key_id", "time"])
    op.create_index("ix_usage_records_team_time", "usage_records", ["team", "time"])
    op.create_index("ix_usage_records_model_time", "usage_records", ["model", "time"])

    op.create_table(
        "chat_sessions",
        sa.Column("id", Id, nullable=False),
        sa.Column("owner", sa.Text()),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("model", sa.Text()),
        sa.Column("system", sa.Text()),
        sa.Column("temperature", sa.Double()),
        sa.Column("max_tokens", sa.Integer()),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_chat_sessions"),
    )
    op.create_index("ix_chat_sessions_owner_updated_at", "chat_sessions", ["owner", "updated_at"])

    op.create_table(
        "chat_messages",
        sa.Column("id", Id, nullable=False),
        sa.Column("session_id", Id, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("model", sa.Text()),
        sa.Column("provider", sa.Text()),
        sa.Column("prompt_tokens", sa.Integer()),
        sa.Column("completion_tokens", sa.Integer()),
        sa.Column("usage_accurate", sa.Boolean()),
        sa.Column("error", sa.Text()),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_chat_messages"),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["chat_sessions.id"],
            name="fk_chat_messages_session_id_chat_sessions",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_chat_messages_session_id_created_at", "chat_messages", ["session_id", "created_at"]
    )

    op.create_table(
        "provider_connections",
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("api_key", sa.Text()),
        sa.Column("base_url", sa.Text()),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("provider", name="pk_provider_connections"),
    )


def downgrade() -> None:
    for table in (
        "provider_connections",
        "chat_messages",
        "chat_sessions",
        "usage_records",
        "users",
        "api_keys",
    ):
        op.drop_table(table)
