"""What routing produces: the targets that can answer a call, in the order to try them."""

from __future__ import annotations

from typing import NamedTuple

from modelway.config import Timeouts
from modelway.providers.upstream import Backend
from modelway.routing.deployments import DeploymentState


class Target(NamedTuple):
    """One provider call that can answer: which backend, and the upstream model name."""

    backend: Backend
    model: str
    #: Live state of an alias's deployment; direct ``provider/model`` calls have none.
    deployment: DeploymentState | None = None
    weight: int = 1
    #: The fallback model (alias or name) this target came from, if it is one.
    fallback: str | None = None


class Route(NamedTuple):
    """Targets to try in order, the retry budget per target, and the timeouts."""

    targets: list[Target]
    retries: int
    timeouts: Timeouts
    alias: str | None
    #: The call's token estimate (prompt bytes and ``max_tokens``), reserved against a
    #: deployment's own TPM cap before it is asked, as a key's TPM reserves it.
    tokens: int = 0
