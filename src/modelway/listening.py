"""Whether an address can be listened on: ``modelway serve`` and ``modelway mock`` ask
before they start, so a port in use is one line, not a server's traceback."""

from __future__ import annotations

import socket


def free_port(host: str) -> int:
    """A port nobody listens on now (``--port 0``); the workers then bind it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def bind_problem(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on (in use, not an address here), or None.

    Bound without ``SO_REUSEPORT``, so another gateway already serving the port (whose
    workers share it that way) is found too, not silently joined.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        return str(exc)
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            return exc.strerror or str(exc)
    return None
