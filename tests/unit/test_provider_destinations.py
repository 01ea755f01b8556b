"""A provider connected at run time is no way to read the gateway's network: its errors are
told by status alone, and link-local and cloud metadata addresses are refused."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from modelway.config import parse_config
from modelway.errors import UpstreamError, UpstreamStatusError
from modelway.gateway.app import Gateway, create_app
from modelway.gateway.state import GatewayState
from modelway.providers import destinations, registry
from modelway.providers.destinations import is_refused_address, refused_destination
from modelway.providers.lean_transport import LeanAiohttpTransport
from modelway.providers.registry import adapter_for
from modelway.providers.transport import (
    AiohttpTransport,
    MockReply,
    MockTransport,
    UpstreamRequest,
)
from modelway.providers.upstream import Call, HttpProvider
from modelway.secrets import Secret

SECRET = "AKIAIOSFODNN7EXAMPLE-internal-secret"
HELLO = {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


def internal_error(request: UpstreamRequest) -> MockReply:
    """An internal service's error page, with something in it nobody outside may read."""
    return MockReply(500, f'{{"error": {{"message": "db password {SECRET}"}}}}'.encode())


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("169.254.169.254", True),  # AWS, GCP, Azure, OpenStack metadata
        ("169.254.170.2", True),  # ECS task metadata
        ("fe80::1", True),
        ("100.100.100.200", True),  # Alibaba Cloud metadata
        ("fd00:ec2::254", True),  # AWS metadata over IPv6
        ("::ffff:169.254.169.254", True),  # the same, IPv4 in IPv6
        ("64:ff9b::a9fe:a9fe", True),  # the same through NAT64
        ("127.0.0.1", False),  # a local Ollama
        ("::1", False),
        ("10.0.0.5", False),  # a GPU box on the LAN
        ("192.168.1.20", False),
        ("100.100.100.199", False),
        ("104.18.0.1", False),
    ],
)
def test_link_local_and_metadata_addresses_are_refused_loopback_and_private_are_not(
    address: str, refused: bool
) -> None:
    assert is_refused_address(ipaddress.ip_address(address)) is refused


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data",
        "http://[fe80::1%25eth0]:11434",
        "http://metadata.google.internal/computeMetadata/v1",
        "http://METADATA.GOOGLE.INTERNAL./",
        "http://rebinds-to-metadata.example/v1",  # resolves to 169.254.169.254 (below)
    ],
)
async def test_a_metadata_url_is_refused_after_resolving_its_name(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def resolve(host: str) -> set[str]:
        return {"104.18.0.1", "169.254.169.254"}

    monkeypatch.setattr(destinations, "_resolve", resolve)
    reason = await refused_destination(url)
    assert reason is not None and "server.allow_link_local_provider_urls" in reason


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:11434", "http://10.0.0.5:8000/v1", "http://gpu-box.lan:8000/v1"]
)
async def test_a_local_or_private_url_is_accepted(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def resolve(host: str) -> set[str]:
        return {"192.168.1.20"}

    monkeypatch.setattr(destinations, "_resolve", resolve)
    assert await refused_destination(url) is None


@pytest.mark.parametrize(
    "url", ["http://" + "a" * 64 + ".example.com/v1", "http://a..example.com/v1"]
)
async def test_a_host_name_the_resolver_cannot_encode_is_refused_not_a_500(url: str) -> None:
    reason = await refused_destination(url)
    assert reason is not None and "not a valid host name" in reason


class FixedResolver(AbstractResolver):
    """Resolves every name to one address: a name an attacker re-points after connecting."""

    def __init__(self, address: str) -> None:
        self.address = address

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        family = socket.AF_INET6 if ":" in self.address else socket.AF_INET
        result: ResolveResult = {
            "hostname": host,
            "host": self.address,
            "port": port,
            "family": family,
            "proto": 0,
            "flags": socket.AI_NUMERICHOST,
        }
        return [result]

    async def close(self) -> None:
        return None


@pytest.mark.parametrize("transport_type", [AiohttpTransport, LeanAiohttpTransport])
@pytest.mark.parametrize(
    ("url", "resolver"),
    [
        ("http://169.254.169.254/latest/meta-data/", None),
        ("http://[::ffff:169.254.169.254]/latest/meta-data/", None),
        ("http://innocent.example/v1/chat/completions", FixedResolver("169.254.169.254")),
        ("http://innocent.example/v1/chat/completions", FixedResolver("fe80::1")),
    ],
)
async def test_every_connection_of_a_connected_provider_is_checked_where_it_goes(
    url: str,
    resolver: AbstractResolver | None,
    transport_type: type[AiohttpTransport | LeanAiohttpTransport],
) -> None:
    transport = transport_type(refuse_link_local=True, resolver=resolver)
    request = UpstreamRequest("POST", url, {}, b"{}", connect_timeout=5.0)
    try:
        with pytest.raises(UpstreamError, match="refused to connect") as refused:
            await transport.send(request)
    finally:
        await transport.aclose()
    assert not refused.value.retryable  # asking again reaches the same address


async def test_a_connected_providers_error_is_its_status_never_its_body() -> None:
    provider = HttpProvider(
        "openai",
        adapter_for("openai"),
        "http://10.0.0.5/v1",
        Secret("sk-key"),
        transport=MockTransport(internal_error),
        quote_errors=False,
    )
    with pytest.raises(UpstreamStatusError) as failure:
        await provider.request(adapter_for("openai").models_request(), Call("r1"))
    assert SECRET not in str(failure.value) and failure.value.body == b""
    assert "openai answered 500 Internal Server Error" in failure.value.message
    assert failure.value.retryable  # a 500 is still retried like any other


async def test_a_configured_providers_error_still_says_what_the_upstream_said() -> None:
    provider = HttpProvider(
        "openai",
        adapter_for("openai"),
        "http://10.0.0.5/v1",
        Secret("sk-key"),
        transport=MockTransport(internal_error),
    )
    with pytest.raises(UpstreamStatusError, match="db password"):
        await provider.request(adapter_for("openai").models_request(), Call("r1"))


# --- through the gateway ------------------------------------------------------------------


@pytest.fixture
async def gateway(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    # Providers connected from here reach an in-process internal service, not the network.
    made: list[dict[str, Any]] = []

    def internal_transport(**options: Any) -> MockTransport:
        made.append(options)
        return MockTransport(internal_error)

    for name in ("AiohttpTransport", "LeanAiohttpTransport"):  # whichever the config names
        monkeypatch.setattr(registry, name, internal_transport)
    environ = {"MODELWAY_DATA_DIR": str(tmp_path)}
    app = create_app(parse_config("server:\n  retries: 0\n", environ), environ)
    async with app.lifespan():
        app.state.transports_made = made
        client_transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=client_transport, base_url="http://127.0.0.1:8080"
        ) as client:
            yield app, client


async def test_an_internal_error_page_does_not_come_back_through_a_connected_provider(
    gateway: tuple[Gateway, httpx.AsyncClient],
) -> None:
    app, client = gateway
    connection = {"provider": "openai", "base_url": "http://10.0.0.5/v1"}
    assert (await client.post("/chat/api/connections", json=connection)).status_code == 201
    assert app.state.transports_made == [{"refuse_link_local": True}]

    answer = await client.post("/v1/chat/completions", json=HELLO)
    assert answer.status_code == 502
    assert "500 Internal Server Error" in answer.text and SECRET not in answer.text

    session = (await client.post("/chat/api/sessions", json={})).json()["id"]
    reply = await client.post(
        f"/chat/api/sessions/{session}/messages", json={"content": "hi", "model": HELLO["model"]}
    )
    assert '"type":"error"' in reply.text and SECRET not in reply.text


@pytest.mark.parametrize(
    "base_url",
    [
        "http://169.254.169.254/latest/meta-data/iam/",
        "http://metadata.google.internal/computeMetadata/v1",
        "http://[fd00:ec2::254]/latest",
    ],
)
async def test_connecting_a_provider_at_a_metadata_address_is_refused(
    gateway: tuple[Gateway, httpx.AsyncClient], base_url: str
) -> None:
    app, client = gateway
    refused = await client.post(
        "/chat/api/connections", json={"provider": "openai", "base_url": base_url}
    )
    assert refused.status_code == 400
    assert "link-local" in refused.text or "metadata" in refused.text
    state: GatewayState = app.state.gateway
    assert await state.store.connections.list() == []
    assert "openai" not in state.engine.router.backends


async def test_the_operator_may_allow_link_local_provider_urls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[dict[str, Any]] = []

    def internal_transport(**options: Any) -> MockTransport:
        made.append(options)
        return MockTransport(internal_error)

    for name in ("AiohttpTransport", "LeanAiohttpTransport"):  # whichever the config names
        monkeypatch.setattr(registry, name, internal_transport)
    environ = {"MODELWAY_DATA_DIR": str(tmp_path)}
    config = parse_config("server:\n  allow_link_local_provider_urls: true\n", environ)
    app = create_app(config, environ)
    async with app.lifespan():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            connection = {"provider": "ollama", "base_url": "http://[fe80::1%25eth0]:11434"}
            created = await client.post("/chat/api/connections", json=connection)
    assert created.status_code == 201
    assert made == [{"refuse_link_local": False}]
