"""Gateway stores made before start: migrated, and for the full pipeline a virtual key.

The key has limits high enough that every request is admitted, so each one goes through
the whole pipeline (key check, RPM/TPM admission and settlement, a usage record) and is
never refused. Records are counted once the gateway has stopped and flushed its writer.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import func, select

from modelway.store import Store, database_url
from modelway.store.tables import usage_records

#: Limits no benchmark reaches: admitted, counted and settled, never refused.
PIPELINE_RPM = 10_000_000
PIPELINE_TPM = 2_000_000_000  # the most a key may have is 2**31 - 1 (a 32-bit column)


def store_environment(data_dir: Path) -> dict[str, str]:
    return {"MODELWAY_DATA_DIR": str(data_dir)}


def prepare_store(data_dir: Path) -> None:
    """Create and migrate the store under ``data_dir``, as the gateway's first start would.

    Measured gateways then start as they usually do: on a store already at head.
    """

    async def prepare() -> None:
        store = await Store.open(database_url(store_environment(data_dir)))
        await store.aclose()

    asyncio.run(prepare())


def create_virtual_key(data_dir: Path) -> str:
    """A new key in the store under ``data_dir`` (created and migrated here); its plaintext."""

    async def create() -> str:
        store = await Store.open(database_url(store_environment(data_dir)))
        try:
            _, plaintext = await store.keys.create(
                "bench-pipeline", rpm=PIPELINE_RPM, tpm=PIPELINE_TPM
            )
            return plaintext
        finally:
            await store.aclose()

    return asyncio.run(create())


def count_usage_records(data_dir: Path) -> int:
    """How many usage records the store under ``data_dir`` holds."""

    async def count() -> int:
        store = await Store.open(database_url(store_environment(data_dir)), migrate=False)
        try:
            async with store.engine.connect() as connection:
                counted = await connection.execute(select(func.count()).select_from(usage_records))
                total = counted.scalar()
            return int(total or 0)
        finally:
            await store.aclose()

    return asyncio.run(count())
