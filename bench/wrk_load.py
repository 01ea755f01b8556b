"""Non-streaming load with wrk: one connection for latency, many for throughput."""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

LUA_SCRIPT = Path(__file__).parent / "wrk" / "chat.lua"
MARKER = "BENCH_JSON "


@dataclass(frozen=True)
class WrkRun:
    """One wrk run's figures (latencies in milliseconds)."""

    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    requests: int
    errors: int


@dataclass
class LoadResult:
    """Repeated runs at one connection count, and their medians."""

    connections: int
    runs: list[WrkRun] = field(default_factory=list)

    def median(self, name: str) -> float:
        return float(statistics.median(getattr(run, name) for run in self.runs))

    def summary(self) -> dict[str, Any]:
        return {
            "connections": self.connections,
            "rps": self.median("rps"),
            "p50_ms": self.median("p50_ms"),
            "p90_ms": self.median("p90_ms"),
            "p99_ms": self.median("p99_ms"),
            "errors": sum(run.errors for run in self.runs),
            "requests": sum(run.requests for run in self.runs),
            "runs": [asdict(run) for run in self.runs],
        }


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk is not installed: run bench/run.sh, which installs it")
    return found


def run_wrk(
    url: str,
    model: str,
    connections: int,
    seconds: float,
    api_key: str,
    launcher: Sequence[str] = (),
) -> WrkRun:
    """Run wrk once against ``url`` (the chat completions URL) and parse the Lua summary.

    ``launcher`` goes before wrk's command line (e.g. ``taskset -c 0``).
    """
    command = [
        *launcher,
        wrk_binary(),
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA_SCRIPT),
        url,
        "--",
        model,
        api_key,
    ]
    finished = subprocess.run(command, capture_output=True, text=True, check=True)
    for line in finished.stdout.splitlines():
        if line.startswith(MARKER):
            data = json.loads(line.removeprefix(MARKER))
            return WrkRun(
                rps=data["rps"],
                p50_ms=data["p50_ms"],
                p90_ms=data["p90_ms"],
                p99_ms=data["p99_ms"],
                mean_ms=data["mean_ms"],
                max_ms=data["max_ms"],
                requests=data["requests"],
                errors=sum(data["errors"].values()),
            )
    raise RuntimeError(f"wrk printed no summary:\n{finished.stdout}\n{finished.stderr}")


def measure(
    url: str, model: str, connections: int, seconds: float, repeats: int, api_key: str
) -> LoadResult:
    """``repeats`` runs of ``seconds`` each at ``connections``; figures are their medians."""
    result = LoadResult(connections)
    for _ in range(repeats):
        result.runs.append(run_wrk(url, model, connections, seconds, api_key))
    return result


#: Seconds the one request before a warm-up may take (a virtual key's first Argon2 check).
FIRST_REQUEST_SECONDS = 60.0


def first_request(url: str, model: str, api_key: str) -> None:
    """One request, answered, before any load: a virtual key is verified (Argon2, one check
    at a time per worker) and cached, so the warm-up's 32 connections do not all queue for
    it on a busy machine."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": "Say hello in one short sentence."}],
        "max_tokens": 32,
    }
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json", "authorization": f"Bearer {api_key}"},
    )
    with urllib.request.urlopen(request, timeout=FIRST_REQUEST_SECONDS) as answer:
        answer.read()


def warm_up(url: str, model: str, seconds: float, api_key: str) -> int:
    """Load the target briefly so pools are open and code paths are hot before measuring.

    Returns how many requests it answered.
    """
    first_request(url, model, api_key)
    run = run_wrk(url, model, 32, seconds, api_key)
    if run.requests == 0 or run.errors >= run.requests:
        raise RuntimeError(f"warm-up against {url}: {run.requests} requests, {run.errors} errors")
    return run.requests
