"""The worker supervisor: what ``modelway serve`` becomes (``execv``, same pid).

    python -m modelway.gateway.workers [--config PATH] [--host H] [--port P]
                                       [--workers N] [--insecure] [--log-format F]

It checks the setup — the config, every provider, the store URL, open mode on a public
address — and says what is wrong (exit status 2) before anything listens. Then it
imports the gateway once, so each worker it forks starts with it loaded (ready sooner;
the pages stay shared), and granian's process manager runs the workers over RSGI
(``modelway.gateway.rsgi``), replaces one that dies (``Supervisor``: after a backoff
while it keeps dying young, never stopping the others), and on SIGTERM/SIGINT lets each
stop: it stops accepting, answers its open requests for ``server.shutdown_grace``
seconds and flushes its usage records.

It logs as its workers do (``modelway.logs``; ``--log-format`` reaches them as
``MODELWAY_LOG_FORMAT``): its start (address, workers, version), each worker's death and
its stop are log events under ``modelway.server``; the ready line also goes to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import math
import os
import resource
import shutil
import signal
import socket
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from granian.constants import HTTPModes, Interfaces, Loops
from granian.log import LogLevels
from granian.server import MPServer

from modelway import __version__
from modelway.listening import bind_problem, reserve
from modelway.logs import GRANIAN_LOGGING

log = logging.getLogger("modelway.server")
#: The workers' application (a factory: each worker builds its own).
TARGET = "modelway.gateway.rsgi:app_from_environment"
#: What the supervisor sends a worker just before SIGTERM: "the shutdown begins" (its
#: grace starts: ``RsgiGateway._stopping``).
STOPPING_SIGNAL = signal.SIGUSR1
#: The most open files (connections) a worker asks for, when the hard limit allows.
MAX_OPEN_FILES = 1_048_576
#: Open files left aside for the store, upstream connections, logs and the like.
RESERVED_FILES = 256
#: The most connections one worker serves at once, whatever the open-files limit.
MAX_CONNECTIONS_PER_WORKER = 32_768
#: The start of each gateway's metrics directory's name, then its supervisor's pid.
METRICS_DIR_PREFIX = "modelway-metrics-"


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the gateway reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


#: More worker processes than this is a typo: each holds its own pools, caches and memory.
MAX_WORKERS = 256


def _live_keys(url: str) -> bool:
    """Open the store (migrating it once, before any worker) and say whether it holds a
    live virtual key; raises what the database raised when it cannot be reached."""
    from modelway.store import Store

    async def check() -> bool:
        store = await Store.open(url)
        try:
            return bool(await store.keys.list(include_revoked=False))
        finally:
            await store.aclose()

    return asyncio.run(check())


def _unreachable(url: str, error: BaseException) -> str:
    """What to tell a person whose store cannot be opened (never the password)."""
    from sqlalchemy.engine import make_url

    from modelway.store.location import display_url

    reason = str(getattr(error, "orig", None) or error).splitlines()[0] if str(error) else ""
    password = make_url(url).password
    if password:
        reason = reason.replace(str(password), "***")
    kind = type(getattr(error, "orig", None) or error).__name__
    return f"cannot open the store at {display_url(url)}: {kind}{': ' + reason if reason else ''}"


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
        log.info(
            "modelway %s listening on http://%s:%d%s",
            __version__,
            shown,
            port,
            suffix,
            extra={"address": f"http://{shown}:{port}", "workers": workers, "version": __version__},
        )

    forks = 0

    def after_fork() -> None:
        nonlocal forks
        forks += 1
        if forks == workers:
            threading.Thread(target=wait, name="modelway-ready", daemon=True).start()

    os.register_at_fork(after_in_parent=after_fork)


class RespawnBackoff:
    """How long to wait before replacing a dead worker: at once after a long life, then
    doubling while it keeps dying young (``first`` up to ``ceiling`` seconds)."""

    def __init__(self, first: float = 0.5, ceiling: float = 30.0, stable_after: float = 30.0):
        self.first, self.ceiling, self.stable_after = first, ceiling, stable_after
        self._streaks: dict[int, int] = {}

    def delay(self, worker: int, lived: float) -> float:
        """The wait before respawning ``worker``, which died after ``lived`` seconds."""
        if lived >= self.stable_after:
            self._streaks[worker] = 0
            return 0.0
        streak = self._streaks.get(worker, 0)
        self._streaks[worker] = streak + 1
        return float(min(self.first * 2**streak, self.ceiling))


class Supervisor(MPServer):
    """granian's process manager, except that workers dying in quick succession never
    stop the gateway.

    granian's own loop calls two deaths of one worker within ~5.5 s a crash loop and
    exits, stopping the healthy workers with it: a gateway with ``--workers 2`` would go
    down for good after two ``kill -9`` a second apart. Here a dead worker is replaced
    after a backoff while the others keep serving, and each death is said on stderr.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.backoff = RespawnBackoff()

    def _stop_workers(self) -> None:
        """Tell each worker the shutdown begins (``STOPPING_SIGNAL``: its grace starts
        now, see ``RsgiGateway._stopping``), then stop them as granian does."""
        for worker in self.wrks:
            pid = worker.inner.pid
            if pid is not None and worker.inner.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, STOPPING_SIGNAL)
        granian: Any = super()  # untyped
        granian._stop_workers()

    def _serve_loop(self, spawn_target: Any, target_loader: Any) -> None:
        due: dict[int, float] = {}  # worker index -> when to respawn it (monotonic)
        while True:
            wait = max(0.0, min(due.values()) - time.monotonic()) if due else None
            self.main_loop_interrupt.wait(wait)
            if self.interrupt_signal:
                break
            self.main_loop_interrupt.clear()  # a death after this sets it again
            now = time.monotonic()
            while self.interrupt_children:
                index = self.interrupt_children.pop(0)
                _forget_metrics_of(self.wrks[index].inner.pid)
                delay = self.backoff.delay(index, now - self.wrks[index].birth)
                due[index] = now + delay
                alive: list[Any] = [w for w in self.wrks if w.inner.is_alive()]
                log.warning(
                    "worker-%d died; respawning it in %.1f s (%d of %d workers serving)",
                    index + 1,
                    delay,
                    len(alive),
                    self.workers,
                    extra={"worker": index + 1, "respawn_in_s": delay, "serving": len(alive)},
                )
            ready = sorted(index for index, when in due.items() if when <= now)
            if ready:
                for index in ready:
                    del due[index]
                self._respawn_workers(ready, spawn_target, target_loader)
                self._metrics.incr_respawn_err(len(ready))
            if self.reload_signal:
                granian: Any = super()  # untyped: granian's respawn of every worker on HUP
                granian._reload(spawn_target, target_loader)


