"""Self-service accounts: an email and an Argon2id password hash."""

from __future__ import annotations

import re
import time

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from modelway.errors import AuthenticationError, BadRequest
from modelway.store.argon2id import hash_secret, secret_matches
from modelway.store.engine import Database
from modelway.store.records import UserRecord, new_id
from modelway.store.tables import users

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+")
WRONG_CREDENTIALS = "wrong email or password"


def normalise_email(email: str) -> str:
    """The email as stored: trimmed and lower-cased, or BadRequest if it is not one."""
    cleaned = email.strip().lower()
    if len(cleaned) > 320 or not _EMAIL.fullmatch(cleaned):
        raise BadRequest("that is not an email address")
    return cleaned


class UserRepository:
    """Register and authenticate accounts."""

    def __init__(self, engine: Database) -> None:
        self._engine = engine
        # Compared against when the email is unknown, so timing does not reveal who exists.
        self._decoy_hash: str | None = None

    async def register(self, email: str, password: str) -> UserRecord:
        """A new account; BadRequest if the email is malformed or taken, or the password weak."""
        address = normalise_email(email)
        if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
            raise BadRequest(
                f"a password has {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters"
            )
        record = UserRecord(id=new_id(), email=address, created_at=time.time())
        password_hash = await hash_secret(password)
        statement = insert(users).values(
            id=record.id,
            email=record.email,
            password_hash=password_hash,
            created_at=record.created_at,
        )
        try:
            async with self._engine.begin() as connection:
                await connection.execute(statement)
        except IntegrityError:
            raise BadRequest("an account with this email already exists") from None
        return record

    async def authenticate(self, email: str, password: str) -> UserRecord:
        """The account these credentials open; AuthenticationError otherwise."""
        try:
            address = normalise_email(email)
        except BadRequest:
            raise AuthenticationError(WRONG_CREDENTIALS) from None
        query = select(users).where(users.c.email == address)
        async with self._engine.connect() as connection:
            row = (await connection.execute(query)).first()
        if row is None:
            await secret_matches(await self._decoy(), password)
            raise AuthenticationError(WRONG_CREDENTIALS)
        if not await secret_matches(row.password_hash, password):
            raise AuthenticationError(WRONG_CREDENTIALS)
        return UserRecord(id=row.id, email=row.email, created_at=row.created_at)

    async def get(self, user_id: str) -> UserRecord | None:
        """One account by id, or None."""
        query = select(users.c.id, users.c.email, users.c.created_at).where(users.c.id == user_id)
        async with self._engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return (
            None
            if row is None
            else UserRecord(id=row.id, email=row.email, created_at=row.created_at)
        )

    async def _decoy(self) -> str:
        if self._decoy_hash is None:
            self._decoy_hash = await hash_secret(new_id())
        return self._decoy_hash
