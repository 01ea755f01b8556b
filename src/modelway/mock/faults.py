"""Faults ``modelway mock`` injects on demand, so gateway tests can meet every failure.

A fault is named per request in the ``x-mock-fault`` header (comma-separated) or for
every request in ``MockSettings.faults``:

    error:<status>          answer with that status, in the route's dialect
    slow-head:<ms>          wait before the answer's status line and headers
    slow-first-token:<ms>   wait before the first chunk (or the whole answer)
    stall:<ms>              wait after the first chunk
    truncate                end the stream early, without its finish marker
    corrupt                 one chunk (or the body) of invalid JSON
    drop                    close the connection abruptly mid-body
    times:<n>               only the first n requests sending this same header value
                            meet its faults; later ones are answered normally
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from modelway.errors import (
    AuthenticationError,
    BadRequest,
    ModelwayError,
    NotFound,
    PermissionDenied,
    RateLimited,
)

FAULT_HEADER = "x-mock-fault"
RETRY_AFTER_HEADER = "x-mock-retry-after"
#: Statuses that carry ``Retry-After``, as real providers send it.
RETRY_AFTER_STATUSES = frozenset({429, 503})

_FLAGS = frozenset({"truncate", "corrupt", "drop"})
_WITH_VALUE = frozenset({"error", "slow-head", "slow-first-token", "stall", "times"})


class Fault(NamedTuple):
    """One named fault; ``value`` is the status or the milliseconds it takes."""

    kind: str
    value: int = 0


@dataclass(frozen=True)
class FaultPlan:
    """What to do wrong while answering one request."""

    error_status: int | None = None
    retry_after: str = "1"
    #: Seconds before anything is sent: an upstream that takes the request and is silent.
    head_delay: float = 0.0
    first_token_delay: float = 0.0
    stall: float = 0.0
    truncate: bool = False
    corrupt: bool = False
    drop: bool = False


NO_FAULTS = FaultPlan()


def parse_fault(text: str) -> Fault:
    """The fault a spec like ``error:503`` names; ``ValueError`` for anything else."""
    kind, _, value = text.strip().partition(":")
    if kind in _FLAGS and not value:
        return Fault(kind)
    if kind in _WITH_VALUE and value.strip().isdigit():
        number = int(value)
        if kind == "error" and not 400 <= number <= 599:
            raise ValueError(f"fault {text!r}: the status must be 400-599")
        return Fault(kind, number)
    raise ValueError(
        f"unknown fault {text!r}; expected error:<status>, slow-head:<ms>, slow-first-token:<ms>, "
        "stall:<ms>, truncate, corrupt, drop or times:<n>"
    )


def parse_faults(specs: Iterable[str]) -> tuple[Fault, ...]:
    """Each spec parsed; a spec may hold several faults separated by commas."""
    return tuple(parse_fault(part) for spec in specs for part in spec.split(",") if part.strip())


def plan_faults(
    faults: Iterable[Fault],
    *,
    retry_after: str | None = None,
    fail_rate: float = 0.0,
    rng: random.Random | None = None,
) -> FaultPlan:
    """Combine faults into one plan; ``fail_rate`` adds a random 500 drawn from ``rng``."""
    error_status: int | None = None
    head_delay = first_token_delay = stall = 0.0
    flags: set[str] = set()
    for fault in faults:
        if fault.kind == "error":
            error_status = fault.value
        elif fault.kind == "slow-head":
            head_delay += fault.value / 1000
        elif fault.kind == "slow-first-token":
            first_token_delay += fault.value / 1000
        elif fault.kind == "stall":
            stall += fault.value / 1000
        elif fault.kind == "times":
            continue  # applied by the server, which counts requests per header value
        else:
            flags.add(fault.kind)
    if error_status is None and fail_rate > 0 and rng is not None and rng.random() < fail_rate:
        error_status = 500
    if error_status is None and not (head_delay or first_token_delay or stall or flags):
        return NO_FAULTS
    return FaultPlan(
        error_status=error_status,
        retry_after=retry_after or "1",
        head_delay=head_delay,
        first_token_delay=first_token_delay,
        stall=stall,
        truncate="truncate" in flags,
        corrupt="corrupt" in flags,
        drop="drop" in flags,
    )


_ERRORS_BY_STATUS: dict[int, type[ModelwayError]] = {
    400: BadRequest,
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
}


def fault_error(status: int, retry_after: str = "1") -> ModelwayError:
    """The error a dialect encodes for an ``error:<status>`` fault."""
    message = f"mock fault: error {status}"
    error: ModelwayError
    if status == 429:
        error = RateLimited(message, retry_after=_seconds(retry_after))
    else:
        error = _ERRORS_BY_STATUS.get(status, ModelwayError)(message)
        error.status = status
    return error


def fault_headers(plan: FaultPlan) -> dict[str, str]:
    """Headers an error fault carries: ``Retry-After`` on 429 and 503."""
    if plan.error_status in RETRY_AFTER_STATUSES:
        return {"retry-after": plan.retry_after}
    return {}


def _seconds(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


# --- how faults look on the wire -------------------------------------------------------


class ConnectionDropped(Exception):
    """Raised on purpose mid-body: uvicorn then closes the socket without ending the response."""


class DroppedBody(Response):
    """Announces the whole body's length, sends half of it, then drops the connection."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        half = self.body[: len(self.body) // 2]
        await send({"type": "http.response.body", "body": half, "more_body": True})
        raise ConnectionDropped("mock fault: drop")


def corrupt_chunk(dialect: str, media_type: str) -> bytes:
    """One stream chunk, framed as the dialect frames them, whose JSON is cut off."""
    if "ndjson" in media_type:
        return b'{"model": "mock", "message": {"role": "assist\n'
    if dialect == "anthropic":
        return b'event: content_block_delta\ndata: {"type": "content_block_delta", "delta": \n\n'
    return b'data: {"id": "mock", "choices": [{"delta": \n\n'
