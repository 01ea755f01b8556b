"""``modelway chat``: chat in the terminal, in-process or against a running gateway."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelway.cli.app import app
from modelway.cli.urls import gateway_url


@app.command()
def chat(
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="Model to talk to (default: $MODELWAY_CHAT_MODEL, else mock/echo).",
        ),
    ] = None,
    system: Annotated[str | None, typer.Option(help="System prompt for new sessions.")] = None,
    url: Annotated[
        str | None,
        typer.Option(
            help="A running gateway's URL, e.g. http://127.0.0.1:8080.", callback=gateway_url
        ),
    ] = None,
    key: Annotated[
        str | None,
        typer.Option(envvar="MODELWAY_API_KEY", help="Key for the gateway at --url."),
    ] = None,
    resume: Annotated[
        str | None, typer.Option(help="Reopen a saved session (id, id prefix or /history number).")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="Path to modelway.yaml.")] = None,
) -> None:
    """Chat with streamed Markdown; with stdin not a terminal, answer it once as plain text."""
    from modelway.chat.start import ChatOptions, run_chat
    from modelway.config import environment

    environ = environment()
    if key is not None and url is None and key != environ.get("MODELWAY_API_KEY"):
        typer.echo("--key is for a gateway: give its --url too", err=True)
        raise typer.Exit(2)
    options = ChatOptions(model, system, url, key, resume, config)
    raise typer.Exit(run_chat(options, environ))
