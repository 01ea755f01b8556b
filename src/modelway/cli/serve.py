"""``modelway serve``: run the gateway.

The command only reads its options: it then becomes (``execv``, same pid) the worker
supervisor in ``modelway.gateway.workers``, which checks the setup and forks the
workers, so no process that serves carries the command line's own modules.
"""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from modelway.cli.app import app


class LogFormat(StrEnum):
    """``--log-format``: JSON lines, text, or text only on a terminal (``auto``)."""

    auto = "auto"
    json = "json"
    text = "text"


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
    log_format: Annotated[
        LogFormat | None,
        typer.Option(
            help="Log lines on stderr: json, text, or auto (text on a terminal, else JSON); "
            "overrides logging.format."
        ),
    ] = None,
) -> None:
    """Run the gateway (OpenAI-compatible API at /v1)."""
    options: list[str] = []
    if config is not None:
        options += ["--config", str(config)]
    if host is not None:
        options += ["--host", host]
    if port is not None:
        options += ["--port", str(port)]
    if workers is not None:
        options += ["--workers", str(workers)]
    if insecure:
        options.append("--insecure")
    if log_format is not None:
        options += ["--log-format", log_format.value]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "modelway.gateway.workers", *options])