def _forget_metrics_of(pid: int | None) -> None:
    """A dead worker's live gauges leave the sum; its counters stay (never go backwards)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if pid is not None and directory:
        from modelway.observability.metric_files import mark_dead

        mark_dead(pid, directory)


def raise_open_files_limit() -> int:
    """Lift the soft limit on open files to the hard one (the workers inherit it).

    Each connection is a file descriptor; the usual soft limit of 1,024 lets a thousand
    idle or slow connections stop the gateway from accepting anyone else.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = MAX_OPEN_FILES if hard == resource.RLIM_INFINITY else min(hard, MAX_OPEN_FILES)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError):
            return soft
        return wanted
    return soft


def connections_per_worker(open_files: int, workers: int) -> int:
    """How many connections each worker serves at once (granian's ``backpressure``): a
    share of the open-files limit, from 1,024 to ``MAX_CONNECTIONS_PER_WORKER``.

    granian's own default is 1,024 over the workers: that many idle connections that never
    send a request — no key needed — held every place until their header timeout (30 s),
    and nobody else was answered meanwhile.
    """
    share = (open_files - RESERVED_FILES) // max(1, workers)
    return max(1024, min(MAX_CONNECTIONS_PER_WORKER, share))


def serve(host: str, port: int, workers: int, shutdown_grace: float) -> None:
    """Run the workers until a signal stops them."""
    open_files = raise_open_files_limit()
    server = Supervisor(
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
        log_dictconfig=GRANIAN_LOGGING,
        # A stopping worker answers its open requests for up to ``shutdown_grace``.
        workers_kill_timeout=math.ceil(shutdown_grace) + 5,
        respawn_failed_workers=True,
        backlog=2048,
        backpressure=connections_per_worker(open_files, workers),
    )
    announce_when_listening(host, port, workers)
    server.serve()


