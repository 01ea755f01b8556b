"""instructor as a client of the gateway, in its own environment.

instructor pins ``jiter`` below what the project's ``openai`` SDK needs, so it cannot share
``uv.lock``: ``scripts/setup dev`` installs it into ``tests/agents/python/.venv`` from that
folder's own lock, and each case runs ``tests/agents/python/instructor_client.py`` with that
environment's Python against ``modelway serve``, whose upstream is ``modelway mock``
speaking each provider format. The script extracts a pydantic ``City`` and prints it as
JSON; the mock answers a structured-output request or a forced tool call with an example
valid against the schema, so what comes back must have the model's shape and types.

instructor's prompt-only modes (``JSON``, ``MD_JSON``, ``ANTHROPIC_JSON``) are left out:
they put the schema in a prompt, which the mock does not read. ``JSON_SCHEMA`` through the
Anthropic endpoint is one of them with instructor 1.17 and anthropic 0.93 (it checks the
non-beta ``Messages.create`` for ``output_format``, finds none and falls back to a prompt).

Starting instructor and both SDKs costs about a second of CPU, more than the calls, so
the script runs every mode of a model in one process, one for the whole answers and one
for the streamed; the eight start together when the first test asks, and each test reads
its own mode's line.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.integration.gateway import running_gateway
from tests.integration.mockserver import providers_at, running_mock

pytestmark = pytest.mark.integration

AGENTS = Path(__file__).resolve().parents[1] / "agents" / "python"
PYTHON = AGENTS / ".venv" / "bin" / "python"
CLIENT = AGENTS / "instructor_client.py"
#: The upstream formats the mock serves, as models the gateway routes to each.
MODELS = ["openai/gpt-5", "anthropic/claude-sonnet-4-6", "ollama/llama3", "gemini/gemini-2.5-flash"]
#: The instructor modes run, whole and streamed (``create_partial``). The ``ANTHROPIC_*``
#: modes go through the gateway's Anthropic endpoint, the others its Chat Completions one.
WHOLE = ["JSON_SCHEMA", "TOOLS", "TOOLS_STRICT", "ANTHROPIC_TOOLS"]
STREAMED = ["JSON_SCHEMA", "TOOLS", "ANTHROPIC_TOOLS"]
CASES = [
    (model, mode, streamed)
    for model in MODELS
    for streamed, modes in ((False, WHOLE), (True, STREAMED))
    for mode in modes
]
#: Seconds one run of the script (every mode of a model, whole or streamed) may take.
RUN_TIMEOUT = 45

Case = tuple[str, str, bool]
Run = tuple[str, bool]


def case_id(case: Case) -> str:
    model, mode, streamed = case
    endpoint = "anthropic" if mode.startswith("ANTHROPIC_") else "openai"
    return f"{model}-{endpoint}-{mode}-{'streamed' if streamed else 'whole'}"


@pytest.fixture(scope="module")
def gateway_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not PYTHON.exists():
        pytest.fail(
            f"instructor's environment {PYTHON.parent.parent} is missing: "
            "run `scripts/setup dev` (it installs tests/agents/python/uv.lock there)",
            pytrace=False,
        )
    with running_mock() as mock_url:
        env = {
            "MODELWAY_DATA_DIR": str(tmp_path_factory.mktemp("gateway")),
            **providers_at(mock_url),
            "GEMINI_API_KEY": "gemini-upstream-000000000000",
            "GEMINI_BASE_URL": mock_url,
        }
        with running_gateway(env) as url:
            yield url


@pytest.fixture(scope="module")
def runs(gateway_url: str) -> Iterator[dict[Run, Future[subprocess.CompletedProcess[str]]]]:
    """The script's runs, one per model whole and one streamed, all started together."""
    with ThreadPoolExecutor(len(MODELS) * 2) as pool:
        futures = {
            (model, streamed): pool.submit(
                run_client, gateway_url, model, STREAMED if streamed else WHOLE, streamed
            )
            for model in MODELS
            for streamed in (False, True)
        }
        yield futures


def run_client(
    url: str, model: str, modes: list[str], streamed: bool
) -> subprocess.CompletedProcess[str]:
    args = [str(PYTHON), str(CLIENT), url, model, *modes, *(["--stream"] if streamed else [])]
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired as expired:
        out = expired.stdout.decode(errors="replace") if expired.stdout else ""
        err = expired.stderr.decode(errors="replace") if expired.stderr else ""
        return subprocess.CompletedProcess(args, -1, out, f"timed out after {RUN_TIMEOUT}s\n{err}")


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_instructor_extracts_a_pydantic_object_through_the_gateway(
    runs: dict[Run, Future[subprocess.CompletedProcess[str]]], case: Case
) -> None:
    model, mode, streamed = case
    done = runs[model, streamed].result()
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    line = next((line for line in lines if line.get("mode") == mode), None)
    assert line is not None and "city" in line, (
        f"{' '.join(done.args)} exited {done.returncode}; for {mode}: {line}\n{done.stderr[-4000:]}"
    )
    city: Any = line["city"]
    assert isinstance(city, dict) and set(city) == {"name", "population", "landmarks"}, city
    assert isinstance(city["name"], str) and city["name"], city
    assert isinstance(city["population"], int) and not isinstance(city["population"], bool), city
    landmarks = city["landmarks"]
    assert isinstance(landmarks, list) and landmarks, city
    assert all(isinstance(landmark, str) for landmark in landmarks), city
