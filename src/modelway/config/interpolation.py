"""``${VAR}`` and ``${VAR:-default}`` in config strings, resolved from a given environment."""

from __future__ import annotations

import re
from collections.abc import Mapping

# ``$${`` is the escape for a literal ``${``; a ``${`` with no closing brace is an error.
_TOKEN = re.compile(r"\$\$\{|\$\{(?P<body>[^}]*)(?P<close>\})?")
_REFERENCE = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?\Z", re.DOTALL)


class InterpolationError(ValueError):
    """A ``${...}`` reference is malformed or names an unset variable with no default."""


def interpolate(text: str, environ: Mapping[str, str]) -> str:
    """Replace each ``${VAR}`` / ``${VAR:-default}`` in ``text`` with its value from ``environ``."""
    if "$" not in text:
        return text

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        body = match.group("body")
        if match.group("close") is None:
            raise InterpolationError(f"unterminated reference ${{{body}: expected a closing }}")
        reference = _REFERENCE.match(body)
        if reference is None:
            raise InterpolationError(
                f"malformed reference ${{{body}}}: expected ${{NAME}} or ${{NAME:-default}}"
            )
        name, default = reference.group("name"), reference.group("default")
        value = environ.get(name)
        if default is not None and not value:
            # Shell semantics: ``:-`` also replaces a variable that is set but empty.
            return default
        if value is None:
            raise InterpolationError(
                f"environment variable {name} is not set (write ${{{name}:-default}} for a default)"
            )
        return value

    return _TOKEN.sub(substitute, text)
