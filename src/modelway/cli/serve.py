"""``modelway serve``: run the gateway."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import socket
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn

from modelway.cli.app import app


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the gateway reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Server(uvicorn.Server):
    """Prints one line once the socket listens, so people and tests know it is ready."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            # The bound port, which differs from the configured one for ``--port 0``.
            port = self.servers[0].sockets[0].getsockname()[1] if self.servers else self.config.port
            print(f"modelway listening on http://{self.config.host}:{port}", flush=True)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            try:
                yield
            finally:
                # uvicorn re-raises SIGTERM after draining, so the exit status would say
                # "killed"; a drained shutdown is a clean exit.
                self._captured_signals.clear()


def _authentication_configured(environ: Mapping[str, str]) -> bool:
    """A master key is set, or the store holds a live virtual key."""
    if environ.get("MODELWAY_MASTER_KEY"):
        return True

    from modelway.store import Store, database_url

    async def live_keys() -> bool:
        store = await Store.open(database_url(environ))
        try:
            return bool(await store.keys.list(include_revoked=False))
        finally:
            await store.aclose()

    return asyncio.run(live_keys())


def _uvicorn_options(host: str, port: int, shutdown_grace: float) -> dict[str, Any]:
    return {
        "host": host,
        "port": port,
        "loop": "uvloop",
        "http": "httptools",
        "log_level": "warning",
        "access_log": False,
        # On SIGTERM: stop accepting, let open streams finish for this long, then cut them.
        "timeout_graceful_shutdown": shutdown_grace,
    }


def _serve_workers(count: int, options: dict[str, Any]) -> None:
    """Run ``count`` worker processes on one socket bound here (as ``uvicorn.run`` does)."""
    from uvicorn.supervisors import Multiprocess

    settings = uvicorn.Config(
        "modelway.gateway.app:app_from_environment", factory=True, workers=count, **options
    )
    sock = settings.bind_socket()
    host, port = sock.getsockname()[:2]
    print(f"modelway listening on http://{host}:{port} ({count} workers)", flush=True)
    Multiprocess(settings, sockets=[sock]).run()


@app.command()
def serve(
    config: Annotated[Path | None, typer.Option(help="Path to modelway.yaml.")] = None,
    host: Annotated[str | None, typer.Option(help="Address to bind.")] = None,
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="Port to listen on (0: any free one).")
    ] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Worker processes.")] = None,
    insecure: Annotated[
        bool, typer.Option(help="Allow a non-loopback bind with no authentication.")
    ] = False,
) -> None:
    """Run the gateway (OpenAI-compatible API at /v1)."""
    from modelway.config import ConfigError, load_config
    from modelway.gateway.app import create_app, environment
    from modelway.routing.resolve import Router

    environ = environment()
    try:
        settings = load_config(config, environ)
        Router(settings, environ)  # every provider builds now, or the error is shown now
        from modelway.store import database_url

        database_url(environ)  # an unusable DATABASE_URL is said now, not as a traceback
    except (ConfigError, ValueError) as exc:
        typer.echo(f"config error: {exc}", err=True)
        raise typer.Exit(2) from None
    bind_host = host if host is not None else settings.server.host
    bind_port = port if port is not None else settings.server.port
    worker_count = workers if workers is not None else settings.server.workers
    if not _authentication_configured(environ):
        # Open mode: fine on this machine, never on a public address without being told.
        if not is_loopback(bind_host) and not insecure:
            typer.echo(
                f"refusing to serve {bind_host} with no authentication: anyone who can reach "
                "it could spend your provider keys. Set MODELWAY_MASTER_KEY (or create a key "
                "with `modelway keys create`), bind 127.0.0.1, or pass --insecure.",
                err=True,
            )
            raise typer.Exit(2)
        print(
            "WARNING: OPEN MODE — no MODELWAY_MASTER_KEY and no virtual keys: anyone who can "
            f"reach {bind_host}:{bind_port} can use this gateway and the provider keys it holds",
            file=sys.stderr,
            flush=True,
        )
    options = _uvicorn_options(bind_host, bind_port, settings.server.shutdown_grace)
    if worker_count > 1:
        if config is not None:
            os.environ["MODELWAY_CONFIG"] = str(config.resolve())
        _serve_workers(worker_count, options)
        return
    server = _Server(uvicorn.Config(create_app(settings, environ), **options))
    server.run()
