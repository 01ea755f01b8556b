"""The ``modelway`` Typer application; each command group lives in its own module."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="modelway",
    help="A self-hosted AI gateway: one endpoint in front of every LLM provider.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
