"""What the gateway keeps for its lifetime; the one place app-wide state lives."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from modelway.calls import Caller, Calls, MeteredCall
from modelway.config import Config
from modelway.engine import Engine, Outcome
from modelway.gateway.chat_replies import RepliesInFlight
from modelway.gateway.http import BodyLimits, JsonAnswer, body_limits, header_value
from modelway.store import Store

if TYPE_CHECKING:
    from modelway.gateway.admin_guard import AdminSessions
    from modelway.gateway.auth import Authenticator
    from modelway.observability.metrics import Metrics
    from modelway.types import ModelInfo


@dataclass
class GatewayState:
    """The engine, the metered calls, the store and settings every route uses."""

    config: Config
    calls: Calls
    store: Store
    auth: Authenticator
    #: ``GET /metrics`` (None with ``metrics.enabled: false``).
    metrics: Metrics | None = None
    started_at: float = field(default_factory=time.time)
    #: What time it is (epoch seconds) for admin sessions; tests pass their own.
    clock: Callable[[], float] = time.time
    body_limits: BodyLimits = field(init=False)
    #: Signed-in admin dashboard sessions (``admin_guard``).
    admin_sessions: AdminSessions = field(init=False)
    #: The web chat's replies streaming in this worker (``chat_replies``).
    chat_replies: RepliesInFlight = field(default_factory=RepliesInFlight)

    def __post_init__(self) -> None:
        from modelway.gateway.admin_guard import AdminSessions  # it imports this module

        server = self.config.server
        self.body_limits = body_limits(server)
        self.admin_sessions = AdminSessions(
            self.store,
            self.config.admin.session_hours,
            self._master_key,
            clock=self.clock,
        )

    def _master_key(self) -> str | None:
        master = self.auth.master_key
        return None if master is None else master.reveal()

    @property
    def engine(self) -> Engine:
        return self.calls.engine

    async def models_for(self, caller: Caller) -> list[ModelInfo]:
        """The models a listing shows ``caller``: those its key may use (``Caller.may_use``)."""
        return [info for info in await self.engine.models() if caller.may_use(info.id)]


def outcome_headers(outcome: Outcome) -> dict[str, str]:
    """Response headers that say which provider and model answered, after how many tries."""
    headers = {
        "x-modelway-provider": header_value(outcome.target.backend.name),
        "x-modelway-model": header_value(outcome.target.model),
        "x-modelway-attempts": str(outcome.attempts),
    }
    if outcome.fallback is not None:
        headers["x-modelway-fallback"] = header_value(outcome.fallback)
    return headers


def cache_headers(call: MeteredCall) -> list[tuple[bytes, bytes]]:
    """``x-modelway-cache`` (hit, miss or bypass); on a hit ``age`` and who answered first."""
    status = call.cache_status
    headers = [(b"x-modelway-cache", (status or "bypass").encode())]
    entry = call.cache_entry
    if status == "hit" and entry is not None:
        headers += [
            (b"age", b"%d" % entry.age(time.time())),
            (b"x-modelway-provider", header_value(entry.provider).encode()),
            (b"x-modelway-model", header_value(entry.model).encode()),
        ]
    return headers


def json_answer(body: bytes, outcome: Outcome) -> JsonAnswer:
    """A JSON answer with the outcome headers, encoded once rather than through a dict."""
    response = JsonAnswer(body)
    response.raw_headers += [
        (b"x-modelway-provider", header_value(outcome.target.backend.name).encode()),
        (b"x-modelway-model", header_value(outcome.target.model).encode()),
        (b"x-modelway-attempts", str(outcome.attempts).encode()),
    ]
    if outcome.fallback is not None:
        response.raw_headers.append(
            (b"x-modelway-fallback", header_value(outcome.fallback).encode())
        )
    return response
