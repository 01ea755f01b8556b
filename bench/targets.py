"""The targets of /work/shared/BENCHMARKS.md, checked against one run's figures.

Each target is a ratio or a difference against references measured in the same run.
A target whose reference is missing (LiteLLM not installed) is "not measured", never met.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from bench.servers import REFERENCE_RELAY

REFERENCE_KEY = f"relay-{REFERENCE_RELAY.server}-{REFERENCE_RELAY.client}"
#: modelway in open mode (no keys): the bare relay path.
BARE_KEY = "modelway"
#: modelway with a master key, serving a virtual key with limits: the whole pipeline.
PIPELINE_KEY = "modelway-pipeline"
#: The same with metrics and request logs off.
QUIET_PIPELINE_KEY = "modelway-pipeline-quiet"
#: modelway in open mode answering every request from its response cache (memory).
CACHE_HIT_KEY = "modelway-cache-hit"


@dataclass(frozen=True)
class TargetCheck:
    """One row of the targets table."""

    scenario: str
    target: str
    measured: str
    met: bool | None  # None: not measured in this run
    note: str = ""


def _rps(http: dict[str, Any], key: str) -> float | None:
    entry = http.get(key)
    if not entry or "c32" not in entry:
        return None
    return float(entry["c32"]["rps"])


def _check(value: float | None, limit: float, *, at_least: bool) -> bool | None:
    if value is None:
        return None
    return value >= limit if at_least else value <= limit


def _ratio(value: float | None, reference: float | None) -> float | None:
    return value / reference if value and reference else None


def throughput_targets(
    http: dict[str, Any], paired: dict[str, Any] | None = None
) -> list[TargetCheck]:
    bare, pipeline, reference, litellm, quiet = (
        _rps(http, key)
        for key in (BARE_KEY, PIPELINE_KEY, REFERENCE_KEY, "litellm", QUIET_PIPELINE_KEY)
    )
    observed = _ratio(pipeline, quiet)
    if paired and paired.get("ratio"):
        # Back-to-back pairs cancel the drift a shared machine has between rounds.
        observed = paired["ratio"]
        pairs = len(paired["ratios"])
        observed_text = (
            f"{observed:.2f}\u00d7, median of {pairs} back-to-back pairs "
            f"(rounds: {_ratio(pipeline, quiet) or 0:.2f}\u00d7, "
            f"{pipeline or 0:,.0f} vs {quiet or 0:,.0f} req/s)"
        )
    else:
        observed_text = (
            f"{observed:.2f}\u00d7 ({pipeline:,.0f} vs {quiet:,.0f} req/s)"
            if observed and pipeline and quiet
            else "not measured"
        )
    bare_to_reference = _ratio(bare, reference)
    to_reference = _ratio(pipeline, reference)
    to_litellm = _ratio(pipeline, litellm)
    pipeline_note = (
        "master key set; wrk sends a virtual key (rpm and tpm limits never reached): "
        "every request authenticated, admitted, settled and recorded"
    )
    return [
        TargetCheck(
            "bare relay path, non-streaming, 32 connections, 1 worker",
            "≥ 0.85\u00d7 reference relay",
            f"{bare_to_reference:.2f}\u00d7 ({bare:,.0f} vs {reference:,.0f} req/s)"
            if bare_to_reference and bare and reference
            else "not measured",
            _check(bare_to_reference, 0.85, at_least=True),
            "open mode: no master key, no virtual key",
        ),
        TargetCheck(
            "full pipeline, same load",
            "≥ 0.75\u00d7 reference relay",
            f"{to_reference:.2f}\u00d7 ({pipeline:,.0f} vs {reference:,.0f} req/s)"
            if to_reference and pipeline and reference
            else "not measured",
            _check(to_reference, 0.75, at_least=True),
            pipeline_note,
        ),
        TargetCheck(
            "full pipeline, same load",
            "≥ 25\u00d7 LiteLLM",
            f"{to_litellm:.1f}\u00d7 ({pipeline:,.0f} vs {litellm:,.0f} req/s)"
            if to_litellm and pipeline and litellm
            else "not measured (LiteLLM not in this run)",
            _check(to_litellm, 25.0, at_least=True),
        ),
        TargetCheck(
            "full pipeline, metrics and JSON request logs on",
            "≥ 0.95\u00d7 the same with them off",
            observed_text,
            _check(observed, 0.95, at_least=True),
            (
                f"pairs of {paired['seconds']:g} s runs at 32 connections, order flipped "
                "each pair; quick mode: one pair of 1 s, within this machine's noise"
            )
            if paired
            else "",
        ),
    ]


#: The 2-worker figure over the 1-worker one, each the full pipeline (bench/workers_scale.py).
WORKERS_SCALE = 1.6


def workers_target(scale: dict[str, Any] | None) -> TargetCheck:
    """2 workers serve at least 1.6 times one worker's full pipeline on this 2-core machine."""
    ratios = (scale or {}).get("ratios", {})
    ratio, relay = ratios.get("modelway-pipeline"), ratios.get("reference-relay")
    measured, note = "not measured", ""
    if scale and ratio:
        targets = scale["targets"]
        one, two = targets["modelway-pipeline-1w"], targets["modelway-pipeline-2w"]
        measured = f"{ratio:.2f}\u00d7 ({two['rps']:,.0f} vs {one['rps']:,.0f} req/s)"
        if relay:
            measured += f"; reference relay {relay:.2f}\u00d7"
        confined = ratios.get("modelway-pipeline-core1")
        load = two["wrk_us"] + two["nginx_us"]
        pinned = f"under `{scale['launcher']}`" if scale["launcher"] else "not pinned"
        note = (
            f"wrk and nginx {pinned}, {load:.0f} µs of CPU per request; "
            f"{scale['connections']} connections"
            + (f"; {confined:.2f}\u00d7 one worker confined to one core" if confined else "")
        )
    return TargetCheck(
        "2 workers on 2 cores (load generator pinned apart), full pipeline",
        f"≥ {WORKERS_SCALE}\u00d7 one worker",
        measured,
        _check(ratio, WORKERS_SCALE, at_least=True),
        note,
    )


