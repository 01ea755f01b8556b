"""Start a real ``modelway serve`` process for a test, and always stop it."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

from tests.processes import stop

READY = re.compile(r"modelway listening on (http://\S+)")
# Start-up deadlines (here and in mockserver.py) are generous: a start takes about a
# second, but a CI machine busy installing packages beside the suite has taken over 20 s.
#: Provider variables a developer may have set; tests decide them explicitly.
_PROVIDER_VARS = re.compile(r"^[A-Z]+_(API_KEY|BASE_URL)$|^MODELWAY_")


@contextlib.contextmanager
def running_gateway(
    env: Mapping[str, str] | None = None,
    config: str | None = None,
    *options: str,
    start_timeout: float = 60.0,
) -> Iterator[str]:
    """Run ``modelway serve --port 0`` in an empty directory; yield its root URL."""
    with gateway_process(env, config, *options, start_timeout=start_timeout) as (url, _):
        yield url


@contextlib.contextmanager
def gateway_process(
    env: Mapping[str, str] | None = None,
    config: str | None = None,
    *options: str,
    start_timeout: float = 60.0,
    stderr_path: Path | None = None,
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """Like ``running_gateway``, also yielding the process (to signal it); its stderr
    goes to ``stderr_path`` when given (to read what it logged)."""
    with contextlib.ExitStack() as stack:
        workdir = stack.enter_context(tempfile.TemporaryDirectory())
        if stderr_path is None:
            stderr = stack.enter_context(tempfile.TemporaryFile())
        else:
            stderr = stack.enter_context(stderr_path.open("w+b"))
        args = [sys.executable, "-m", "modelway.cli", "serve", "--port", "0", *options]
        if config is not None:
            path = Path(workdir, "modelway.yaml")
            path.write_text(config)
            args += ["--config", str(path)]
        clean = {k: v for k, v in os.environ.items() if not _PROVIDER_VARS.match(k)}
        process = subprocess.Popen(
            args,
            cwd=workdir,
            env={**clean, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        try:
            url = _wait_for_banner(process, start_timeout)
            if url is None:
                stderr.seek(0)
                raise RuntimeError(
                    "modelway serve did not start:\n" + stderr.read().decode(errors="replace")
                )
            yield url, process
        finally:
            stop(process)
            if process.stdout is not None:
                process.stdout.close()


def _wait_for_banner(process: subprocess.Popen[str], timeout: float) -> str | None:
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
