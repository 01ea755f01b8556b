"""Stopping a process a test started: asked first, killed if it will not go."""

from __future__ import annotations

import subprocess


def stop(process: subprocess.Popen[bytes], *, kill: bool = False, within: float = 10.0) -> None:
    """SIGTERM (SIGKILL with ``kill``), then SIGKILL if it is still there after ``within`` s."""
    if kill:
        process.kill()
    else:
        process.terminate()
    try:
        process.wait(timeout=within)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
