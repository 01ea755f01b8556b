"""What the gateway keeps for its lifetime; the one place app-wide state lives."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from modelway.config import Config
from modelway.engine import Engine, Outcome


@dataclass
class GatewayState:
    """The engine and settings every route uses."""

    config: Config
    engine: Engine
    started_at: float = field(default_factory=time.time)

    @property
    def max_body_bytes(self) -> int:
        return self.config.server.max_body_bytes


def outcome_headers(outcome: Outcome) -> dict[str, str]:
    """Response headers that say which provider and model answered, after how many tries."""
    return {
        "x-modelway-provider": outcome.target.backend.name,
        "x-modelway-model": outcome.target.model,
        "x-modelway-attempts": str(outcome.attempts),
    }
