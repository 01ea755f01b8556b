"""The persistent store: SQLAlchemy 2 (async) over SQLite or PostgreSQL, Alembic migrations.

``store = await Store.open(database_url(environ))`` applies migrations; its repositories
are ``store.keys``, ``store.users``, ``store.usage``, ``store.chats``,
``store.connections``, ``store.responses``, ``store.teams`` and
``store.admin_sessions``; ``await store.aclose()`` closes it.
``KeyVerifier`` checks presented keys cheaply, ``UsageWriter`` writes usage off the hot
path.
"""

from __future__ import annotations

from modelway.store.chats import ChatRepository
from modelway.store.connections import ConnectionRepository
from modelway.store.database import Store
from modelway.store.keys import KeyCandidate, KeyRepository
from modelway.store.location import data_dir, database_url, display_url
from modelway.store.records import (
    AdminSession,
    ChatMessage,
    ChatSession,
    KeyRecord,
    ProviderConnection,
    TeamMember,
    TeamRecord,
    UsageRecord,
    UsageRow,
    UserRecord,
)
from modelway.store.responses import ResponseRepository, StoredResponse
from modelway.store.usage import UsageRepository
from modelway.store.users import UserRepository
from modelway.store.verifier import KeyVerifier
from modelway.store.writer import UsageWriter

__all__ = [
    "AdminSession",
    "ChatMessage",
    "ChatRepository",
    "ChatSession",
    "ConnectionRepository",
    "KeyCandidate",
    "KeyRecord",
    "KeyRepository",
    "KeyVerifier",
    "ProviderConnection",
    "ResponseRepository",
    "Store",
    "StoredResponse",
    "TeamMember",
    "TeamRecord",
    "UsageRecord",
    "UsageRepository",
    "UsageRow",
    "UsageWriter",
    "UserRecord",
    "UserRepository",
    "data_dir",
    "database_url",
    "display_url",
]