def latency_targets(http: dict[str, Any]) -> list[TargetCheck]:
    direct, modelway = http.get("direct"), http.get(PIPELINE_KEY)
    rows = []
    for figure, limit in (("p50_ms", 0.5), ("p99_ms", 1.5)):
        added = modelway["c1"][figure] - direct["c1"][figure] if direct and modelway else None
        name = "median" if figure == "p50_ms" else "p99"
        rows.append(
            TargetCheck(
                "added latency at 1 connection, full pipeline",
                f"{name} ≤ {limit} ms over direct",
                f"{added:+.2f} ms" if added is not None else "not measured",
                _check(added, limit, at_least=False),
            )
        )
    return rows


def cache_target(http: dict[str, Any]) -> TargetCheck:
    """A cache hit answers faster than the relay path (issue 18), at one connection."""
    direct, bare, hit = http.get("direct"), http.get(BARE_KEY), http.get(CACHE_HIT_KEY)
    measured = "not measured"
    met = None
    if direct and bare and hit:
        hit_p50, bare_p50 = hit["c1"]["p50_ms"], bare["c1"]["p50_ms"]
        over_direct = hit_p50 - direct["c1"]["p50_ms"]
        measured = f"{hit_p50:.2f} vs {bare_p50:.2f} ms ({over_direct:+.2f} ms over direct)"
        met = hit_p50 < bare_p50
    return TargetCheck(
        "cache hit, non-streaming, 1 connection",
        "median below the bare relay path's",
        measured,
        met,
        "open mode, response cache in memory; wrk sends one body, so every answer is a hit",
    )


