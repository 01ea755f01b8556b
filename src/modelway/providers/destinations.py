"""Where a provider connected at run time may not send requests: link-local and metadata.

A provider's base URL from the web chat's connect dialog comes from whoever may connect
providers (the master key, or anyone while the gateway is open), not from the operator's
config. Pointed at a cloud metadata service, the gateway would fetch instance credentials
for them. So those providers refuse link-local addresses (169.254.0.0/16, fe80::/10,
where AWS, GCP, Azure and most clouds serve metadata) and the other known metadata
addresses and names, unless ``server.allow_link_local_provider_urls`` says otherwise.
Loopback and private ranges stay allowed: a local Ollama or vLLM lives there.

The check runs twice: when the provider is connected (``refused_destination``, after
resolving the name, so the dialog says so at once) and on every connection the provider
opens (``guarded_socket``, on the address actually connected to, so a name that later
resolves elsewhere, a redirect or an IP address written another way gets no further).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Metadata services outside the link-local ranges.
METADATA_ADDRESSES: frozenset[Address] = frozenset(
    {
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
        ipaddress.ip_address("fd00:ec2::254"),  # AWS, over IPv6
    }
)
#: Names of metadata services (they resolve to link-local addresses inside their cloud).
METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
#: IPv4 addresses embedded in IPv6 by NAT64 (RFC 6052's well-known prefix).
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
#: Seconds the connect dialog waits for a name to resolve.
RESOLVE_SECONDS = 5.0
SETTING = "server.allow_link_local_provider_urls"


def is_refused_address(address: Address) -> bool:
    """Whether ``address`` is link-local or a cloud metadata service's (IPv4 in IPv6 too)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        elif address in _NAT64:
            address = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.is_link_local or address in METADATA_ADDRESSES


def _refused_address_text(text: str) -> bool:
    try:
        return is_refused_address(ipaddress.ip_address(text.partition("%")[0]))
    except ValueError:
        return False


class RefusedDestination(OSError):
    """A connection to a link-local or metadata address, refused before it was made."""

    def __init__(self) -> None:
        super().__init__(f"a link-local or cloud metadata address (allowed by {SETTING})")


def guarded_socket(addr_info: tuple[Any, ...]) -> socket.socket:
    """A socket for ``addr_info`` (aiohttp's ``socket_factory``), unless it is refused."""
    family, kind, proto, _, address = addr_info
    if _refused_address_text(str(address[0])):
        raise RefusedDestination()
    return socket.socket(family=family, type=kind, proto=proto)


async def refused_destination(url: str) -> str | None:
    """Why a provider connected at run time may not use ``url``, or None.

    The host is refused by name (metadata names), as an address, or when any address it
    resolves to is refused. A name that does not resolve now is let through: the
    connection's own check (``guarded_socket``) still applies when it is used.
    """
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if not host:
        return "base_url: a URL with a host"
    if host in METADATA_NAMES:
        return f"base_url: {host} is a cloud metadata service; refused (see {SETTING})"
    try:
        addresses = {host} if _is_address(host) else await _resolve(host)
    except UnicodeError:  # the IDNA codec: a label over 63 characters, or an empty one
        return f"base_url: {host[:80]!r} is not a valid host name"
    except (OSError, TimeoutError):
        return None
    refused = sorted(a for a in addresses if _refused_address_text(a))
    if refused:
        return (
            f"base_url: {host} is (or resolves to) {refused[0]}, a link-local or cloud "
            f"metadata address; refused (see {SETTING})"
        )
    return None


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return False
    return True


async def _resolve(host: str) -> set[str]:
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(RESOLVE_SECONDS):
        infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return {str(info[4][0]) for info in infos}
