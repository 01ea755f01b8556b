"""Non-streaming scenarios: every target against the same nginx, runs interleaved.

All targets are started first and warmed up; then each repeat measures every target in
turn (1 connection for latency, 32 for throughput), so slow drift on a shared machine
spreads over all of them instead of favouring whoever ran first.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from bench.memory import PeakRss
from bench.processes import Server, resident_bytes
from bench.settings import Settings
from bench.wrk_load import LoadResult, run_wrk, warm_up

LATENCY_CONNECTIONS = 1
THROUGHPUT_CONNECTIONS = 32


@dataclass
class HttpTarget:
    """Something wrk can load: its chat URL, the model name it expects, and its process.

    ``api_key`` is the bearer key wrk sends; without one, the run's shared key.
    """

    key: str
    label: str
    kind: str  # direct | relay | modelway | litellm
    server: Server
    model: str
    api_key: str | None = None
    latency: LoadResult = field(default_factory=lambda: LoadResult(LATENCY_CONNECTIONS))
    throughput: LoadResult = field(default_factory=lambda: LoadResult(THROUGHPUT_CONNECTIONS))
    idle_rss_mb: float = 0.0
    peak_rss_mb: float = 0.0
    warmup_requests: int = 0

    @property
    def chat_url(self) -> str:
        return f"{self.server.url}/v1/chat/completions"

    def summary(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "kind": self.kind,
            "ready_seconds": self.server.ready_seconds,
            "idle_rss_mb": self.idle_rss_mb,
            "peak_rss_mb": self.peak_rss_mb,
            "warmup_requests": self.warmup_requests,
            "c1": self.latency.summary(),
            "c32": self.throughput.summary(),
        }


def run_http_phase(targets: list[HttpTarget], settings: Settings, api_key: str) -> dict[str, Any]:
    """Warm every target, then ``settings.repeats`` interleaved rounds; the summaries by key."""
    for target in targets:
        target.idle_rss_mb = resident_bytes(target.server.pid) / 1_000_000
        print(f"  warm-up {target.label}", flush=True)
        target.warmup_requests = warm_up(
            target.chat_url, target.model, settings.warmup_seconds, target.api_key or api_key
        )
    for repeat in range(settings.repeats):
        for target in targets:
            print(f"  round {repeat + 1}/{settings.repeats}: {target.label}", flush=True)
            with PeakRss(target.server.pid) as rss:
                for load in (target.latency, target.throughput):
                    load.runs.append(
                        run_wrk(
                            target.chat_url,
                            target.model,
                            load.connections,
                            settings.seconds,
                            target.api_key or api_key,
                        )
                    )
            target.peak_rss_mb = max(target.peak_rss_mb, rss.peak_mb)
    return {target.key: target.summary() for target in targets}


#: Between two runs of a pair: each run's usage records and log lines are written before
#: the next run is measured, so neither is charged for the other's tail.
PAIR_PAUSE_SECONDS = 1.0


def run_paired(on: HttpTarget, off: HttpTarget, settings: Settings, api_key: str) -> dict[str, Any]:
    """``on`` against ``off`` in ``settings.ab_pairs`` back-to-back pairs at 32 connections.

    Each pair runs both within seconds, first one then the other (ABBA: the order flips
    every pair), so drift on a shared machine hits both runs of a pair alike; the figure
    is the median of the pairs' ratios, not a ratio of medians taken minutes apart.
    """
    ratios: list[float] = []
    on_rps: list[float] = []
    off_rps: list[float] = []
    for pair in range(settings.ab_pairs):
        order = (on, off) if pair % 2 == 0 else (off, on)
        rps: dict[str, float] = {}
        for target in order:
            time.sleep(PAIR_PAUSE_SECONDS)
            run = run_wrk(
                target.chat_url,
                target.model,
                THROUGHPUT_CONNECTIONS,
                settings.ab_seconds,
                target.api_key or api_key,
            )
            rps[target.key] = run.rps
        on_rps.append(rps[on.key])
        off_rps.append(rps[off.key])
        ratios.append(rps[on.key] / rps[off.key] if rps[off.key] else 0.0)
        print(f"  pair {pair + 1}/{settings.ab_pairs}: {ratios[-1]:.3f}", flush=True)
    return {
        "on": on.key,
        "off": off.key,
        "seconds": settings.ab_seconds,
        "ratios": ratios,
        "ratio": statistics.median(ratios) if ratios else None,
        "on_rps": on_rps,
        "off_rps": off_rps,
    }
