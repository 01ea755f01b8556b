"""Whether an address can be listened on: ``modelway serve`` and ``modelway mock`` ask
before they start, so a port in use is one line, not a server's traceback."""

from __future__ import annotations

import socket


def reserve(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (0: a free port, which ``getsockname`` then names),
    held while the server starts and for as long as it runs.

    Bound with ``SO_REUSEPORT`` alone and never listening: granian's workers, which bind
    with ``SO_REUSEPORT`` too, still can, but no other process's ``bind_problem`` finds the
    port free meanwhile, nor is it handed out as a free port. Without it a port picked for
    ``--port 0`` was free again until the workers bound it, seconds later, and two
    gateways starting at once could both take it: the kernel then spread connections
    between them.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    held = socket.socket(family, socket.SOCK_STREAM)
    try:
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        held.bind((host, port))
    except BaseException:
        held.close()
        raise
    return held


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
