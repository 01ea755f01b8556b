"""The ``modelway`` command line: one module per command group."""

from __future__ import annotations

from modelway.cli import cache, chat, config_cmd, db, keys, mock, models, serve, usage  # noqa: F401  (register commands)
from modelway.cli.app import app


def main() -> None:
    """Entry point of the ``modelway`` console script."""
    app()
