"""The environment settings come from: ``.env`` overlaid by the process environment."""

from __future__ import annotations

import os

from dotenv import dotenv_values


def load_dotenv_file(path: str | os.PathLike[str] = ".env") -> dict[str, str]:
    """Return the variables a ``.env`` file sets ({} when it is absent); the caller merges.

    The process environment should win: ``{**load_dotenv_file(), **os.environ}``.
    """
    if not os.path.isfile(path):
        return {}
    # A bare ``NAME`` line (no ``=``) yields None: it sets nothing, so it is dropped.
    return {name: value for name, value in dotenv_values(path).items() if value is not None}


def environment() -> dict[str, str]:
    """``.env`` (in the working directory) overlaid by the process environment, which wins."""
    return {**load_dotenv_file(".env"), **os.environ}
