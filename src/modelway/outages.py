"""An unreachable dependency (the store, Redis): one warning as it begins, one at its end.

Transient failures of a shared dependency are expected in a replicated deployment (a
database failover, a Redis restart). What an operator needs is when the outage began and
why, and when it ended — not a traceback per failed call. Every user of the dependency in
a process reports into one ``Outage``, so one outage is two log lines however many calls
failed during it; the state is also shown by ``GET /health`` and ``modelway_dependency_up``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger("modelway.outages")


class Outage:
    """Whether ``name`` is down, as its users last saw it, with one log line each way."""

    __slots__ = ("_clock", "_consequence", "_down", "_log", "_since", "name")

    def __init__(
        self,
        name: str,
        consequence: str,
        *,
        logger: logging.Logger = log,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        #: What the gateway does meanwhile, stated in the warning ("usage records are spilled").
        self._consequence = consequence
        self._log = logger
        self._clock = clock
        self._down = False
        self._since = 0.0

    @property
    def down(self) -> bool:
        """Whether the last call to the dependency failed."""
        return self._down

    def failed(self, error: BaseException) -> bool:
        """Record a failure; the first of an outage is logged (one line). True if it began now."""
        if self._down:
            return False
        self._down = True
        self._since = self._clock()
        cause = f"{type(error).__name__}: {error}".strip().rstrip(":")
        self._log.warning(
            "%s unreachable (%s); %s until it answers again",
            self.name,
            _one_line(cause),
            self._consequence,
            extra={"dependency": self.name, "error": _one_line(cause)},
        )
        return True

    def succeeded(self) -> bool:
        """Record a working call; an outage's end is logged (one line). True if it ended now."""
        if not self._down:
            return False
        self._down = False
        seconds = self._clock() - self._since
        self._log.warning(
            "%s answers again after %.1f s",
            self.name,
            seconds,
            extra={"dependency": self.name, "error": None, "outage_seconds": round(seconds, 3)},
        )
        return True


def transient(error: BaseException) -> bool:
    """Whether ``error`` is the kind a dependency's outage raises (a lost connection, a
    refused one, a timeout, a database shutting down), not a bug worth a traceback: it,
    or what it was raised from, or — for asyncpg's "the underlying connection is closed"
    (``InterfaceError``), raised while asyncpg handled the lost connection — what it
    was raised while handling."""
    from asyncpg.exceptions import (  # type: ignore[import-untyped]
        OperatorInterventionError,
        PostgresConnectionError,
    )
    from asyncpg.exceptions._base import InterfaceError  # type: ignore[import-untyped]
    from sqlalchemy.exc import DBAPIError, DisconnectionError  # the store's driver errors

    kinds = (
        OSError,
        TimeoutError,
        ConnectionError,
        DBAPIError,
        DisconnectionError,
        PostgresConnectionError,  # class 08: connection exceptions
        OperatorInterventionError,  # class 57: admin shutdown, cannot connect now
    )
    seen = 0
    current: BaseException | None = error
    while current is not None and seen < 8:
        if isinstance(current, kinds):
            return True
        if current.__cause__ is not None:
            current = current.__cause__
        elif isinstance(current, InterfaceError):
            current = current.__context__
        else:
            return False
        seen += 1
    return False


def _one_line(text: str, limit: int = 300) -> str:
    """A cause fit for one log line: drivers put SQL and hints on further lines."""
    first = text.splitlines()[0] if text else text
    return first if len(first) <= limit else first[: limit - 1] + "…"
