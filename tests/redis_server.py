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
from tests.processes import stop

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
            stop(process)


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


class RedisServer:
    """A ``redis-server`` a test can stop (SIGTERM or SIGKILL) and start again on its port.

    With ``persist`` it saves its data when stopped with SIGTERM and loads it at start, as
    a Redis with RDB snapshots does; without, a restart starts empty.
    """

    def __init__(self, directory: Path, *, persist: bool = False) -> None:
        self.directory = directory
        self.port = free_port()
        self.persist = persist
        self._process: subprocess.Popen[bytes] | None = None
        self._log = directory / "redis.log"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 30.0) -> None:
        """Start (or start again) on this server's port; a port taken meanwhile is an error."""
        self._log.write_text("")
        save = ["--save", "3600 1"] if self.persist else ["--save", ""]
        self._process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.directory),
                *save,
                "--appendonly", "no",
                "--logfile", str(self._log),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        if not _started(self._process, self._log, timeout):
            raise RuntimeError(f"redis-server could not bind port {self.port} again")

    def stop(self, *, kill: bool = False) -> None:
        """Stop it: SIGTERM (a persisting server saves first) or, with ``kill``, SIGKILL."""
        process, self._process = self._process, None
        if process is None:
            return
        stop(process, kill=kill)


@contextlib.contextmanager
def restartable_redis(*, persist: bool = False) -> Iterator[RedisServer]:
    """A started ``RedisServer`` in a temporary directory, always stopped at the end."""
    with tempfile.TemporaryDirectory(prefix="modelway-redis-") as directory:
        for _ in range(_PORT_ATTEMPTS):
            server = RedisServer(Path(directory), persist=persist)
            try:
                server.start()
                break
            except RuntimeError:
                server.stop()
        else:
            raise RuntimeError("redis-server did not start on any of the ports tried")
        try:
            yield server
        finally:
            server.stop()
