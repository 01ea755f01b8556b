"""What the gateway keeps for its lifetime; the one place app-wide state lives."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.responses import Response

from modelway.config import Config
from modelway.engine import Engine, Outcome
from modelway.store import Store

if TYPE_CHECKING:
    from modelway.gateway.accounting import Accounts
    from modelway.gateway.auth import Authenticator

T = TypeVar("T")


@dataclass
class GatewayState:
    """The engine, the store and settings every route uses."""

    config: Config
    engine: Engine
    store: Store
    auth: Authenticator
    accounts: Accounts
    started_at: float = field(default_factory=time.time)
    #: Steps finishing on their own after their caller was cancelled (``to_the_end``).
    _finishing: set[asyncio.Task[Any]] = field(default_factory=set, init=False, repr=False)

    @property
    def max_body_bytes(self) -> int:
        return self.config.server.max_body_bytes

    async def to_the_end(self, step: Coroutine[Any, Any, T]) -> T:
        """Await ``step``; if the caller is cancelled meanwhile, ``step`` still runs to its end.

        For the work that must survive the caller leaving (saving a stopped reply): a
        second cancellation, such as a hang-up noticed twice, would otherwise abort it.
        """
        task = asyncio.ensure_future(step)
        self._finishing.add(task)  # the loop keeps only a weak reference to a task
        task.add_done_callback(self._finishing.discard)
        return await asyncio.shield(task)

    async def finish_pending(self) -> None:
        """Wait for the steps still finishing on their own (before the store closes)."""
        while self._finishing:
            await asyncio.wait(set(self._finishing))


def outcome_headers(outcome: Outcome) -> dict[str, str]:
    """Response headers that say which provider and model answered, after how many tries."""
    headers = {
        "x-modelway-provider": outcome.target.backend.name,
        "x-modelway-model": outcome.target.model,
        "x-modelway-attempts": str(outcome.attempts),
    }
    if outcome.fallback is not None:
        headers["x-modelway-fallback"] = outcome.fallback
    return headers


def json_answer(body: bytes, outcome: Outcome) -> Response:
    """A JSON answer with the outcome headers, encoded once rather than through a dict."""
    response = Response(body, media_type="application/json")
    response.raw_headers += [
        (b"x-modelway-provider", outcome.target.backend.name.encode()),
        (b"x-modelway-model", outcome.target.model.encode()),
        (b"x-modelway-attempts", str(outcome.attempts).encode()),
    ]
    if outcome.fallback is not None:
        response.raw_headers.append((b"x-modelway-fallback", outcome.fallback.encode()))
    return response
