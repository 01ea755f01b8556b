"""Failing open while Redis is unreachable: skip it for a moment, log the outage once."""

from __future__ import annotations

import logging

import pytest

from modelway.limits.outage import RedisOutage


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_after_a_failure_redis_is_skipped_for_a_pause_then_tried_again() -> None:
    clock = FakeClock()
    outage = RedisOutage("rate limits", pause=1.0, clock=clock)
    assert not outage.skipping()
    outage.failed(ConnectionError("refused"))
    assert outage.down and outage.skipping()
    clock.now += 1.0
    assert not outage.skipping()  # time to try Redis again
    outage.succeeded()
    assert not outage.down


def test_an_outage_is_logged_loudly_once_and_its_end_too(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    outage = RedisOutage("rate limits", clock=clock)
    with caplog.at_level(logging.WARNING, logger="modelway.limits"):
        for _ in range(3):
            outage.failed(ConnectionError("Connection refused"))
            clock.now += 2
        outage.succeeded()
        outage.succeeded()
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "failing open, rate limits are NOT enforced" in errors[0].getMessage()
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "rate limits: Redis answers again; enforcing rate limits"
    ]
