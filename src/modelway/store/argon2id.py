"""Argon2id hashing, shared by virtual keys and account passwords."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

#: The library's RFC 9106 low-memory profile (64 MiB, 3 passes): ~50 ms, so run in a thread.
_HASHER = PasswordHasher()


async def hash_secret(secret: str) -> str:
    """The Argon2id hash of ``secret``, computed off the event loop."""
    return await asyncio.to_thread(_HASHER.hash, secret)


async def secret_matches(secret_hash: str, secret: str) -> bool:
    """Whether ``secret`` is the one ``secret_hash`` was made from, checked off the event loop."""
    return await asyncio.to_thread(_matches, secret_hash, secret)


def _matches(secret_hash: str, secret: str) -> bool:
    try:
        return _HASHER.verify(secret_hash, secret)
    except (VerificationError, InvalidHashError):
        return False
