"""The targets ``make bench`` checks, on results made here: ratios against the reference
relay — the fastest pair in the suite, granian RSGI + aiohttp (../shared/BENCHMARKS.md)."""

from __future__ import annotations

from typing import Any

from bench.servers import REFERENCE_RELAY, RELAY_VARIANTS
from bench.targets import (
    BARE_KEY,
    PIPELINE_KEY,
    REFERENCE_KEY,
    latency_targets,
    streaming_targets,
    throughput_targets,
    workers_target,
)


def http(**rps: float) -> dict[str, Any]:
    return {key: {"c32": {"rps": value}} for key, value in rps.items()}


def test_the_reference_is_the_rsgi_relay_with_the_lean_client_and_comes_first() -> None:
    assert (REFERENCE_RELAY.server, REFERENCE_RELAY.client) == ("granian-rsgi", "aiohttp-lean")
    assert RELAY_VARIANTS[0] == REFERENCE_RELAY
    assert f"relay-{REFERENCE_RELAY.server}-{REFERENCE_RELAY.client}" == REFERENCE_KEY


def test_open_mode_needs_085_and_the_full_pipeline_075_of_the_reference() -> None:
    rows = throughput_targets(http(**{REFERENCE_KEY: 1000, BARE_KEY: 850, PIPELINE_KEY: 749}))
    bare, pipeline = rows[0], rows[1]
    assert (bare.target, bare.met) == ("≥ 0.85\u00d7 reference relay", True)
    assert (pipeline.target, pipeline.met) == ("≥ 0.75\u00d7 reference relay", False)
    assert "0.75\u00d7 (749 vs 1,000 req/s)" in pipeline.measured


def test_added_latency_at_one_connection_half_a_millisecond_median_15_p99() -> None:
    results = {
        "direct": {"c1": {"p50_ms": 0.1, "p99_ms": 1.0}},
        PIPELINE_KEY: {"c1": {"p50_ms": 0.55, "p99_ms": 2.6}},
    }
    median, p99 = latency_targets(results)
    assert (median.target, median.met) == ("median ≤ 0.5 ms over direct", True)
    assert (p99.target, p99.met) == ("p99 ≤ 1.5 ms over direct", False)


def level(held: float, ttft: float, rss: float = 100.0, tree: float = 170.0) -> dict[str, Any]:
    return {
        "extra_max_ms": held,
        "ttft_p50_ms": ttft,
        "peak_worker_rss_mb": rss,
        "peak_rss_mb": tree,
    }


def test_a_thousand_streams_are_held_to_the_reference_relays_figures() -> None:
    streams = {
        "direct": {"levels": {"1": level(1, 50), "1000": level(10, 60)}},
        "relay": {"levels": {"1000": level(120, 300)}},
        "modelway": {"levels": {"1": level(2, 50.5), "1000": level(110, 320, rss=190, tree=260)}},
    }
    _, held, ttft, memory = streaming_targets(streams, 1000)
    assert (held.measured, held.met) == ("110.0 vs 120.0 ms", True)
    assert (ttft.measured, ttft.met) == ("320.0 vs 300.0 ms", False)
    # Per worker: the worker's own peak, not the sum with its supervisor.
    assert (memory.measured, memory.met) == ("190 MB peak", True)
    assert "260 MB with its supervisor" in memory.note


def test_without_the_reference_relays_streams_nothing_is_met() -> None:
    streams = {"modelway": {"levels": {"1000": level(1, 1)}}}
    _, held, ttft, _ = streaming_targets(streams, 1000)
    assert held.met is None and ttft.met is None and held.measured == "not measured"


def scale(one: float, two: float, relay_ratio: float | None = 1.5) -> dict[str, Any]:
    def entry(rps: float) -> dict[str, Any]:
        return {"rps": rps, "wrk_us": 20.0, "nginx_us": 10.0}

    ratios = {"modelway-pipeline": two / one}
    if relay_ratio is not None:
        ratios["reference-relay"] = relay_ratio
    return {
        "targets": {"modelway-pipeline-1w": entry(one), "modelway-pipeline-2w": entry(two)},
        "ratios": ratios,
        "launcher": "taskset -c 0",
        "connections": 64,
    }


def test_two_workers_need_16_times_one_worker_and_say_what_the_load_generator_took() -> None:
    met = workers_target(scale(4000, 6400))
    assert (met.target, met.met) == ("≥ 1.6\u00d7 one worker", True)
    assert met.measured == "1.60\u00d7 (6,400 vs 4,000 req/s); reference relay 1.50\u00d7"
    assert "wrk and nginx under `taskset -c 0`, 30 µs of CPU per request" in met.note
    assert workers_target(scale(4000, 6000, relay_ratio=None)).met is False


def test_without_the_workers_scenario_the_row_is_not_measured() -> None:
    row = workers_target(None)
    assert (row.measured, row.met) == ("not measured", None)