def main(argv: Sequence[str] | None = None) -> None:
    """Check the setup, then serve; exit status 2 with the reason when it is unusable."""
    parser = argparse.ArgumentParser(prog="modelway serve")
    parser.add_argument("--config", type=Path)
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--workers", type=int)
    parser.add_argument("--insecure", action="store_true")
    parser.add_argument("--log-format", choices=("auto", "json", "text"))
    args = parser.parse_args(argv)

    from modelway.config import ConfigError, load_config, load_dotenv_file
    from modelway.pricing import unpriced_warnings
    from modelway.routing.resolve import Router, check_deployments_enabled
    from modelway.store import database_url
    from modelway.store.location import privacy_warning

    try:
        environ = {**load_dotenv_file(".env"), **os.environ}
        settings = load_config(args.config, environ)
        Router(settings, environ)  # every provider builds now, or the error is shown now
        check_deployments_enabled(settings, environ)  # as `config check` does
        url = database_url(environ, settings.store.url)  # an unusable store URL is said now
        settings.redis_url(environ)  # a REDIS_URL of the wrong kind is said now, not per worker
    except (ConfigError, ValueError) as exc:
        print(f"config error: {exc}", file=sys.stderr)
        sys.exit(2)
    except OSError as exc:  # the data directory cannot be created
        print(f"cannot use the data directory: {exc}", file=sys.stderr)
        sys.exit(1)
    from modelway.logs import FORMAT_VARIABLE, configure_logging

    if args.log_format is not None:
        os.environ[FORMAT_VARIABLE] = args.log_format  # the workers inherit it
    configure_logging(settings.logging)
    exposed = privacy_warning(url)
    if exposed is not None:
        log.warning("%s", exposed)
    for unpriced in unpriced_warnings(settings):
        log.warning("%s", unpriced)
    host = args.host if args.host is not None else settings.server.host
    if host == "localhost":
        host = "127.0.0.1"  # granian binds addresses, not names
    port = args.port if args.port is not None else settings.server.port
    problem = bind_problem(host, port) if port != 0 else None
    if problem is None:
        try:
            held = reserve(host, port)  # until the workers listen: no other server takes it
        except OSError as exc:
            problem = exc.strerror or str(exc)
    if problem is not None:
        print(f"cannot listen on {host}:{port}: {problem}", file=sys.stderr)
        sys.exit(1)
    port = held.getsockname()[1]
    workers = args.workers if args.workers is not None else settings.server.workers
    if not 1 <= workers <= MAX_WORKERS:
        told = "--workers" if args.workers is not None else "server.workers"
        print(f"{told}: 1 to {MAX_WORKERS} (one per core is usual)", file=sys.stderr)
        sys.exit(2)
    try:
        keys_exist = _live_keys(url)
    except Exception as exc:
        print(_unreachable(url, exc), file=sys.stderr)
        sys.exit(1)
    if not environ.get("MODELWAY_MASTER_KEY") and not keys_exist:
        # Open mode: fine on this machine, never on a public address without being told.
        if not is_loopback(host) and not args.insecure:
            print(
                f"refusing to serve {host} with no authentication: anyone who can reach "
                "it could spend your provider keys. Set MODELWAY_MASTER_KEY (or create a key "
                "with `modelway keys create`), bind 127.0.0.1, or pass --insecure.",
                file=sys.stderr,
            )
            sys.exit(2)
        log.warning(
            "OPEN MODE — no MODELWAY_MASTER_KEY and no virtual keys: anyone who can reach "
            "%s:%d can use this gateway and the provider keys it holds",
            host,
            port,
        )
        if not is_loopback(host):
            # Against DNS rebinding: a web page can only bring a name of its own.
            shown = "any IP address" if host in ("0.0.0.0", "::", "") else host
            log.warning(
                "open mode answers only to loopback host names, %s and the names in "
                "server.allowed_hosts (421 for any other Host)",
                shown,
            )
    if settings.server.signup and not environ.get("MODELWAY_MASTER_KEY"):
        log.warning(
            "server.signup is on and there is no MODELWAY_MASTER_KEY: the first key an "
            "account makes closes the gateway to callers without a key, and there is no "
            "admin API to manage accounts and keys (only the CLI on this machine)"
        )
    if workers > 1 and not settings.redis_url(environ):
        log.warning(
            "%d workers and no REDIS_URL: each worker counts rate limits and budgets on its "
            "own, so a key's limits are multiplied by the worker count. Set REDIS_URL (or "
            "redis.url) to share them.",
            workers,
        )
    if args.config is not None:
        os.environ["MODELWAY_CONFIG"] = str(args.config.resolve())  # the workers load it again
    # Before the gateway imports prometheus-client, which picks where values live then.
    metrics_dir = _private_metrics_directory()
    import modelway.gateway.rsgi  # noqa: F401  loaded once here, inherited by every worker
    from modelway.calls.stored import WORKERS_VARIABLE
    from modelway.gateway.app import BIND_HOST_VARIABLE

    os.environ[BIND_HOST_VARIABLE] = host  # --host is not in the config the workers load
    # Each worker limits to its share of a key's limits while Redis is down.
    os.environ[WORKERS_VARIABLE] = str(workers)

    try:
        serve(host, port, workers, settings.server.shutdown_grace)
    finally:
        held.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)
    address = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    log.info(
        "modelway stopped",
        extra={"address": address, "workers": workers, "version": __version__},
    )


def _private_metrics_directory() -> str:
    """A directory of this gateway's own (0700) where its workers keep their metric values,
    so one scrape of any worker sums them all; named in the environment they inherit."""
    assert "prometheus_client" not in sys.modules, "imported before its directory was set"
    _sweep_metrics_directories(Path(tempfile.gettempdir()))
    path = tempfile.mkdtemp(prefix=f"{METRICS_DIR_PREFIX}{os.getpid()}-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    return path


def _sweep_metrics_directories(parent: Path) -> None:
    """Remove the metrics directories of gateways that were killed (SIGKILL: nothing of
    theirs ran to remove it): those named after a process that no longer exists and
    owned by this user. A live gateway's directory is never touched."""
    uid = os.getuid()
    for path in parent.glob(f"{METRICS_DIR_PREFIX}*-*"):
        pid = path.name.removeprefix(METRICS_DIR_PREFIX).partition("-")[0]
        try:
            status = path.lstat()
            if not pid.isdigit() or status.st_uid != uid or not stat.S_ISDIR(status.st_mode):
                continue
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except OSError:  # gone meanwhile, or a process of another user: left alone
            continue


if __name__ == "__main__":
    main()
