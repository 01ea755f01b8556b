"""Start a real ``modelway mock`` process for a test, and always stop it."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator

READY = re.compile(r"modelway mock listening on (http://\S+)")
# The CLI module registers its command on import; this works with or without __main__.py.
RUN_CLI = "import modelway.cli.mock; from modelway.cli.app import app; app()"


@contextlib.contextmanager
def running_mock(*options: str, start_timeout: float = 60.0) -> Iterator[str]:
    """Run ``modelway mock --port 0 OPTIONS`` and yield its root URL (no trailing slash)."""
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(
            [sys.executable, "-c", RUN_CLI, "mock", "--port", "0", *options],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        try:
            url = _wait_until_ready(process, start_timeout)
            if url is None:
                stderr.seek(0)
                log = stderr.read().decode(errors="replace")
                raise RuntimeError(f"modelway mock did not start:\n{log}")
            yield url
        finally:
            _stop(process)


def providers_at(mock_url: str) -> dict[str, str]:
    """The environment that makes a gateway's anthropic, openai, ollama and gemini
    providers reach ``modelway mock`` at ``mock_url``, each in its own format."""
    return {
        "GEMINI_API_KEY": "gemini-upstream-000000000000",
        "GEMINI_BASE_URL": mock_url,
        "ANTHROPIC_API_KEY": "sk-ant-upstream-000000000000",
        "ANTHROPIC_BASE_URL": mock_url,
        "OPENAI_API_KEY": "sk-openai-upstream-000000000000",
        "OPENAI_BASE_URL": f"{mock_url}/v1",
        "OLLAMA_BASE_URL": mock_url,
    }


def _wait_until_ready(process: subprocess.Popen[str], timeout: float) -> str | None:
    # readline blocks, so it runs in a thread that the timeout can abandon.
    found: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            match = READY.search(line)
            if match:
                found.append(match.group(1))
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    return found[0] if found else None


def _stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdout is not None:
        process.stdout.close()
