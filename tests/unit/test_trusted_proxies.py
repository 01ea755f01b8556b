"""Behind a trusted reverse proxy (``server.trusted_proxies``): the client's own address
for the failed-key limits, the scheme it used for the admin cookie; nobody else's
forwarded headers are believed."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelway.config import ConfigError, parse_config
from modelway.gateway.app import Gateway, create_app
from modelway.gateway.proxies import MAX_HOPS, TrustedProxies, parse_networks
from tests.unit.test_key_guessing import MASTER, wrong_key
from tests.unit.test_rsgi_bridge import Headers, Protocol, Scope
from tests.unit.test_store_keys import cheap_argon2  # noqa: F401  (autouse)

PROXY = "10.0.0.5"
PROXIES = TrustedProxies(parse_networks(["10.0.0.0/8", "fd00::/8"]))


def test_an_untrusted_peer_is_the_client_whatever_it_forwards() -> None:
    assert PROXIES.client("203.0.113.7", ["198.51.100.1"]) == "203.0.113.7"
    assert PROXIES.scheme("203.0.113.7", "http", ["https"]) == "http"
    assert TrustedProxies().client(PROXY, ["198.51.100.1"]) == PROXY  # none trusted: default


def test_a_trusted_proxy_names_the_client_and_the_scheme() -> None:
    assert PROXIES.client(PROXY, ["198.51.100.1"]) == "198.51.100.1"
    assert PROXIES.scheme(PROXY, "http", ["https"]) == "https"
    assert PROXIES.scheme(PROXY, "http", ["HTTPS"]) == "https"
    assert PROXIES.client(PROXY, []) == PROXY  # it said nothing: it is all we know


def test_only_the_hops_trusted_proxies_added_are_skipped() -> None:
    # The client wrote the first entry itself: never believed past the first untrusted hop.
    chain = ["1.2.3.4, 198.51.100.1", "10.0.0.9"]
    assert PROXIES.client(PROXY, chain) == "198.51.100.1"
    assert PROXIES.client(PROXY, ["10.1.1.1, 10.2.2.2"]) == "10.1.1.1"  # all proxies
    assert PROXIES.client(PROXY, ["198.51.100.1, not-an-address"]) == PROXY
    assert PROXIES.client("fd00::1", ["[2001:db8::1]:4711"]) == "2001:db8::1"
    assert PROXIES.client(PROXY, ["198.51.100.1:4711"]) == "198.51.100.1"


def test_the_last_forwarded_scheme_counts_and_only_http_or_https() -> None:
    assert PROXIES.scheme(PROXY, "http", ["http, https"]) == "https"
    # A client's own header line first, the proxy's appended after it: the proxy's counts.
    assert PROXIES.scheme(PROXY, "http", ["https", "http"]) == "http"
    assert PROXIES.scheme(PROXY, "http", ["wss"]) == "http"
    assert PROXIES.scheme(PROXY, "https", []) == "https"


def test_a_proxy_seen_as_an_ipv4_mapped_address_is_still_that_proxy() -> None:
    # A dual-stack listener reports an IPv4 peer as ::ffff:a.b.c.d.
    assert PROXIES.trusts("::ffff:10.0.0.5")
    assert PROXIES.client("::ffff:10.0.0.5", ["::ffff:198.51.100.1"]) == "198.51.100.1"


def test_a_long_chain_is_read_no_further_than_max_hops() -> None:
    chain = ["198.51.100.1, " + ", ".join(["10.0.0.1"] * (MAX_HOPS + 5))]
    assert PROXIES.client(PROXY, chain) == "10.0.0.1"  # the untrusted client is beyond reach


hops = st.one_of(
    st.ip_addresses().map(str),
    st.text(max_size=40),
    st.sampled_from(["10.0.0.1", "fd00::7", "[fd00::7]:80", "", " ", ",", "::"]),
)


@given(st.lists(st.lists(hops, max_size=6).map(", ".join), max_size=3), st.text(max_size=30))
def test_whatever_is_forwarded_the_answer_is_an_address_and_no_error(
    forwarded: list[str], proto: str
) -> None:
    client = PROXIES.client(PROXY, forwarded)
    assert client is not None
    ipaddress.ip_address(client)
    assert PROXIES.scheme(PROXY, "http", [proto]) in ("http", "https")


def test_a_bad_entry_in_the_setting_is_refused_with_its_value() -> None:
    with pytest.raises(ConfigError, match=r"'proxy\.internal' is not an IP address or CIDR"):
        parse_config("server:\n  trusted_proxies: [10.0.0.0/8, proxy.internal]\n", {})
    config = parse_config("server:\n  trusted_proxies: [10.0.0.0/8, '::1']\n", {})
    assert config.server.trusted_proxies == ["10.0.0.0/8", "::1"]


# --- through the gateway --------------------------------------------------------------------


@pytest.fixture
async def app_and_key(tmp_path: Path) -> AsyncIterator[tuple[Gateway, str]]:
    environ = {"MODELWAY_DATA_DIR": str(tmp_path), "MODELWAY_MASTER_KEY": MASTER}
    settings = "server:\n  trusted_proxies: [10.0.0.0/8]\n  key_checks: {failures_per_address: 2}\n"
    app = create_app(parse_config(settings, environ), environ)
    async with app.lifespan():
        _, plaintext = await app.state.gateway.store.keys.create("ci")
        yield app, plaintext


def through(app: Gateway, peer: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1")


async def statuses(http: httpx.AsyncClient, real: str, forwarded_for: str, first: int) -> list[int]:
    """Three wrong keys (each new, so each is checked) from one forwarded client."""
    answers = []
    for n in range(first, first + 3):
        headers = {"x-api-key": wrong_key(real, n), "x-forwarded-for": forwarded_for}
        answers.append((await http.get("/v1/models", headers=headers)).status_code)
    return answers


async def test_clients_behind_a_trusted_proxy_have_failed_key_limits_of_their_own(
    app_and_key: tuple[Gateway, str],
) -> None:
    app, plaintext = app_and_key
    async with through(app, PROXY) as http:
        assert await statuses(http, plaintext, "203.0.113.7", 0) == [401, 401, 429]
        # Another client behind the same proxy is not held back by the first one's guesses.
        assert await statuses(http, plaintext, "198.51.100.20", 10) == [401, 401, 429]


async def test_an_untrusted_peer_cannot_dodge_its_limit_by_forwarding_other_addresses(
    app_and_key: tuple[Gateway, str],
) -> None:
    app, plaintext = app_and_key
    async with through(app, "192.0.2.50") as http:
        assert await statuses(http, plaintext, "203.0.113.1", 0) == [401, 401, 429]
        assert (await statuses(http, plaintext, "203.0.113.2", 10))[0] == 429


async def test_the_rsgi_chat_path_counts_failures_per_forwarded_client(
    app_and_key: tuple[Gateway, str],
) -> None:
    from modelway.gateway.rsgi import RsgiGateway

    app, plaintext = app_and_key
    gateway = RsgiGateway(app, app.state.gateway.config.server)

    async def chat(n: int, forwarded_for: str) -> int:
        headers = Headers(
            [
                ("content-type", "application/json"),
                ("x-api-key", wrong_key(plaintext, n)),
                ("x-forwarded-for", forwarded_for),
            ]
        )
        protocol = Protocol(body=b'{"model":"mock/echo","messages":[]}')
        scope = Scope(headers, method="POST", path="/v1/chat/completions", client=f"{PROXY}:1")
        await gateway.__rsgi__(scope, protocol)
        assert protocol.answered is not None
        return protocol.answered[0]

    assert [await chat(n, "203.0.113.7") for n in range(3)] == [401, 401, 429]
    assert [await chat(n, "198.51.100.20") for n in range(10, 13)] == [401, 401, 429]


async def test_the_admin_cookie_is_secure_when_a_trusted_proxy_says_the_client_used_https(
    tmp_path: Path,
) -> None:
    environ = {"MODELWAY_DATA_DIR": str(tmp_path), "MODELWAY_MASTER_KEY": MASTER}
    app = create_app(parse_config("server:\n  trusted_proxies: [10.0.0.5]\n", environ), environ)
    sign_in = {"master_key": MASTER}
    https = {"x-forwarded-proto": "https"}
    async with app.lifespan():
        async with through(app, PROXY) as http:
            behind = await http.post("/admin/api/session", json=sign_in, headers=https)
        async with through(app, "192.0.2.50") as http:
            spoofed = await http.post("/admin/api/session", json=sign_in, headers=https)
    assert behind.status_code == spoofed.status_code == 200
    assert "secure" in behind.headers["set-cookie"].lower()
    assert "secure" not in spoofed.headers["set-cookie"].lower()
