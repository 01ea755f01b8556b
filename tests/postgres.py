"""A real, throwaway PostgreSQL server for tests: ``with running_postgres() as server: server.url``.

``initdb`` refuses to run as root, so as root the server runs as the ``postgres`` user
(``runuser -u postgres --``) in a temp directory it owns. ``server.stop()`` and
``server.start()`` let a test take the database away and bring it back on the same port.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.polling import wait_until

BIN = Path(os.environ.get("POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))
DATABASE = "modelway_test"


def _require_binaries() -> None:
    """PostgreSQL is part of the suite, never skipped: its absence is a clear failure."""
    if not ((BIN / "postgres").exists() and (BIN / "initdb").exists()):
        raise RuntimeError(f"no PostgreSQL server binaries in {BIN} (set POSTGRES_BIN)")


class PostgresServer:
    """One PostgreSQL cluster in a temp directory, on a free loopback port."""

    def __init__(self, root: Path) -> None:
        self.data = root / "data"
        self.sockets = root / "sockets"
        self.port = _free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._log = root / "postgres.log"

    @property
    def url(self) -> str:
        """The URL as a user would set ``DATABASE_URL`` (the store picks the async driver)."""
        return self.url_for(DATABASE)

    def url_for(self, database: str) -> str:
        """The URL of another database on this server."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create an empty database; its URL."""
        self.psql(f"CREATE DATABASE {name}", database="postgres")
        return self.url_for(name)

    def init(self) -> None:
        """Create the cluster (trust auth on loopback) and the test database."""
        _run(
            _as_postgres(
                [str(BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"]
            )
        )
        # The port is free when picked but may be taken before postgres binds it (tests run
        # in parallel): then postgres exits, and another port is tried.
        for _ in range(_PORT_ATTEMPTS):
            try:
                self.start()
                break
            except PortTaken:
                self.port = _free_port()
        else:
            raise RuntimeError(f"postgres found no free port:\n{self._log_text()}")
        self.create_database(DATABASE)

    def start(self) -> None:
        """Start the server (on the same port as before) and wait until it accepts connections."""
        self._log.write_bytes(b"")
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(
                _as_postgres(
                    [
                        str(BIN / "postgres"),
                        "-D",
                        str(self.data),
                        "-k",
                        str(self.sockets),
                        "-p",
                        str(self.port),
                        "-c",
                        "listen_addresses=127.0.0.1",
                        "-c",
                        "fsync=off",
                    ]
                ),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_ready()

    def stop(self) -> None:
        """Stop the server now: a fast shutdown that drops every client connection."""
        if self._process is None:
            return
        # SIGTERM would be a "smart" shutdown waiting for clients; SIGINT is "fast". The
        # postmaster is signalled directly because Popen's child may be ``runuser``.
        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGINT)
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(pid, signal.SIGQUIT)
            self._process.wait()
        self._process = None

    def psql(self, sql: str, database: str = DATABASE) -> None:
        """Run one SQL statement through the server's socket."""
        _run(
            _as_postgres(
                [
                    str(BIN / "psql"),
                    "-h",
                    str(self.sockets),
                    "-p",
                    str(self.port),
                    "-U",
                    "postgres",
                    "-d",
                    database,
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-c",
                    sql,
                ]
            )
        )

    def _wait_ready(self, timeout: float = 60.0) -> None:
        process = self._process
        assert process is not None

        def settled() -> str:
            if process.poll() is not None:
                return "exited"
            # Asked through this server's own socket directory: another test's server on
            # the same port cannot answer for it. Postgres opens its TCP port first.
            ready = subprocess.run(
                [str(BIN / "pg_isready"), "-h", str(self.sockets), "-p", str(self.port), "-q"],
                check=False,
            )
            return "ready" if ready.returncode == 0 else ""

        if wait_until(settled, within=timeout, what="postgres starting") == "ready":
            return
        self._process = None
        if "could not bind" in self._log_text():
            raise PortTaken(self.port)
        raise RuntimeError(f"postgres exited:\n{self._log_text()}")

    def _log_text(self) -> str:
        return self._log.read_text(errors="replace") if self._log.exists() else ""


class PortTaken(RuntimeError):
    """Another process bound the picked port first."""


_PORT_ATTEMPTS = 5


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A fresh PostgreSQL with an empty ``modelway_test`` database, always stopped after."""
    _require_binaries()
    root = Path(tempfile.mkdtemp(prefix="modelway-pg-"))
    try:
        if os.geteuid() == 0:
            # The server runs as ``postgres``, which must be able to reach and own its dirs.
            root.chmod(0o755)
            shutil.chown(root, user="postgres", group="postgres")
        (root / "sockets").mkdir()
        if os.geteuid() == 0:
            shutil.chown(root / "sockets", user="postgres", group="postgres")
        server = PostgresServer(root)
        try:
            server.init()
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _as_postgres(command: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


def _run(command: list[str]) -> None:
    done = subprocess.run(command, check=False, capture_output=True)
    if done.returncode != 0:
        output = (done.stdout + done.stderr).decode(errors="replace")
        raise RuntimeError(f"{command[-1]!r} failed ({done.returncode}):\n{output}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
