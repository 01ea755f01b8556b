"""``modelway serve``: run the gateway."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer

from modelway.cli.app import app


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the gateway reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def free_port(host: str) -> int:
    """A port nobody listens on now (``--port 0``); the workers then bind it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


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
    from modelway.gateway.app import environment
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
    if bind_port == 0:
        bind_port = free_port(bind_host)
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
    if config is not None:
        os.environ["MODELWAY_CONFIG"] = str(config.resolve())  # the workers load it again
    # Checks done: this process becomes the lean supervisor of the workers (same pid),
    # so neither it nor the workers it forks carry the CLI and the checks' imports.
    sys.stdout.flush()
    sys.stderr.flush()
    supervisor = [sys.executable, "-m", "modelway.gateway.workers"]
    os.execv(
        sys.executable,
        [
            *supervisor,
            bind_host,
            str(bind_port),
            str(worker_count),
            str(settings.server.shutdown_grace),
        ],
    )
