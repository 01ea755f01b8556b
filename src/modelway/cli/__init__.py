"""The ``modelway`` command line: one module per command group."""

from __future__ import annotations

import sys

from modelway.cli import cache, chat, config_cmd, db, keys, mock, models, serve, usage  # noqa: F401  (register commands)
from modelway.cli.app import app


def main() -> None:
    """Entry point of the ``modelway`` console script."""
    from modelway.config import ConfigError

    try:
        app()
    except ConfigError as error:  # one a command did not catch itself: a .env not UTF-8
        print(f"config error: {error}", file=sys.stderr)
        sys.exit(2)
