"""Command-line options as a user meets them: help that says what it should, values
given the ways the contract shows."""

from __future__ import annotations

from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner

import modelway.cli  # noqa: F401  (registers every command)
from modelway.cli.app import app as cli_app


@pytest.mark.parametrize(
    "command",
    [["keys", "create"], ["keys", "list"], ["keys", "revoke"], ["usage"], ["cache", "stats"]],
    ids=" ".join,
)
def test_the_key_options_help_names_the_master_key_variable(command: list[str]) -> None:
    result = CliRunner().invoke(cli_app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Master key for --url (default: $MODELWAY_MASTER_KEY)." in result.output


def _commands() -> list[list[str]]:
    def walk(command: Any, path: list[str]) -> list[list[str]]:
        found = [path]
        for name, sub in getattr(command, "commands", {}).items():
            found += walk(sub, [*path, name])
        return found

    return walk(get_command(cli_app), [])


@pytest.mark.parametrize("command", _commands(), ids=lambda path: " ".join(path) or "modelway")
def test_every_help_text_is_shown_as_written(command: list[str]) -> None:
    # Help is rendered as Rich markup: a "[word ...]" in it would vanish from the screen.
    result = CliRunner().invoke(cli_app, [*command, "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    target = get_command(cli_app)
    for name in command:
        target = target.commands[name]
    for param in target.params:
        if getattr(param, "help", None):
            assert param.help in result.output, param.name
