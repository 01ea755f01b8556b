"""Usage records lose two indexes that no query used: ``request_id`` and ``day``.

Every usage record is inserted on the request path, into the table and each of its
indexes; measured on SQLite, each index costs an insert ~0.5-1 µs of the store's thread.
No query reads a record by its request id, and the summary by day reads every record of
its range for the percentiles, so an index on ``day`` saves it nothing
(docs/store.md, "Request-log indexes").

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.drop_index("ix_usage_records_request_id", table_name="usage_records")
    op.drop_index("ix_usage_records_day", table_name="usage_records")


def downgrade() -> None:
    op.create_index("ix_usage_records_day", "usage_records", ["day"])
    op.create_index("ix_usage_records_request_id", "usage_records", ["request_id"])
