"""Start server processes on free loopback ports, wait until they answer, stop them."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import psutil

READY_TIMEOUT_SECONDS = 90.0
POLL_SECONDS = 0.01
KEEP_VARIABLE = "MODELWAY_BENCH_KEEP"  # set to 1: every run directory stays for its logs


class RunDirectory:
    """A run's temp directory (logs, SQLite files, configs): gone when the run ends well.

    A benchmark run writes hundreds of MB of logs and usage rows; left behind, a few dozen
    runs fill a disk. It stays when the run fails (its logs say why), when ``keep`` is
    called (a run that found problems), or with ``MODELWAY_BENCH_KEEP=1``.
    """

    def __init__(self, prefix: str, given: Path | None = None) -> None:
        self.path = given or Path(tempfile.mkdtemp(prefix=prefix))
        self.kept = given is not None or os.environ.get(KEEP_VARIABLE, "") not in ("", "0")

    def keep(self) -> None:
        self.kept = True

    def close(self, failed: bool) -> None:
        if failed or self.kept:
            print(f"==> kept {self.path} (its logs and data)", file=sys.stderr, flush=True)
        else:
            shutil.rmtree(self.path, ignore_errors=True)


@contextlib.contextmanager
def run_directory(prefix: str, given: Path | None = None) -> Iterator[RunDirectory]:
    """A ``RunDirectory`` for a ``with`` block: removed unless the block raised or kept it.

    ``given`` is a directory the caller named (``--run-dir``): used as it is and kept.
    """
    directory = RunDirectory(prefix, given)
    failed = True
    try:
        yield directory
        failed = False
    finally:
        directory.close(failed)


def free_port() -> int:
    """A TCP port nobody listens on at this moment, on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def answers(url: str) -> bool:
    """Whether ``url`` answers a GET with a 2xx status."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return 200 <= int(response.status) < 300
    except (OSError, urllib.error.URLError):
        return False


def tree_total(pid: int, measure: Callable[[psutil.Process], int]) -> int:
    """``measure`` summed over ``pid`` and all its descendants (0 for a process gone)."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for process in processes:
        try:
            total += measure(process)
        except psutil.NoSuchProcess:
            continue
    return total


def resident_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants (workers of multi-process servers)."""
    return tree_total(pid, lambda process: process.memory_info().rss)


def worker_bytes(pid: int) -> tuple[int, int]:
    """Resident memory of the largest worker under ``pid`` and of ``pid`` itself.

    For a server that forks workers (granian, ``modelway serve``) the first is the worker
    and the second its supervisor; for one that serves in its own process there are no
    children and the process itself is the worker.
    """
    try:
        root = psutil.Process(pid)
        own = root.memory_info().rss
        children = root.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0, 0
    sizes = []
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            sizes.append(child.memory_info().rss)
    if not sizes:
        return own, 0
    return max(sizes), own


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of ``pid`` and its descendants."""
    root = psutil.Process(pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


class ServerFailed(RuntimeError):
    """A server exited or never became ready; the message carries the end of its log."""


@dataclass
class Server:
    """One started server process: its own session, log file, port and readiness URL."""

    name: str
    command: list[str]
    port: int
    ready_url: str
    log_path: Path
    env: dict[str, str] | None = None
    cwd: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    ready_seconds: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} is not started"
        return self.process.pid

    def start(self) -> Server:
        """Start the process and block until ``ready_url`` answers (the time is recorded)."""
        environ = {**os.environ, **(self.env or {})}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.started_at = time.perf_counter()
            self.process = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environ,
                cwd=self.cwd,
                start_new_session=True,  # its own process group, so stop() reaches workers
            )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = self.started_at + READY_TIMEOUT_SECONDS
        while time.perf_counter() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise ServerFailed(f"{self.name} exited early:\n{self.log_tail()}")
            if answers(self.ready_url):
                self.ready_seconds = time.perf_counter() - self.started_at
                return
            time.sleep(POLL_SECONDS)
        self.stop()
        raise ServerFailed(
            f"{self.name} not ready after {READY_TIMEOUT_SECONDS}s:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        """SIGTERM the process group this server started, then SIGKILL what is left."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        group = os.getpgid(process.pid)
        os.killpg(group, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(group, signal.SIGKILL)
            process.wait(timeout=5)
        # Workers that outlived their parent are still in the same group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()
