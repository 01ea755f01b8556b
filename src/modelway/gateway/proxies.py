"""Who the client is behind a reverse proxy the operator trusts (``server.trusted_proxies``).

Behind a proxy that ends TLS (nginx, an AWS load balancer, a Kubernetes ingress) every
connection comes from the proxy: without more, every client shares the proxy's address
for the failed-key limits (one guesser delays everyone's new keys), and the admin
dashboard's cookie is never ``Secure`` since the gateway saw plain HTTP. A peer whose
address is in ``server.trusted_proxies`` may say more:

- ``X-Forwarded-For``: read from the right, each hop a trusted proxy added is skipped;
  the first address no trusted proxy has, is the client's. Whatever is left of it was
  written by the client itself and is never believed. At most ``MAX_HOPS`` entries are
  read.
- ``X-Forwarded-Proto``: its last value (the one the proxy in front of the gateway set),
  ``http`` or ``https``, is the scheme.

A peer not in the list is the client, whatever it sends; with the list empty (the
default) no forwarded header is read at all. Applied in one place for each way a
request comes in: the ASGI app's entry (``Gateway.__call__``, which rewrites the scope
every route reads) and the RSGI chat path (``rsgi.RsgiGateway._chat``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

#: Entries of ``X-Forwarded-For`` read, from the right (a longer chain is cut there).
MAX_HOPS = 32
_SCHEMES = frozenset({"http", "https"})

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """Addresses and CIDR blocks (``10.0.0.0/8``, ``::1``); ``ValueError`` naming a bad one."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address or CIDR block") from None
    return tuple(networks)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("["):  # [v6]:port
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:  # v4:port
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    # An IPv4 peer of a dual-stack listener shows as ::ffff:a.b.c.d: the same address.
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return mapped or address


class TrustedProxies:
    """The proxies whose forwarded headers are believed; none by default."""

    __slots__ = ("_networks",)

    def __init__(self, networks: Sequence[Network] = ()) -> None:
        self._networks = tuple(networks)

    def __bool__(self) -> bool:
        return bool(self._networks)

    def trusts(self, host: str | None) -> bool:
        """Whether ``host`` (an address, as a server reports its peer) is a trusted proxy."""
        if not host or not self._networks:
            return False
        address = _address(host)
        return address is not None and any(address in network for network in self._networks)

    def client(self, peer: str | None, forwarded_for: Sequence[str]) -> str | None:
        """The client's address: ``peer``'s own unless it is trusted and says otherwise
        (``forwarded_for``: each ``X-Forwarded-For`` header's value, in order)."""
        if not forwarded_for or not self.trusts(peer):
            return peer
        hops = [hop for value in forwarded_for for hop in value.split(",")][-MAX_HOPS:]
        for hop in reversed(hops):
            address = _address(hop)
            if address is None:
                return peer  # not an address: the last trusted hop is what we know
            text = str(address)
            if not self.trusts(text):
                return text
            peer = text
        return peer

    def scheme(self, peer: str | None, scheme: str, forwarded_proto: Sequence[str]) -> str:
        """The scheme the client used: ``scheme`` unless a trusted ``peer`` says otherwise
        (``forwarded_proto``: each ``X-Forwarded-Proto`` header's value, in order; the last
        value of the last is the one the proxy in front of the gateway set)."""
        if not forwarded_proto or not self.trusts(peer):
            return scheme
        said = forwarded_proto[-1].rpartition(",")[2].strip().lower()
        return said if said in _SCHEMES else scheme
