"""Start a real ``redis-server`` on a free port in a temporary directory, and always stop it."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.polling import wait_until

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def running_redis(start_timeout: float = 30.0) -> Iterator[str]:
    """Run a throwaway ``redis-server`` (no persistence) and yield its ``redis://`` URL."""
    with tempfile.TemporaryDirectory(prefix="modelway-redis-") as directory:
        log = Path(directory, "redis.log")
        # The port is free when picked but may be taken before redis binds it (tests run
        # in parallel): then redis exits, and another port is tried.
        for _ in range(_PORT_ATTEMPTS):
            port = free_port()
            process = subprocess.Popen(
                [
                    REDIS_SERVER,
                    "--port", str(port),
                    "--bind", "127.0.0.1",
                    "--dir", directory,
                    "--save", "",
                    "--appendonly", "no",
                    "--logfile", str(log),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            if _started(process, log, start_timeout):
                break
        else:
            raise RuntimeError(f"redis-server did not start:\n{log.read_text(errors='replace')}")
        try:
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


_PORT_ATTEMPTS = 5


def _started(process: subprocess.Popen[bytes], log: Path, timeout: float) -> bool:
    """Whether this very process is ready (its own log says so), not just the port answering."""

    def settled() -> str:
        text = log.read_text(errors="replace") if log.exists() else ""
        if "Ready to accept connections" in text:
            return "ready"
        return "exited" if process.poll() is not None else ""

    if wait_until(settled, within=timeout, what="redis-server starting") == "ready":
        return True
    if "Address already in use" not in log.read_text(errors="replace"):
        raise RuntimeError(f"redis-server exited:\n{log.read_text(errors='replace')}")
    return False
