"""Responses API answers the gateway keeps, so a translated call can be continued.

A row is one answer of ``POST /v1/responses`` that went through the canonical form
(``gateway.response_state``): the response object as its caller got it (for
``GET /v1/responses/{id}``) and the canonical conversation up to and including it (for a
later request's ``previous_response_id``). Every read and delete is scoped to an
``owner`` (a team, a key, or the open gateway); a row past ``expires_at`` is never
returned and is deleted, a bounded batch at a time, by later writes. Time comes from
``clock`` (epoch seconds), so tests can move it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import msgspec
from msgspec.structs import asdict
from sqlalchemy import Delete, Table, delete, insert, select

from modelway.store.conflicts import insert_or_keep
from modelway.store.engine import Database
from modelway.store.tables import relayed_responses, stored_responses
from modelway.types import Message

log = logging.getLogger("modelway.store")

#: Expired rows one write deletes, at most (the rest go with later writes).
PURGE_BATCH = 100

_conversation_decoder = msgspec.json.Decoder(list[Message])


class StoredResponse(msgspec.Struct, frozen=True, kw_only=True):
    """One stored answer; ``conversation`` is None when it was too large to keep."""

    id: str
    owner: str
    model: str
    created_at: float
    expires_at: float
    conversation: str | None
    response: str


class _Kept(msgspec.Struct):
    """A conversation as kept since input items are listed: its messages, and how many of
    the first were the response's inputs (the rest, if any, its answer)."""

    messages: list[Message]
    inputs: int


_kept_decoder = msgspec.json.Decoder(_Kept)


def encode_conversation(messages: list[Message], inputs: int | None = None) -> str:
    """Canonical messages as JSON text (every field of ``Message``, present and future);
    with ``inputs``, how many of the first ``messages`` were the response's inputs."""
    if inputs is None:
        return msgspec.json.encode(messages).decode()
    return msgspec.json.encode(_Kept(messages, inputs)).decode()


def decode_kept(text: str) -> tuple[list[Message], int | None]:
    """The messages ``encode_conversation`` wrote, and how many were inputs (None: it was
    not recorded, as in rows kept before it was); ``msgspec.ValidationError`` if unreadable."""
    if text.lstrip().startswith("{"):
        kept = _kept_decoder.decode(text)
        return kept.messages, kept.inputs
    return _conversation_decoder.decode(text), None


def decode_conversation(text: str) -> list[Message]:
    """The messages ``encode_conversation`` wrote; ``msgspec.ValidationError`` if unreadable."""
    return decode_kept(text)[0]


class ResponseRepository:
    """Stored responses by id within an owner's scope; expired ones are absent."""

    def __init__(self, engine: Database, *, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._clock = clock

    async def save(
        self,
        response_id: str,
        owner: str,
        model: str,
        *,
        conversation: str | None,
        response: str,
        keep_seconds: float,
    ) -> StoredResponse:
        """Keep a response for ``keep_seconds``; first deletes a batch of expired rows."""
        now = self._clock()
        row = StoredResponse(
            id=response_id,
            owner=owner,
            model=model,
            created_at=now,
            expires_at=now + keep_seconds,
            conversation=conversation,
            response=response,
        )
        async with self._engine.begin() as connection:
            await connection.execute(_purge(stored_responses, now, PURGE_BATCH))
            await connection.execute(insert(stored_responses).values(asdict(row)))
        return row

    async def save_relayed(
        self, response_id: str, owner: str, provider: str, upstream: str, *, keep_seconds: float
    ) -> None:
        """Remember that ``upstream`` (of ``provider``) keeps ``owner``'s relayed response
        ``response_id``, for ``keep_seconds``; first deletes a batch of expired ones.

        An id already remembered and not expired keeps its owner: an upstream that gives
        one id twice (a broken one, or one a caller set up to answer another's id) can
        neither take a response from its owner nor fail the call; it is logged."""
        now = self._clock()
        row = {
            "id": response_id,
            "owner": owner,
            "provider": provider,
            "upstream": upstream,
            "created_at": now,
            "expires_at": now + keep_seconds,
        }
        async with self._engine.begin() as connection:
            await connection.execute(_purge(relayed_responses, now, PURGE_BATCH))
            await connection.execute(
                delete(relayed_responses).where(
                    relayed_responses.c.id == response_id, relayed_responses.c.expires_at <= now
                )
            )
            dialect = connection.dialect.name
            saved = await connection.execute(insert_or_keep(dialect, relayed_responses, row, "id"))
        if not saved.rowcount:
            log.warning(
                "%s answered with the id of a response it gave before; the first is kept",
                provider,
                extra={"provider": provider},
            )

    async def relayed_upstream(self, response_id: str, owner: str) -> str | None:
        """The upstream that keeps ``owner``'s unexpired relayed response, or None."""
        query = select(relayed_responses.c.upstream).where(
            relayed_responses.c.id == response_id,
            relayed_responses.c.owner == owner,
            relayed_responses.c.expires_at > self._clock(),
        )
        async with self._engine.connect() as connection:
            return (await connection.execute(query)).scalar()

    async def relayed_owner(self, response_id: str) -> str | None:
        """Whose unexpired relayed response ``response_id`` is, or None if none is known."""
        query = select(relayed_responses.c.owner).where(
            relayed_responses.c.id == response_id,
            relayed_responses.c.expires_at > self._clock(),
        )
        async with self._engine.connect() as connection:
            return (await connection.execute(query)).scalar()

    async def forget_relayed(self, response_id: str, owner: str) -> None:
        """Forget ``owner``'s relayed response (its provider deleted it, or never had it)."""
        statement = delete(relayed_responses).where(
            relayed_responses.c.id == response_id, relayed_responses.c.owner == owner
        )
        async with self._engine.begin() as connection:
            await connection.execute(statement)

    async def get(self, response_id: str, owner: str) -> StoredResponse | None:
        """The unexpired response ``response_id`` of ``owner``, or None."""
        query = select(stored_responses).where(
            stored_responses.c.id == response_id,
            stored_responses.c.owner == owner,
            stored_responses.c.expires_at > self._clock(),
        )
        async with self._engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return None if row is None else StoredResponse(**row._asdict())

    async def delete(self, response_id: str, owner: str) -> bool:
        """Delete ``owner``'s unexpired response ``response_id``; False if there was none."""
        statement = delete(stored_responses).where(
            stored_responses.c.id == response_id,
            stored_responses.c.owner == owner,
            stored_responses.c.expires_at > self._clock(),
        )
        async with self._engine.begin() as connection:
            result = await connection.execute(statement)
        return result.rowcount > 0

    async def purge_expired(self, limit: int = PURGE_BATCH) -> int:
        """Delete up to ``limit`` expired rows of each kind; how many went."""
        now = self._clock()
        async with self._engine.begin() as connection:
            kept = await connection.execute(_purge(stored_responses, now, limit))
            relayed = await connection.execute(_purge(relayed_responses, now, limit))
        return kept.rowcount + relayed.rowcount


def _purge(table: Table, now: float, limit: int) -> Delete:
    # A bounded DELETE in a form SQLite and PostgreSQL both take (neither allows LIMIT on
    # DELETE itself everywhere): the oldest expired ids first.
    expired = (
        select(table.c.id)
        .where(table.c.expires_at <= now)
        .order_by(table.c.expires_at)
        .limit(limit)
    )
    return delete(table).where(table.c.id.in_(expired.scalar_subquery()))
