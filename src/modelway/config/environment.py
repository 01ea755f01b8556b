"""The environment settings come from: ``.env`` overlaid by the process environment."""

from __future__ import annotations

import io
import os

from dotenv import dotenv_values

from modelway.config.source_map import ConfigError


def load_dotenv_file(path: str | os.PathLike[str] = ".env") -> dict[str, str]:
    """Return the variables a ``.env`` file sets ({} when it is absent); the caller merges.

    The process environment should win: ``{**load_dotenv_file(), **os.environ}``.
    """
    if not os.path.isfile(path):
        return {}
    with open(path, "rb") as file:
        raw = file.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{os.fspath(path)} is not UTF-8 text (byte {raw[error.start]:#04x} at offset "
            f"{error.start}): save it as UTF-8"
        ) from None
    # A bare ``NAME`` line (no ``=``) yields None: it sets nothing, so it is dropped.
    values = dotenv_values(stream=io.StringIO(text))
    return {name: value for name, value in values.items() if value is not None}


def environment() -> dict[str, str]:
    """``.env`` (in the working directory) overlaid by the process environment, which wins."""
    return {**load_dotenv_file(".env"), **os.environ}
