"""The coding agents people point at a gateway, run for real through ``modelway serve``.

The CLIs come from npm as pinned in ``tests/agents/package-lock.json`` (installed by
``scripts/setup dev``). ``modelway mock`` is the upstream, speaking each provider's
format; a prompt of the form ``call <tool> {arguments}`` makes it ask the agent to run
that tool, so one run is a whole agent turn: the model asks for a file, the agent reads
it and sends it back, and the model's answer quotes it.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.gateway import running_gateway
from tests.integration.mockserver import providers_at, running_mock

AGENTS = Path(__file__).resolve().parents[1] / "agents" / "node_modules" / ".bin"
SECRET = "the secret word is kumquat"


@pytest.fixture(scope="module")
def mock_url() -> Iterator[str]:
    with running_mock() as url:
        yield url


@pytest.fixture(scope="module")
def gateway_url(mock_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {
        "MODELWAY_DATA_DIR": str(tmp_path_factory.mktemp("gateway")),
        **providers_at(mock_url),
    }
    with running_gateway(env) as url:
        yield url


def _agent_env(home: Path, **extra: str) -> dict[str, str]:
    """A clean environment: its own HOME (no user config, no login), no proxies."""
    keep = ("PATH", "LANG", "TMPDIR")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    quiet = {  # no update checks, telemetry or other calls home: the gateway is the network
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
    }
    return {**env, **quiet, "HOME": str(home), "NO_COLOR": "1", **extra}


def _run_agent(
    command: list[str], workdir: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run an agent CLI from ``tests/agents`` to its end; it must exit 0."""
    done = subprocess.run(
        [str(AGENTS / command[0]), *command[1:]],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


# Claude Code speaks Anthropic's format: relayed as it is to an Anthropic-format upstream,
# translated to the others (system turns mid-conversation, cache_control, thinking...).
@pytest.mark.parametrize(
    "model",
    [
        "anthropic/claude-sonnet-4-6",
        "openai/claude-sonnet-4-6",
        "ollama/claude-sonnet-4-6",
        # Another family's name: Claude Code then adds a system turn after the user's.
        "openai/gpt-4o",
    ],
    ids=["anthropic-format", "openai-format", "ollama-format", "not-a-claude-name"],
)
def test_claude_code_reads_a_file_through_the_gateway(
    gateway_url: str, tmp_path: Path, model: str
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text(SECRET + "\n")
    (tmp_path / "home").mkdir()
    env = _agent_env(
        tmp_path / "home",
        ANTHROPIC_BASE_URL=gateway_url,
        ANTHROPIC_API_KEY="sk-ant-for-the-gateway-0000",
    )
    prompt = f'call Read {{"file_path": "{notes}"}}'
    done = _run_agent(
        ["claude", "-p", prompt, "--model", model, "--allowedTools", "Read"], tmp_path, env
    )
    # The mock's last answer quotes the tool result Claude Code sent back: the file.
    assert "The Read tool returned" in done.stdout and SECRET in done.stdout, done.stdout


# Codex speaks the Responses API: relayed as it is to OpenAI (namespace and hosted tools,
# encrypted reasoning included); translated to the others (namespace tools flattened,
# hosted ones left out).
@pytest.mark.parametrize(
    "model",
    ["openai/gpt-5", "anthropic/gpt-5", "ollama/gpt-5"],
    ids=["openai-format", "anthropic-format", "ollama-format"],
)
def test_codex_runs_a_command_through_the_gateway(
    gateway_url: str, tmp_path: Path, model: str
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text(SECRET + "\n")
    codex_home = tmp_path / "home" / ".codex"
    codex_home.mkdir(parents=True)
    (codex_home / "config.toml").write_text(
        f'model = "{model}"\n'
        'model_provider = "modelway"\n'
        "[model_providers.modelway]\n"
        'name = "modelway"\n'
        f'base_url = "{gateway_url}/v1"\n'
        'env_key = "MODELWAY_API_KEY"\n'
        'wire_api = "responses"\n'
    )
    env = _agent_env(
        tmp_path / "home", CODEX_HOME=str(codex_home), MODELWAY_API_KEY="mw-for-the-gateway"
    )
    prompt = f'call exec_command {{"cmd": "cat {notes}"}}'
    done = _run_agent(["codex", "exec", "--skip-git-repo-check", prompt], tmp_path, env)
    assert "The exec_command tool returned" in done.stdout, done.stdout + done.stderr
    assert SECRET in done.stdout.split("The exec_command tool returned", 1)[1]


def test_claude_code_stops_at_a_wrong_key_instead_of_retrying_it(
    mock_url: str, tmp_path: Path
) -> None:
    # A 401 with no x-should-retry: false is retried ten times with backoff: minutes of a
    # hung agent for a typo in the key. With it, Claude Code says so and exits.
    env = {
        "MODELWAY_DATA_DIR": str(tmp_path / "gateway"),
        "MODELWAY_MASTER_KEY": "master-key-for-this-test-0123",
        **providers_at(mock_url),
    }
    (tmp_path / "home").mkdir()
    with running_gateway(env) as url:
        agent_env = _agent_env(
            tmp_path / "home", ANTHROPIC_BASE_URL=url, ANTHROPIC_API_KEY="mw-wrong-key"
        )
        done = subprocess.run(
            [str(AGENTS / "claude"), "-p", "hi", "--model", "anthropic/claude-sonnet-4-6"],
            cwd=tmp_path,
            env=agent_env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode != 0
    assert "invalid api key" in (done.stdout + done.stderr).lower(), done.stdout + done.stderr
