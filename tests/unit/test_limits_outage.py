"""While Redis is unreachable: skip it for a moment, log the outage once each way."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from modelway.limits.outage import RedisOutage
from modelway.outages import Outage, transient


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_after_a_failure_redis_is_skipped_for_a_pause_then_tried_again() -> None:
    clock = FakeClock()
    outage = RedisOutage(pause=1.0, clock=clock)
    assert not outage.skipping()
    outage.failed(ConnectionError("refused"))
    assert outage.down and outage.skipping()
    clock.now += 1.0
    assert not outage.skipping()  # time to try Redis again
    outage.succeeded()
    assert not outage.down


def test_an_outage_is_one_warning_with_its_cause_and_one_line_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    outage = RedisOutage(clock=clock)
    with caplog.at_level(logging.INFO, logger="modelway.limits"):
        for _ in range(3):
            outage.failed(ConnectionError("Connection refused"))
            clock.now += 2
        outage.succeeded()
        outage.succeeded()
    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert messages == [
        (
            logging.WARNING,
            "Redis unreachable (ConnectionError: Connection refused); rate limits fall back "
            "to each replica's share in memory, budgets are not checked until it answers again",
        ),
        (logging.WARNING, "Redis answers again after 6.0 s"),
    ]
    assert all(record.exc_info is None for record in caplog.records)  # no traceback


def test_each_outage_counts_once() -> None:
    before = RedisOutage.episodes
    outage = RedisOutage(clock=FakeClock())
    outage.failed(ConnectionError("refused"))
    outage.failed(ConnectionError("refused"))
    outage.succeeded()
    outage.failed(TimeoutError("timed out"))
    assert RedisOutage.episodes == before + 2


def test_a_cause_spanning_lines_is_logged_on_one(caplog: pytest.LogCaptureFixture) -> None:
    outage = Outage("store", "records spill")
    with caplog.at_level(logging.WARNING, logger="modelway.outages"):
        outage.failed(OSError("connection refused\nIs the server running on that host?"))
    assert caplog.records[0].getMessage() == (
        "store unreachable (OSError: connection refused); records spill until it answers again"
    )


def test_connection_errors_and_driver_errors_are_transient_bugs_are_not() -> None:
    from sqlalchemy.exc import OperationalError

    assert transient(ConnectionRefusedError(111, "refused"))
    assert transient(TimeoutError())
    assert transient(OperationalError("SELECT 1", {}, OSError("gone")))
    assert not transient(KeyError("bug"))
    assert not transient(TypeError("bug"))


def test_a_postgres_restart_mid_insert_is_transient_a_bug_while_handling_one_is_not() -> None:
    """What a batch insert raised when PostgreSQL was restarted under it (seen in a
    chaos run): asyncpg's "connection is closed" while it handled the lost connection."""
    from asyncpg.exceptions import AdminShutdownError, ConnectionDoesNotExistError
    from asyncpg.exceptions._base import InterfaceError

    def raised(make: Callable[[], BaseException], during: BaseException) -> BaseException:
        try:
            try:
                raise during
            except BaseException:
                raise make()  # noqa: B904 (implicit chaining, as asyncpg raises it)
        except BaseException as error:
            return error

    lost = ConnectionDoesNotExistError("connection was closed in the middle of operation")
    lost.__cause__ = AdminShutdownError("terminating connection due to administrator command")
    closed = raised(lambda: InterfaceError("the underlying connection is closed"), lost)
    assert transient(closed)
    assert transient(AdminShutdownError("terminating connection"))
    assert not transient(raised(lambda: KeyError("a bug"), OSError("refused")))
    assert not transient(raised(lambda: InterfaceError("another operation is in progress"),
                                KeyError("a bug")))  # fmt: skip
