"""A freshly started modelway worker: time until ``/health/ready`` answers, and idle RSS.

``modelway serve`` is a small supervisor process and the workers it forks; the idle
figure is the worker's (the supervisor's is reported beside it).

The first start meets an empty data directory and creates the store (Alembic runs the
migrations); it is reported apart. The measured starts find the store at its newest
revision, as every start but the first does.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from bench.processes import Server, worker_bytes

SETTLE_SECONDS = 1.0


def _start_once(make_server: Callable[[], Server]) -> tuple[float, float, float]:
    """One start: seconds until ready; worker and supervisor resident MB once settled."""
    with make_server() as server:
        ready = server.ready_seconds
        time.sleep(SETTLE_SECONDS)
        worker, supervisor = worker_bytes(server.pid)
        return ready, worker / 1_000_000, supervisor / 1_000_000


def run_startup(make_server: Callable[[], Server], repeats: int) -> dict[str, Any]:
    """A first start that creates the store, then ``repeats`` measured fresh starts."""
    first_ready, first_rss, _ = _start_once(make_server)
    ready: list[float] = []
    idle: list[float] = []
    supervisor: list[float] = []
    for _ in range(repeats):
        seconds, rss, parent = _start_once(make_server)
        ready.append(seconds)
        idle.append(rss)
        supervisor.append(parent)
    return {
        "repeats": repeats,
        "first_start": {"ready_seconds": first_ready, "idle_rss_mb": first_rss},
        "ready_seconds": ready,
        "idle_rss_mb": idle,
        "supervisor_rss_mb": supervisor,
        "ready_seconds_median": statistics.median(ready),
        "idle_rss_mb_median": statistics.median(idle),
        "supervisor_rss_mb_median": statistics.median(supervisor),
    }