def streaming_targets(streams: dict[str, Any], top_level: int) -> list[TargetCheck]:
    direct = streams.get("direct", {}).get("levels", {})
    modelway = streams.get("modelway", {}).get("levels", {})
    added_ttft = (
        modelway["1"]["ttft_p50_ms"] - direct["1"]["ttft_p50_ms"]
        if "1" in direct and "1" in modelway
        else None
    )
    top = modelway.get(str(top_level))
    top_direct = direct.get(str(top_level))
    top_relay = streams.get("relay", {}).get("levels", {}).get(str(top_level))
    held = top["extra_max_ms"] if top else None
    relay_held = top_relay["extra_max_ms"] if top_relay else None
    ttft = top["ttft_p50_ms"] if top else None
    relay_ttft = top_relay["ttft_p50_ms"] if top_relay else None
    rss = top.get("peak_worker_rss_mb") if top else None
    level_note = "" if top_level >= 1000 else f"quick mode: {top_level} streams, not 1,000"
    held_note = "; ".join(
        filter(
            None,
            [
                f"direct to the mock: {top_direct['extra_max_ms']:.1f} ms" if top_direct else "",
                "client, mock and gateway share the 2 cores",
                _rounds_note(top, top_relay, "round_extra_max_ms"),
                level_note,
            ],
        )
    )
    ttft_note = "; ".join(
        filter(None, [_rounds_note(top, top_relay, "round_ttft_p50_ms"), level_note])
    )
    streams = f"{top_level:,} concurrent streams, 20 tokens/s each"
    return [
        TargetCheck(
            "streaming, time to first token added (1 stream)",
            "median ≤ 1 ms over direct",
            f"{added_ttft:+.2f} ms" if added_ttft is not None else "not measured",
            _check(added_ttft, 1.0, at_least=False),
        ),
        _no_worse_than_reference(
            streams,
            "worst held-back chunk (max gap \u2212 nominal 50 ms)",
            held,
            relay_held,
            held_note,
        ),
        _no_worse_than_reference(
            streams, "time to first token (median)", ttft, relay_ttft, ttft_note
        ),
        TargetCheck(
            streams,
            "worker resident memory ≤ 200 MB",
            f"{rss:.0f} MB peak" if rss is not None else "not measured",
            _check(rss, 200.0, at_least=False),
            "; ".join(
                filter(
                    None,
                    [
                        f"the worker alone; {top['peak_rss_mb']:.0f} MB with its supervisor"
                        if top
                        else "",
                        level_note,
                    ],
                )
            ),
        ),
    ]


def _rounds_note(mine: dict[str, Any] | None, relay: dict[str, Any] | None, figure: str) -> str:
    """Each interleaved round's figure, modelway's and the relay's, when there were several."""
    if not mine or not relay or len(mine.get(figure) or ()) < 2:
        return ""

    def listed(entry: dict[str, Any]) -> str:
        return ", ".join(f"{value:.0f}" for value in entry[figure])

    return f"median of {len(mine[figure])} interleaved rounds: {listed(mine)} vs {listed(relay)} ms"


def _no_worse_than_reference(
    scenario: str, figure: str, mine: float | None, reference: float | None, note: str
) -> TargetCheck:
    """``figure`` (ms) at most the reference relay's in the same run."""
    measured = mine is not None and reference is not None
    return TargetCheck(
        scenario,
        f"{figure} no worse than the reference relay's",
        f"{mine:.1f} vs {reference:.1f} ms" if measured else "not measured",
        _check(mine, reference, at_least=False) if reference is not None else None,
        note,
    )


def startup_targets(startup: dict[str, Any]) -> list[TargetCheck]:
    rss, ready = startup.get("idle_rss_mb_median"), startup.get("ready_seconds_median")
    return [
        TargetCheck(
            "idle worker",
            "resident memory ≤ 70 MB",
            f"{rss:.0f} MB" if rss is not None else "not measured",
            _check(rss, 70.0, at_least=False),
        ),
        TargetCheck(
            "idle worker",
            "ready ≤ 1.5 s after start",
            f"{ready:.2f} s" if ready is not None else "not measured",
            _check(ready, 1.5, at_least=False),
            "process start until /health/ready answers 200",
        ),
    ]


def translation_target(translation: dict[str, Any]) -> TargetCheck:
    ratio = translation.get("ratio") or None
    return TargetCheck(
        "translation (OpenAI in → Anthropic out), streaming",
        "≤ 1.3\u00d7 the cost of same-dialect relay",
        f"{ratio:.2f}\u00d7 gateway CPU per stream" if ratio else "not measured",
        _check(ratio, 1.3, at_least=False),
    )


def check_targets(results: dict[str, Any], top_level: int) -> list[dict[str, Any]]:
    """Every target row, as plain data for the JSON results and the report."""
    rows = [
        *throughput_targets(results["http"], results.get("observability_ab")),
        workers_target(results.get("workers_scale")),
        *latency_targets(results["http"]),
        cache_target(results["http"]),
        *streaming_targets(results["streams"], top_level),
        *startup_targets(results["startup"]),
        translation_target(results["translation"]),
    ]
    return [asdict(row) for row in rows]
