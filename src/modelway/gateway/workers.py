"""The worker supervisor ``modelway serve`` becomes once its checks pass.

    python -m modelway.gateway.workers HOST PORT WORKERS SHUTDOWN_GRACE

granian's process manager runs ``WORKERS`` processes serving the gateway over RSGI
(``modelway.gateway.rsgi``), restarts one that dies, and on SIGTERM/SIGINT lets each
stop: it stops accepting, answers its open requests for ``SHUTDOWN_GRACE`` seconds and
flushes its usage records. This module imports little, so the supervisor stays small
and the workers it forks start from a lean process.
"""

from __future__ import annotations

import math
import os
import socket
import sys
import threading
import time

from granian.constants import HTTPModes, Interfaces, Loops
from granian.log import LogLevels
from granian.server import MPServer

#: The workers' application (a factory: each worker builds its own).
TARGET = "modelway.gateway.rsgi:app_from_environment"


def announce_when_listening(host: str, port: int, workers: int) -> None:
    """Print the ready line once a worker accepts connections (its lifespan has run).

    The probe runs in a thread started only after the last worker was forked: a thread
    inside ``getaddrinfo`` during a fork leaves the child's resolver lock held forever.
    """
    address = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    family, _, _, _, sockaddr = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM)[0]
    shown = f"[{host}]" if ":" in host else host
    suffix = f" ({workers} workers)" if workers > 1 else ""

    def wait() -> None:
        while True:
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                if probe.connect_ex(sockaddr) == 0:
                    break
            time.sleep(0.02)
        print(f"modelway listening on http://{shown}:{port}{suffix}", flush=True)

    forks = 0

    def after_fork() -> None:
        nonlocal forks
        forks += 1
        if forks == workers:
            threading.Thread(target=wait, name="modelway-ready", daemon=True).start()

    os.register_at_fork(after_in_parent=after_fork)


def serve(host: str, port: int, workers: int, shutdown_grace: float) -> None:
    """Run the workers until a signal stops them."""
    server = MPServer(
        TARGET,
        factory=True,
        address=host,
        port=port,
        interface=Interfaces.RSGI,
        workers=workers,
        loop=Loops.uvloop,
        http=HTTPModes.http1,
        websockets=False,
        log_level=LogLevels.warning,
        # A stopping worker answers its open requests for up to ``shutdown_grace``.
        workers_kill_timeout=math.ceil(shutdown_grace) + 5,
        respawn_failed_workers=True,
    )
    announce_when_listening(host, port, workers)
    server.serve()


if __name__ == "__main__":
    host, port, workers, grace = sys.argv[1:5]
    serve(host, int(port), int(workers), float(grace))
