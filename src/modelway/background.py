"""A task that runs beside a block for exactly as long as the block does.

The gateway's lifespan keeps several loops going while it serves (open-mode re-checks,
team budgets, metrics files, key-change announcements): each is started on entering and
cancelled, and waited for, on leaving, however the block ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any


@contextlib.asynccontextmanager
async def in_background(work: Coroutine[Any, Any, object] | None) -> AsyncIterator[None]:
    """Run ``work`` (nothing when None) while the block runs; cancel it at the block's end."""
    task = asyncio.create_task(work) if work is not None else None
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
