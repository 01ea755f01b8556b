"""Admin dashboard sessions: a random cookie value, kept only as its SHA-256.

The cookie value is 32 random bytes, so a plain SHA-256 is enough to make a stolen
table useless (there is nothing to guess); Argon2 would only slow every admin request.
Sessions live in the store so every worker and replica honours them. Times are passed
in by the caller (its clock), so expiry can be tested without waiting.

A session opened with the master key is bound to it: the row keeps an HMAC of the key
under the cookie value (which the store never holds, so a stolen table offers nothing to
test guesses of the key against), and the session ends when the gateway's master key is
no longer the one it was opened with.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Literal

from sqlalchemy import delete, insert, select

from modelway.store.engine import Database
from modelway.store.records import AdminSession
from modelway.store.tables import admin_sessions, users

#: Random bytes in a session cookie and in a CSRF token.
TOKEN_BYTES = 32


def token_hash(token: str) -> str:
    """What the store keeps of a cookie value."""
    return hashlib.sha256(token.encode()).hexdigest()


def binding(token: str, secret: str) -> str:
    """What binds a session to the secret it was opened with (the master key)."""
    return hmac.new(token.encode(), secret.encode(), hashlib.sha256).hexdigest()


class AdminSessionRepository:
    """Open, find and end admin sessions."""

    def __init__(self, engine: Database) -> None:
        self._engine = engine

    async def open(
        self,
        kind: Literal["master", "user"],
        *,
        now: float,
        ttl: float,
        user_id: str | None = None,
        email: str | None = None,
        secret: str | None = None,
    ) -> tuple[str, AdminSession]:
        """A new session: the cookie value (never stored) and the session; with ``secret``
        (the master key) it lasts only while ``find`` is given the same secret."""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        session = AdminSession(
            csrf=secrets.token_urlsafe(TOKEN_BYTES),
            kind=kind,
            user_id=user_id,
            email=email,
            created_at=now,
            expires_at=now + ttl,
        )
        statement = insert(admin_sessions).values(
            token_hash=token_hash(token),
            csrf=session.csrf,
            kind=kind,
            user_id=user_id,
            binding=None if secret is None else binding(token, secret),
            created_at=now,
            expires_at=session.expires_at,
        )
        async with self._engine.begin() as connection:
            # Expired rows go as new ones come: the table holds live sessions and a few more.
            expired = delete(admin_sessions).where(admin_sessions.c.expires_at < now)
            await connection.execute(expired)
            await connection.execute(statement)
        return token, session

    async def find(
        self, token: str, *, now: float, secret: str | None = None
    ) -> AdminSession | None:
        """The live session of a cookie value; None if unknown, expired, its user no longer
        an admin, or opened with another secret than ``secret`` (the master key now)."""
        table = admin_sessions
        query = (
            select(table, users.c.email, users.c.is_admin)
            .select_from(table.outerjoin(users, users.c.id == table.c.user_id))
            .where(table.c.token_hash == token_hash(token), table.c.expires_at > now)
        )
        async with self._engine.connect() as connection:
            row = (await connection.execute(query)).first()
        if row is None or (row.kind == "user" and not row.is_admin):
            return None
        if row.binding is not None and (
            secret is None or not hmac.compare_digest(row.binding, binding(token, secret))
        ):
            return None  # opened with a master key the gateway no longer has
        return AdminSession(
            csrf=row.csrf,
            kind=row.kind,
            user_id=row.user_id,
            email=row.email,
            created_at=row.created_at,
            expires_at=row.expires_at,
        )

    async def close(self, token: str) -> None:
        """End a session (ending an unknown one is harmless)."""
        statement = delete(admin_sessions).where(admin_sessions.c.token_hash == token_hash(token))
        async with self._engine.begin() as connection:
            await connection.execute(statement)

    async def close_user(self, user_id: str) -> None:
        """End every session of one account (its password or admin right changed)."""
        statement = delete(admin_sessions).where(admin_sessions.c.user_id == user_id)
        async with self._engine.begin() as connection:
            await connection.execute(statement)
