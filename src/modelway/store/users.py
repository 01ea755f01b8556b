"""Accounts: an email, an Argon2id password hash, and whether it may sign in as an admin."""

from __future__ import annotations

import re
import time
import unicodedata
from collections import defaultdict
from typing import Any

from sqlalchemy import Row, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from modelway.errors import AuthenticationError, BadRequest
from modelway.store.argon2id import hash_secret, secret_matches
from modelway.store.engine import Database
from modelway.store.keys import revoking
from modelway.store.records import UserRecord, new_id
from modelway.store.tables import api_keys, team_members, users

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+")
WRONG_CREDENTIALS = "wrong email or password"


def normalise_email(email: str) -> str:
    """The email as stored: NFKC-normalised (a fullwidth ``e``, and ``e`` + a combining
    accent, are one address with ``e`` and ``é``), trimmed and lower-cased; BadRequest if
    it is not one or holds a control or formatting character (a NUL, a zero-width space:
    look-alikes)."""
    cleaned = unicodedata.normalize("NFKC", email[:1000]).strip().lower()
    if (
        len(cleaned) > 320
        or not _EMAIL.fullmatch(cleaned)
        or any(unicodedata.category(c).startswith("C") for c in cleaned)
    ):
        raise BadRequest("that is not an email address")
    return cleaned


class UserRepository:
    """Register and authenticate accounts."""

    def __init__(self, engine: Database) -> None:
        self._engine = engine
        # Compared against when the email is unknown, so timing does not reveal who exists.
        self._decoy_hash: str | None = None

    async def register(self, email: str, password: str, *, is_admin: bool = False) -> UserRecord:
        """A new account; BadRequest if the email is malformed or taken, or the password weak."""
        address = normalise_email(email)
        _check_password(password)
        record = UserRecord(id=new_id(), email=address, created_at=time.time(), is_admin=is_admin)
        password_hash = await hash_secret(password)
        statement = insert(users).values(
            id=record.id,
            email=record.email,
            password_hash=password_hash,
            created_at=record.created_at,
            is_admin=is_admin,
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
        return _user(row)

    async def get(self, user_id: str) -> UserRecord | None:
        """One account by id, or None."""
        query = select(*_COLUMNS).where(users.c.id == user_id)
        async with self._engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return None if row is None else _user(row)

    async def find(self, email: str) -> UserRecord | None:
        """One account by email, or None (a malformed email finds none)."""
        try:
            address = normalise_email(email)
        except BadRequest:
            return None
        query = select(*_COLUMNS).where(users.c.email == address)
        async with self._engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return None if row is None else _user(row)

    async def list_with_teams(self) -> list[tuple[UserRecord, list[str]]]:
        """Every account, oldest first, with the names of its teams (sorted)."""
        async with self._engine.connect() as connection:
            rows = (await connection.execute(select(*_COLUMNS).order_by(users.c.created_at))).all()
            memberships = (await connection.execute(select(team_members))).all()
        teams: dict[str, list[str]] = defaultdict(list)
        for membership in memberships:
            teams[membership.user_id].append(membership.team)
        return [(_user(row), sorted(teams.get(row.id, []))) for row in rows]

    async def update(
        self, user_id: str, *, is_admin: bool | None = None, password: str | None = None
    ) -> bool:
        """Change whether an account is an admin and/or its password; False if none such."""
        values: dict[str, object] = {}
        if is_admin is not None:
            values["is_admin"] = is_admin
        if password is not None:
            _check_password(password)
            values["password_hash"] = await hash_secret(password)
        if not values:
            return await self.get(user_id) is not None
        statement = update(users).where(users.c.id == user_id).values(values)
        async with self._engine.begin() as connection:
            result = await connection.execute(statement)
        return result.rowcount > 0

    async def delete(self, user_id: str) -> list[str] | None:
        """Delete an account (its memberships and sessions go with it) and revoke the keys it
        owns, in one transaction: the ids of the keys revoked, or None if no such account.

        A key is the account's when its ``owner_user`` is the account's email, in any case
        (sign-up's keys, and the admin's labelled so). Revoked, not deleted: their usage
        records keep naming them, and an account opened later with that email cannot use them.
        """
        async with self._engine.begin() as connection:
            found = select(users.c.email).where(users.c.id == user_id)
            email = (await connection.execute(found)).scalar_one_or_none()
            if email is None:
                return None
            await connection.execute(delete(users).where(users.c.id == user_id))
            owned: ColumnElement[bool] = func.lower(api_keys.c.owner_user) == email
            if not email.isascii():
                # SQLite's lower() folds ASCII letters only: match these owners in Python.
                labelled = select(api_keys.c.id, api_keys.c.owner_user).where(
                    api_keys.c.owner_user.is_not(None), api_keys.c.revoked_at.is_(None)
                )
                rows = await connection.execute(labelled)
                ids = [key_id for key_id, owner in rows if owner.strip().lower() == email]
                owned = api_keys.c.id.in_(ids)
            return list((await connection.execute(revoking(owned))).scalars())

    async def _decoy(self) -> str:
        if self._decoy_hash is None:
            self._decoy_hash = await hash_secret(new_id())
        return self._decoy_hash


_COLUMNS = [users.c.id, users.c.email, users.c.created_at, users.c.is_admin]


def _user(row: Row[Any]) -> UserRecord:
    return UserRecord(
        id=row.id, email=row.email, created_at=row.created_at, is_admin=bool(row.is_admin)
    )


def _check_password(password: str) -> None:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise BadRequest(
            f"a password has {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters"
        )
