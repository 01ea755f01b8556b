"""Inserts that meet an existing row, in each database's own syntax."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Table
from sqlalchemy.sql.dml import Insert

# Each dialect's insert is imported where it is used: a SQLite gateway never loads the
# PostgreSQL dialect (a few MB of an idle worker).


def insert_or_update(dialect: str, table: Table, values: Mapping[str, Any], key: str) -> Insert:
    """An INSERT of one row that replaces the row with the same ``key`` when there is one."""
    changes = {name: value for name, value in values.items() if name != key}
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        pg = postgresql.insert(table).values(**values)
        return pg.on_conflict_do_update(index_elements=[key], set_=changes)
    if dialect == "sqlite":
        from sqlalchemy.dialects import sqlite

        lite = sqlite.insert(table).values(**values)
        return lite.on_conflict_do_update(index_elements=[key], set_=changes)
    raise ValueError(f"the store runs on PostgreSQL or SQLite, not {dialect!r}")


def insert_or_keep(dialect: str, table: Table, values: Mapping[str, Any], key: str) -> Insert:
    """An INSERT of one row that leaves the row with the same ``key``, when there is one,
    as it is (and inserts nothing)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return (
            postgresql.insert(table).values(**values).on_conflict_do_nothing(index_elements=[key])
        )
    if dialect == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(table).values(**values).on_conflict_do_nothing(index_elements=[key])
    raise ValueError(f"the store runs on PostgreSQL or SQLite, not {dialect!r}")
