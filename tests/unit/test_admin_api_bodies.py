"""How the admin API reads bodies, dates and expiries (the HTTP side is in integration)."""

from __future__ import annotations

import pytest

from modelway.errors import BadRequest
from modelway.gateway.admin_api import NewKey, decode_body, expiry_of, since_epoch

NOW = 1_900_000_000.0


def test_a_wrong_type_names_the_field() -> None:
    with pytest.raises(BadRequest, match=r"^rpm: expected `int \| null`, got `str`$"):
        decode_body(b'{"name": "x", "rpm": "ten"}', NewKey)


def test_a_wrong_item_names_its_position() -> None:
    with pytest.raises(BadRequest, match=r"^models\[1\]: expected `str`"):
        decode_body(b'{"name": "x", "models": ["a", 2]}', NewKey)


def test_an_unknown_field_is_named() -> None:
    with pytest.raises(BadRequest, match="unknown field `owner`"):
        decode_body(b'{"name": "x", "owner": "me"}', NewKey)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"name": "x", "owner_user": "' + b"u" * 201 + b'"}', "owner_user"),
        (b'{"name": "x", "owner_team": "' + b"t" * 201 + b'"}', "owner_team"),
        (b'{"name": "x", "models": ["' + b"m" * 257 + b'"]}', "models[0]"),
        (b'{"name": "x", "models": [' + b",".join([b'"m"'] * 257) + b"]}", "models"),
    ],
)
def test_every_text_that_reaches_the_records_has_a_bound(body: bytes, field: str) -> None:
    with pytest.raises(BadRequest, match=rf"^{field.replace('[', '.').replace(']', '.')}:"):
        decode_body(body, NewKey)


def test_broken_json_says_so() -> None:
    with pytest.raises(BadRequest, match="not valid JSON"):
        decode_body(b'{"name": ', NewKey)


def test_a_minimal_body_gets_the_defaults() -> None:
    new = decode_body(b'{"name": "ci"}', NewKey)
    assert (new.models, new.budget_period, new.metadata) == ([], "month", {})


def test_expiry_in_days_counts_from_now() -> None:
    assert expiry_of(NewKey(name="x", expires_in_days=2), NOW) == NOW + 2 * 86_400


def test_expiry_without_an_offset_is_utc() -> None:
    new = decode_body(b'{"name": "x", "expires_at": "2031-01-01T00:00:00"}', NewKey)
    assert expiry_of(new, NOW) == 1_924_992_000.0


def test_an_expiry_in_the_past_is_refused() -> None:
    with pytest.raises(BadRequest, match="expires_at"):
        expiry_of(NewKey(name="x", expires_at=NOW - 1), NOW)


def test_since_is_utc_midnight_of_a_date() -> None:
    assert since_epoch("2031-01-01") == 1_924_992_000.0
    assert since_epoch("2031-01-01T01:00:00+01:00") == 1_924_992_000.0
    assert since_epoch(None) is None


def test_since_that_is_not_a_date_is_refused() -> None:
    with pytest.raises(BadRequest, match=r"^since: a date like"):
        since_epoch("last tuesday")
