"""One call's tries: an attempt kept in its deployment's health, when to ask the same
target again, and the error a call ends with once every target was tried.

``Engine.attempt_each`` drives them; the policy of how long to wait is ``routing.retry``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from modelway.errors import ModelwayError, RateLimited, Unavailable, UpstreamStatusError
from modelway.routing.deployments import DeploymentState
from modelway.routing.retry import backoff_seconds, should_retry_same_target
from modelway.routing.targets import Route, Target

T = TypeVar("T")
#: Seconds a deployment's rest may exceed the upstream's Retry-After and still be waited for.
REST_SLACK = 0.05


def resting_error(route: Route) -> Unavailable | RateLimited:
    """The error when no target could be asked, each resting: ``RateLimited`` when every
    one rests because its provider answered 429 (its Retry-After), as that 429 was;
    ``Unavailable`` (503) when any is cooling down after failures."""
    now = time.monotonic()
    states = [t.deployment for t in route.targets if t.deployment is not None]
    soonest = min((state.cooled_until - now for state in states), default=None)
    wait = None if soonest is None else max(soonest, 0.0)
    name = route.alias or "this model"
    if states and all(state.rate_limited for state in states):
        return UpstreamsRateLimited(
            f"every deployment of {name!r} is rate limited by its provider, which asked to wait",
            retry_after=wait,
        )
    return Unavailable(
        f"no deployment of {name!r} can be asked now: each is cooling down after failures",
        retry_after=wait,
    )


class UpstreamsRateLimited(RateLimited):
    """Every deployment rests after its provider's 429 asked it to wait: told as that 429
    (``except RateLimited`` catches it; ``retry_after`` is the soonest one frees up)."""


class AtCapacity(RateLimited):
    """Every deployment left to ask is at its own RPM/TPM cap (a 429 with Retry-After)."""


class Tries:
    """What ``attempt_each`` has tried so far: how many attempts, the last error, the deadline."""

    __slots__ = ("count", "deadline", "last_error", "seconds")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.count = 0
        self.last_error: ModelwayError | None = None
        #: Seconds the latest attempt took.
        self.seconds = 0.0

    def at_cap(self, refusal: RateLimited) -> None:
        """A deployment at its own RPM/TPM cap was passed over. Should none answer, the
        caller hears that, with the soonest any capped deployment frees up — not the
        deployment's limiter's words or ``x-ratelimit-*`` headers, which would read as
        the caller's own limits."""
        last = self.last_error
        wait = refusal.retry_after
        if isinstance(last, AtCapacity) and last.retry_after is not None:
            wait = last.retry_after if wait is None else min(wait, last.retry_after)
        self.last_error = AtCapacity(
            "every deployment that could answer is at its own rate limit", retry_after=wait
        )

    def failure(self, route: Route) -> ModelwayError:
        """The error to raise once every target has been tried."""
        error = self.last_error
        if error is None:
            return resting_error(route)
        if isinstance(error, UpstreamStatusError) and error.fails_over:
            error.blame_deployment_key()
        return error


async def attempt_once(
    target: Target,
    state: DeploymentState,
    attempt: Callable[[Target], Awaitable[T]],
    holds: bool,
) -> T:
    """One attempt, kept in its deployment's health; ``holds`` leaves it in flight on success."""
    started = time.monotonic()
    state.started()
    try:
        result = await attempt(target)
    except ModelwayError as error:
        state.finished()
        state.failed(error, time.monotonic())
        raise
    except BaseException:
        state.finished()
        state.no_verdict()
        raise
    state.succeeded(time.monotonic() - started, whole=not holds)
    if not holds:
        state.finished()
    return result


def retry_delay(
    state: DeploymentState | None, retry: int, error: ModelwayError, deadline: float
) -> float | None:
    """Seconds to wait before trying the same target again; None to move on instead."""
    if not should_retry_same_target(error):
        return None
    now = time.monotonic()
    delay = backoff_seconds(retry + 1, error)
    if state is not None:
        rest = state.cooled_until - now
        if rest > (error.retry_after or 0.0) + REST_SLACK:
            return None  # benched by its cooldown, not asked to wait: move on
        delay = max(delay, rest)
    return None if now + delay > deadline else delay
