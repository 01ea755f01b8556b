"""The machine and the versions a run used, for the report's header."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import subprocess
from pathlib import Path
from typing import Any

import psutil

from bench.servers import LITELLM_BIN, litellm_installed

PACKAGES = ("modelway", "granian", "uvicorn", "aiohttp", "httpx", "starlette", "orjson")


def os_name() -> str:
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return platform.platform()
    found = re.search(r'^PRETTY_NAME="?([^"\n]*)"?', text, re.MULTILINE)
    return f"{found.group(1) if found else platform.system()}, kernel {platform.release()}"


def cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor()
    found = re.search(r"^model name\s*:\s*(.*)$", text, re.MULTILINE)
    return found.group(1).strip() if found else platform.processor()


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "cpu": cpu_model(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "os": os_name(),
    }


def _first_line(command: list[str], pattern: str) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except OSError:
        return "not installed"
    found = re.search(pattern, done.stdout + done.stderr)
    return found.group(1) if found else "unknown"


def versions() -> dict[str, str]:
    found = {name: importlib.metadata.version(name) for name in PACKAGES}
    found["litellm"] = (
        _first_line(
            [
                str(LITELLM_BIN / "python"),
                "-c",
                "import importlib.metadata as m; print(m.version('litellm'))",
            ],
            r"(\S+)",
        )
        if litellm_installed()
        else "not installed"
    )
    found["nginx"] = _first_line(["/usr/sbin/nginx", "-v"], r"nginx/(\S+)")
    found["wrk"] = _first_line(["wrk", "-v"], r"wrk (\S+)")
    return found
