"""A freshly started modelway worker: time until ``/health/ready`` answers, and idle RSS."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from bench.processes import Server, resident_bytes

SETTLE_SECONDS = 1.0


def run_startup(make_server: Callable[[], Server], repeats: int) -> dict[str, Any]:
    """Start ``repeats`` fresh servers; each one's ready time and its RSS once settled."""
    ready: list[float] = []
    idle: list[float] = []
    for _ in range(repeats):
        with make_server() as server:
            ready.append(server.ready_seconds)
            time.sleep(SETTLE_SECONDS)
            idle.append(resident_bytes(server.pid) / 1_000_000)
    return {
        "repeats": repeats,
        "ready_seconds": ready,
        "idle_rss_mb": idle,
        "ready_seconds_median": statistics.median(ready),
        "idle_rss_mb_median": statistics.median(idle),
    }
