"""How many times each response-cache namespace was cleared: what a clear tells other workers.

Without Redis every worker keeps its own cached answers. A clear bumps the namespace's
generation here (``*`` for the whole cache); each worker re-reads the generations every
few seconds and drops what the bump covers (``ResponseCache.apply_clears``).
"""

from __future__ import annotations

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from modelway.store.engine import Database
from modelway.store.tables import cache_clears

#: The generation row that stands for the whole cache.
EVERYTHING = "*"


class CacheClearRepository:
    """Generations of response-cache clears, by namespace."""

    def __init__(self, engine: Database) -> None:
        self._engine = engine

    async def generations(self) -> dict[str, int]:
        """Every namespace ever cleared, with how many times."""
        async with self._engine.connect() as connection:
            rows = await connection.execute(
                select(cache_clears.c.namespace, cache_clears.c.generation)
            )
            return {namespace: int(generation) for namespace, generation in rows}

    async def bump(self, namespace: str | None) -> None:
        """Count one more clear of ``namespace`` (None: the whole cache)."""
        if namespace == EVERYTHING:
            raise ValueError("the whole cache's clear is bump(None), not a namespace named '*'")
        name = EVERYTHING if namespace is None else namespace
        row = cache_clears.c.namespace == name
        bumped = update(cache_clears).where(row).values(generation=cache_clears.c.generation + 1)
        for _ in range(2):  # a first clear racing another worker's inserts once, then updates
            async with self._engine.begin() as connection:
                if (await connection.execute(bumped)).rowcount:
                    return
            try:
                async with self._engine.begin() as connection:
                    await connection.execute(
                        insert(cache_clears).values(namespace=name, generation=1)
                    )
                return
            except IntegrityError:
                continue
