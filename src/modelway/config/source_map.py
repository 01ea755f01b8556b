"""Where each value of a config file sits, so that every problem can name its line."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: A position in the config data: mapping keys and list indexes from the top.
ConfigPath = tuple[str | int, ...]

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")


class ConfigError(Exception):
    """The configuration cannot be used; each problem reads ``file:line: path: message``."""

    def __init__(self, *problems: str) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def format_path(path: ConfigPath) -> str:
    """Render a path as a reader writes it: ``models[0].deployments[1].weight``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            text += f".{part}" if text else part
        else:
            text += f"[{part!r}]"
    return text or "(top level)"


@dataclass
class SourceMap:
    """The 1-based line of every key and value of one config file."""

    name: str
    key_lines: dict[ConfigPath, int] = field(default_factory=dict)
    value_lines: dict[ConfigPath, int] = field(default_factory=dict)

    def line(self, path: ConfigPath) -> int:
        """Line of the key naming ``path``, else of its value, else of its nearest ancestor."""
        while path:
            line = self.key_lines.get(path) or self.value_lines.get(path)
            if line is not None:
                return line
            path = path[:-1]
        return self.value_lines.get((), 1)

    def problem(self, path: ConfigPath, message: str, *, line: int | None = None) -> str:
        """Format one problem as ``file:line: path: message``."""
        return f"{self.name}:{line or self.line(path)}: {format_path(path)}: {message}"
