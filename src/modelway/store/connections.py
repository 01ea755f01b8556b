"""Providers connected at run time from the web chat; their keys never leave the server."""

from __future__ import annotations

import time

from sqlalchemy import delete, select

from modelway.errors import BadRequest
from modelway.store.conflicts import insert_or_update
from modelway.store.engine import Database
from modelway.store.records import ProviderConnection
from modelway.store.tables import provider_connections


class ConnectionRepository:
    """One saved connection per provider name; saving again replaces it."""

    def __init__(self, engine: Database) -> None:
        self._engine = engine

    async def save(self, provider: str, api_key: str | None, base_url: str | None) -> None:
        """Add or replace the connection of ``provider``."""
        if not provider or len(provider) > 64:
            raise BadRequest("a provider name is 1 to 64 characters")
        values = {
            "provider": provider,
            "api_key": api_key or None,
            "base_url": base_url or None,
            "created_at": time.time(),
        }
        async with self._engine.begin() as connection:
            await connection.execute(
                insert_or_update(connection.dialect.name, provider_connections, values, "provider")
            )

    async def list(self) -> list[ProviderConnection]:
        """Every connection as people may see it: whether it has a key, never the key."""
        table = provider_connections
        query = select(
            table.c.provider, table.c.base_url, table.c.api_key.is_not(None), table.c.created_at
        ).order_by(table.c.provider)
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [
            ProviderConnection(
                provider=provider, base_url=base_url, has_key=bool(has_key), created_at=created_at
            )
            for provider, base_url, has_key, created_at in rows
        ]

    async def secrets(self) -> dict[str, tuple[str | None, str | None]]:
        """provider -> (api_key, base_url), for building backends on the server only."""
        table = provider_connections
        query = select(table.c.provider, table.c.api_key, table.c.base_url)
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return {provider: (api_key, base_url) for provider, api_key, base_url in rows}

    async def delete(self, provider: str) -> bool:
        """Forget a connection; False if there was none."""
        statement = delete(provider_connections).where(provider_connections.c.provider == provider)
        async with self._engine.begin() as connection:
            result = await connection.execute(statement)
        return result.rowcount > 0
