"""The cache's policy: the ``cache:`` section with each alias's override, ``Cache-Control``
request directives, determinism, and whose namespace an entry lives in."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelway.cache import (
    NO_DIRECTIVES,
    CacheControl,
    CachePolicy,
    deterministic,
    namespace_of,
    parse_cache_control,
    parse_namespace,
    policy_for,
)
from modelway.calls import ANONYMOUS, MASTER, Caller
from modelway.config import AliasCache, CacheNamespace, CacheSettings, ConfigError, parse_config
from modelway.types import ChatRequest, Message


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, NO_DIRECTIVES),
        ("", NO_DIRECTIVES),
        ("no-cache", CacheControl(no_cache=True)),
        ("No-Store", CacheControl(no_store=True)),
        ("no-cache, no-store", CacheControl(True, True)),
        ("max-age=60", CacheControl(max_age=60)),
        ('max-age="5"', CacheControl(max_age=5)),
        ("max-age=0, no-store", CacheControl(no_store=True, max_age=0)),
        ("max-age=60, max-age=5", CacheControl(max_age=60)),  # the first counts
        ("max-age=-1", NO_DIRECTIVES),
        ("max-age=1e3", NO_DIRECTIVES),
        ("max-age=٣", NO_DIRECTIVES),  # digits, but not ASCII ones
        ("private, must-revalidate, foo=bar", NO_DIRECTIVES),
        (",,,=", NO_DIRECTIVES),
    ],
)
def test_cache_control_request_directives(header: str | None, expected: CacheControl) -> None:
    assert parse_cache_control(header) == expected


def test_no_cache_with_no_store_leaves_the_cache_nothing_to_do() -> None:
    assert CacheControl(no_cache=True, no_store=True).moot
    assert not CacheControl(no_cache=True).moot


def test_the_section_turns_the_cache_on_and_an_alias_overrides_it() -> None:
    section = CacheSettings(ttl=60, namespace="key", deterministic_only=False)
    assert policy_for(None, None) is None
    assert policy_for(section, None) == CachePolicy(60, "key", False)
    assert policy_for(section, False) is None
    assert policy_for(section, AliasCache(enabled=False)) is None
    assert policy_for(section, AliasCache(ttl=5, namespace="shared")) == CachePolicy(
        5, "shared", False
    )
    # Without a section an alias may still turn it on, with the defaults.
    assert policy_for(None, True) == CachePolicy(300.0, "team", True)


def test_the_config_takes_a_section_and_alias_cache_as_a_flag_or_a_mapping() -> None:
    config = parse_config(
        """
cache: {ttl: 300}
models:
  - {name: a, cache: false, deployments: [{provider: mock, model: echo}]}
  - {name: b, cache: true, deployments: [{provider: mock, model: echo}]}
  - name: c
    cache: {ttl: 10, namespace: shared}
    deployments: [{provider: mock, model: echo}]
""",
        {},
    )
    assert config.cache == CacheSettings(ttl=300)
    assert [alias.cache for alias in config.models] == [
        False,
        True,
        AliasCache(ttl=10, namespace="shared"),
    ]
    with pytest.raises(ConfigError, match="namespace"):
        parse_config("cache: {namespace: everyone}\n", {})


def test_deterministic_requests_ask_for_temperature_zero_or_a_seed() -> None:
    question = [Message(role="user")]
    assert deterministic(ChatRequest(model="m", messages=question, temperature=0))
    assert deterministic(ChatRequest(model="m", messages=question, extra={"seed": 3}))
    assert not deterministic(ChatRequest(model="m", messages=question))
    assert not deterministic(ChatRequest(model="m", messages=question, temperature=0.7))


def test_one_tenant_never_shares_a_namespace_with_another() -> None:
    red = Caller(key_id="k1", name="a", team="red")
    red_too = Caller(key_id="k2", name="b", team="red")
    loner = Caller(key_id="k3", name="c")
    assert namespace_of(red, "team") == namespace_of(red_too, "team") == "team:red"
    assert namespace_of(red, "key") != namespace_of(red_too, "key")
    assert namespace_of(loner, "team") == "key:k3"  # no team: the key is the tenant
    assert namespace_of(ANONYMOUS, "team") == "open"
    assert namespace_of(MASTER, "team") == "master"
    assert {namespace_of(c, "shared") for c in (red, loner, ANONYMOUS)} == {"shared"}


_KEYS = st.tuples(st.text(min_size=1, max_size=32), st.none() | st.text(max_size=200))
_CALLERS = st.sampled_from([ANONYMOUS, MASTER]) | _KEYS.map(
    lambda key: Caller(key_id=key[0], name="k", team=key[1])
)


@given(_CALLERS, st.sampled_from(["team", "key", "shared"]))
def test_every_namespace_a_caller_gets_reads_back_as_its_team_key_or_fixed_name(
    caller: Caller, mode: CacheNamespace
) -> None:
    parsed = parse_namespace(namespace_of(caller, mode))
    if mode == "team" and caller.team is not None:
        assert parsed == ("team", caller.team)
    elif mode != "shared" and caller.key_id is not None:
        assert parsed == ("key", caller.key_id)
    else:
        assert parsed is not None and parsed[0] == "fixed"


@pytest.mark.parametrize("text", ["*", "", "team", "key:", "shared:x", "Team:red", "keys:k1"])
def test_text_no_caller_gets_is_no_namespace(text: str) -> None:
    assert parse_namespace(text) is None
