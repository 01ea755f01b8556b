"""Live facts about each deployment: calls in flight, time to first token, cooldown.

A deployment is *healthy*, *cooling* (skipped after ``failures`` failures within
``window`` seconds, or while an upstream's ``Retry-After`` runs), or *probing* (its rest
is over and the next request is let through, alone: a success makes it healthy, a
failure cools it down again; a 429 that says how long rests it that long). Strategies
read ``in_flight`` and ``latency``.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any, Literal

from modelway.config import Cooldown
from modelway.errors import ModelwayError, RateLimited

log = logging.getLogger("modelway.routing")
#: Weight of the newest sample in the moving average of time to first token.
LATENCY_SMOOTHING = 0.3
#: A ``Retry-After`` honoured for a deployment is capped so a bogus value cannot bench it.
MAX_REST_SECONDS = 300.0

Condition = Literal["healthy", "cooling", "probing"]
#: Why a rest began: the upstream asked (a 429 or 503 with ``Retry-After``), failures
#: within the window, or a probe that failed. Only the last two are the deployment's fault.
Rest = Literal["retry_after", "failures", "probe_failed"]


class DeploymentState:
    """One deployment's counters; updated by the engine around every attempt."""

    __slots__ = (
        "_cooldown",
        "_failures",
        "_probe_running",
        "_rest_reason",
        "_resting_for",
        "cooled_until",
        "in_flight",
        "latency",
        "name",
        "rate_limited",
        "rests",
        "rpm",
        "tpm",
    )

    def __init__(
        self, name: str, cooldown: Cooldown, rpm: int | None = None, tpm: int | None = None
    ) -> None:
        self.name = name
        #: The deployment's own caps (a provider's quota for this key), enforced per minute.
        self.rpm = rpm
        self.tpm = tpm
        self._cooldown = cooldown
        self.in_flight = 0
        #: Moving average of seconds to the first byte of an answer; ``None`` until measured.
        self.latency: float | None = None
        self.cooled_until = 0.0
        #: How many times it has been benched, by why (``Rest``).
        self.rests: dict[Rest, int] = {"retry_after": 0, "failures": 0, "probe_failed": 0}
        self._resting_for: Rest | None = None
        self._failures: deque[float] = deque()
        #: Why the current (or last) rest began: "3 failures", "upstream asked to wait 30 s".
        self._rest_reason = ""
        self._probe_running = False
        #: The current rest is the upstream's own rate limit (a 429's Retry-After).
        self.rate_limited = False

    @property
    def cooldowns(self) -> int:
        """How many times it has been benched, for any reason."""
        return sum(self.rests.values())

    @property
    def probe_running(self) -> bool:
        """Whether the call probing it after a rest is under way (probing, and not idle)."""
        return self._probe_running

    @property
    def limit_scope(self) -> str:
        """The rate-limit scope of this deployment's own RPM/TPM caps."""
        return f"deployment:{self.name}"

    def condition(self, now: float | None = None) -> Condition:
        """Healthy, cooling (skipped), or probing (rest over, not yet proven)."""
        if self.cooled_until == 0.0:
            return "healthy"
        if (time.monotonic() if now is None else now) < self.cooled_until:
            return "cooling"
        return "probing"

    def admit(self, now: float) -> bool:
        """Whether a call may go here now; the first call after a rest becomes the probe."""
        condition = self.condition(now)
        if condition == "healthy":
            return True
        if condition == "cooling" or self._probe_running:
            return False
        self._probe_running = True
        log.info(
            "deployment %s: rest over, probing with one request",
            self.name,
            extra={"deployment": self.name, "state": "probing"},
        )
        return True

    def no_verdict(self) -> None:
        """An admitted call ended without saying whether the deployment answers (its caller
        left, its own RPM cap refused it): a probe's slot goes to the next call. Left
        taken, the deployment stayed "probing", refusing every call, until a restart."""
        self._probe_running = False

    def started(self) -> None:
        self.in_flight += 1

    def finished(self) -> None:
        self.in_flight -= 1

    def succeeded(self, first_byte_seconds: float, *, whole: bool = True) -> None:
        """An answer (or a stream's first bytes) arrived in ``first_byte_seconds``.

        A whole answer clears the deployment's recent failures; a stream's first bytes do
        not (``whole=False``): a stream that then breaks counts as a failure, and only one
        that ends well clears them (``stream_succeeded``). Either way a probe that got an
        answer brings the deployment back.
        """
        previous = self.latency
        self.latency = (
            first_byte_seconds
            if previous is None
            else previous + LATENCY_SMOOTHING * (first_byte_seconds - previous)
        )
        if self.cooled_until:
            log.info(
                "deployment %s: probe succeeded, back in rotation",
                self.name,
                extra={"deployment": self.name, "state": "healthy"},
            )
        self.cooled_until = 0.0
        self._probe_running = False
        if whole:
            self._failures.clear()

    def stream_succeeded(self) -> None:
        """A stream held on this deployment reached its end."""
        self._failures.clear()

    def failed(self, error: ModelwayError, now: float) -> None:
        """A failure the deployment is to blame for; enough of them cool it down."""
        probe, self._probe_running = self._probe_running, False
        if not error.retryable and not error.benches:
            # The request's own fault (400, 404, ...) says nothing about the deployment. An
            # upstream 401/403 (its own key refused) moves the call on without benching it:
            # some providers answer 403 to content they will not serve, so a caller could
            # otherwise bench a deployment for everyone.
            return
        retry_after = error.retry_after
        if retry_after and isinstance(error, RateLimited):
            # It said how long, which is the rest: its 429s are no failures that bench it
            # longer (a 7 s wait became the 30 s cooldown of 3 failures), nor is a probe's
            # (benched for the cooldown, its callers were told 503 for 30 s where the
            # upstream had said "429, wait 5 s").
            self._wait(now, retry_after, rate_limited=True)
            return
        if probe:
            # Never back sooner than the upstream asked, should it have said.
            self._rest(now, max(self._cooldown.seconds, retry_after or 0.0), "probe_failed")
            return
        if retry_after:
            # The upstream said when to come back: nobody asks it again sooner.
            self._wait(now, retry_after, rate_limited=False)
        failures = self._failures
        failures.append(now)
        while failures and failures[0] <= now - self._cooldown.window:
            failures.popleft()
        if len(failures) >= self._cooldown.failures:
            self._rest(now, self._cooldown.seconds, "failures")

    def _wait(self, now: float, retry_after: float, *, rate_limited: bool) -> None:
        """Rest as long as the upstream's ``Retry-After`` asked (capped)."""
        until = now + min(float(retry_after), MAX_REST_SECONDS)
        if until <= self.cooled_until:
            return
        self._begin_rest(now, until, "retry_after")
        self.rate_limited = rate_limited
        self._rest_reason = f"upstream asked to wait {float(retry_after):.0f} s"
        log.info(
            "deployment %s: upstream asked to wait %.1f s",
            self.name,
            retry_after,
            extra={"deployment": self.name, "state": "cooling", "seconds": retry_after},
        )

    def _rest(self, now: float, seconds: float, why: Rest) -> None:
        """Cool down for ``seconds`` after failures (or a failed probe)."""
        until = now + seconds
        if until > self.cooled_until:
            self._begin_rest(now, until, why)
            self.rate_limited = False
            count = len(self._failures)
            reason = (
                f"{count} failure{'s' if count > 1 else ''}"
                if why == "failures"
                else "probe failed"
            )
            self._rest_reason = reason
            log.warning(
                "deployment %s cooled down for %.1f s (%s)",
                self.name,
                seconds,
                reason,
                extra={
                    "deployment": self.name,
                    "state": "cooling",
                    "seconds": seconds,
                    "reason": reason,
                },
            )
        self._failures.clear()

    def _begin_rest(self, now: float, until: float, why: Rest) -> None:
        """Rest until ``until``: counted as ``why`` when a rest begins, or when one under way
        is lengthened for another reason (failures that outlast a Retry-After)."""
        if self.cooled_until <= now or self._resting_for != why:
            self.rests[why] += 1
        self.cooled_until = until
        self._resting_for = why

    def snapshot(self, now: float) -> dict[str, Any]:
        """What ``/health`` shows about this deployment."""
        condition = self.condition(now)
        return {
            "deployment": self.name,
            "state": condition,
            "in_flight": self.in_flight,
            "latency_ms": None if self.latency is None else round(self.latency * 1000, 1),
            # Failures counting towards the next rest: a rest that begins starts them over.
            "recent_failures": len(self._failures),
            "cooling_for_seconds": round(self.cooled_until - now, 1)
            if condition == "cooling"
            else 0.0,
            "cooling_because": self._rest_reason if condition != "healthy" else None,
            "cooldowns": self.cooldowns,
        }
