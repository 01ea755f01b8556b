"""Clears that reach every worker of a gateway whose cache is in memory (no Redis).

The store counts each namespace's clears (``store.cache_clears``); ``refreshing`` re-reads
them every ``REFRESH_SECONDS`` on each worker, as team budgets are re-read, so a
``modelway cache clear`` answered by one worker empties the others within 5 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from modelway.cache.responses import ResponseCache

log = logging.getLogger("modelway.cache")
#: Seconds between re-reads of the clear counts (a clear reaches every worker within 5 s).
REFRESH_SECONDS = 4.0
#: Seconds a read in progress at shutdown may take to finish.
STOP_SECONDS = 5.0


@contextlib.asynccontextmanager
async def refreshing(
    cache: ResponseCache,
    generations: Callable[[], Awaitable[dict[str, int]]],
    every: float = REFRESH_SECONDS,
) -> AsyncIterator[None]:
    """Apply the clear counts ``generations()`` reads now and every ``every`` seconds."""
    if not cache.shares_clears:
        yield  # in Redis a clear reaches every replica at once
        return
    await cache.apply_clears(await generations(), drop=False)  # nothing cached yet

    stop = asyncio.Event()

    async def refresh() -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
                return
            try:
                await cache.apply_clears(await generations())
            except Exception:  # the store is briefly down: keep what we have
                log.warning("could not re-read the cache clears", exc_info=True)

    task = asyncio.create_task(refresh())
    try:
        yield
    finally:
        # Stopped between reads, not cancelled inside one: a store connection cut mid-query
        # is left for the garbage collector to close.
        stop.set()
        try:
            await asyncio.wait_for(task, STOP_SECONDS)
        except TimeoutError:
            log.warning("the cache clears' re-read did not stop in time; cancelled")
