"""Rate-limit header values and the reset durations written in OpenAI's style."""

from __future__ import annotations

import pytest

from modelway.limits import UNLIMITED, Ticket, format_reset


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0s"),
        (-3.0, "0s"),
        (0.0004, "1ms"),
        (0.001, "1ms"),
        (0.25, "250ms"),
        (1.0, "1s"),
        (59.5, "59.5s"),
        (59.73412, "59.735s"),
        (60.0, "1m0s"),
        (60.5, "1m0.5s"),
        (360.0, "6m0s"),
        (3723.0, "1h2m3s"),
    ],
)
def test_reset_durations_read_like_openais(seconds: float, text: str) -> None:
    assert format_reset(seconds) == text


def test_remaining_never_goes_below_zero_in_headers() -> None:
    ticket = Ticket("key:a", request_limit=10, requests_used=12, token_limit=100, tokens_used=150)
    headers = dict(ticket.headers)
    assert headers[b"x-ratelimit-remaining-requests"] == b"0"
    assert headers[b"x-ratelimit-remaining-tokens"] == b"0"


def test_token_limit_alone_gives_the_token_headers_only() -> None:
    ticket = Ticket("key:a", token_limit=1000, tokens_used=10, reset=0.2)
    assert ticket.headers == [
        (b"x-ratelimit-limit-tokens", b"1000"),
        (b"x-ratelimit-remaining-tokens", b"990"),
        (b"x-ratelimit-reset-tokens", b"200ms"),
    ]


def test_the_unlimited_ticket_carries_no_headers() -> None:
    assert UNLIMITED.headers == []
