"""Start a real ``redis-server`` on a free port in a temporary directory, and always stop it."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def running_redis(start_timeout: float = 10.0) -> Iterator[str]:
    """Run a throwaway ``redis-server`` (no persistence) and yield its ``redis://`` URL."""
    with tempfile.TemporaryDirectory(prefix="modelway-redis-") as directory:
        port = free_port()
        process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--dir", directory,
                "--save", "",
                "--appendonly", "no",
                "--logfile", f"{directory}/redis.log",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            _wait_until_listening(process, port, start_timeout, f"{directory}/redis.log")
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_listening(
    process: subprocess.Popen[bytes], port: int, timeout: float, log: str
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    with contextlib.suppress(OSError), open(log) as text:
        raise RuntimeError(f"redis-server did not start on port {port}:\n{text.read()}")
    raise RuntimeError(f"redis-server did not start on port {port}")
