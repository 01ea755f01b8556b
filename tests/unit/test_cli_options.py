"""Command-line options as a user meets them: help that says what it should, values
given the ways the contract shows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner

import modelway.cli  # noqa: F401  (registers every command)
from modelway.cli.app import app as cli_app
from tests.unit.test_store_keys import cheap_argon2  # noqa: F401  (autouse)


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


@pytest.mark.parametrize(
    "given",
    [
        ["--models", "gpt-*", "claude-*", "mock/*"],
        ["--models", "gpt-*", "--models", "claude-*", "--models", "mock/*"],
        ["--models", "gpt-*,claude-*", "--models=mock/*"],
        ["--models=gpt-*", "claude-*", "--rpm", "5", "--models", "mock/*"],
    ],
    ids=["several-after-one-flag", "repeated", "commas", "mixed"],
)
def test_keys_create_takes_several_globs_after_one_models_flag(
    tmp_path: Path, given: list[str]
) -> None:
    environ = {"MODELWAY_DATA_DIR": str(tmp_path), "DATABASE_URL": "", "MODELWAY_MASTER_KEY": ""}
    result = CliRunner().invoke(
        cli_app, ["keys", "create", "--name", "n", *given, "--json"], env=environ
    )
    assert result.exit_code == 0, result.output
    listed = CliRunner().invoke(cli_app, ["keys", "list", "--json"], env=environ)
    (key,) = json.loads(listed.output)
    assert key["models"] == ["gpt-*", "claude-*", "mock/*"]


def test_a_stray_word_after_another_option_is_still_refused(tmp_path: Path) -> None:
    environ = {"MODELWAY_DATA_DIR": str(tmp_path), "DATABASE_URL": ""}
    result = CliRunner().invoke(
        cli_app, ["keys", "create", "--name", "n", "--rpm", "5", "stray"], env=environ
    )
    assert result.exit_code == 2 and "stray" in result.output


@pytest.mark.parametrize("given", [["--models", ""], ["--models", ","], ["--models= , "]])
def test_models_with_no_glob_in_it_is_refused_not_an_unrestricted_key(
    tmp_path: Path, given: list[str]
) -> None:
    # An empty shell variable (--models "$MODELS") must not make a key for every model.
    environ = {"MODELWAY_DATA_DIR": str(tmp_path), "DATABASE_URL": "", "MODELWAY_MASTER_KEY": ""}
    result = CliRunner().invoke(cli_app, ["keys", "create", "--name", "n", *given], env=environ)
    assert result.exit_code == 2 and "no model glob given" in result.output
    listed = CliRunner().invoke(cli_app, ["keys", "list", "--json"], env=environ)
    assert json.loads(listed.output) == []


def test_keys_and_usage_take_the_config_serve_was_given(tmp_path: Path) -> None:
    # `serve --config team.yaml` keeps its store where that file says: the key commands
    # must reach the same store (and Redis) without setting MODELWAY_CONFIG.
    config = tmp_path / "team.yaml"
    config.write_text(f'store: {{url: "sqlite+aiosqlite:///{tmp_path / "team.db"}"}}\n')
    environ = {"MODELWAY_DATA_DIR": str(tmp_path / "elsewhere"), "DATABASE_URL": ""}
    environ["MODELWAY_MASTER_KEY"] = ""
    runner = CliRunner()
    made = runner.invoke(
        cli_app, ["keys", "create", "--name", "t", "--config", str(config)], env=environ
    )
    assert made.exit_code == 0, made.output
    listed = runner.invoke(
        cli_app, ["keys", "list", "--json", "--config", str(config)], env=environ
    )
    assert [key["name"] for key in json.loads(listed.output)] == ["t"]
    default = runner.invoke(cli_app, ["keys", "list", "--json"], env=environ)
    assert json.loads(default.output) == []  # the default store is another one
    summary = runner.invoke(cli_app, ["usage", "--json", "--config", str(config)], env=environ)
    assert summary.exit_code == 0, summary.output
    both = runner.invoke(
        cli_app, ["keys", "list", "--url", "http://x", "--config", str(config)], env=environ
    )
    assert both.exit_code == 2 and "--config is for the store" in both.output
