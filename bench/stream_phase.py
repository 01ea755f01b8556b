"""Streaming scenarios through the mock at a set token rate, and the translation cost."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.processes import Server
from bench.settings import Settings
from bench.stream_load import combine_rounds, measure_streams


@dataclass(frozen=True)
class StreamTarget:
    """Something that streams OpenAI chat chunks: its URL, model name and process."""

    key: str
    label: str
    server: Server
    model: str

    @property
    def chat_url(self) -> str:
        return f"{self.server.url}/v1/chat/completions"


def run_stream_phase(
    targets: list[StreamTarget], settings: Settings, api_key: str
) -> dict[str, Any]:
    """Every level for every target, levels ascending. A level's rounds are interleaved
    (each round every target once, the order flipped each round) and each target's
    figures are the medians of its rounds' (``combine_rounds``): a round of 1,000
    streams alone swung by hundreds of ms from run to run, the reference relay's as much
    as modelway's, so one round each decided the verdict by chance."""
    results: dict[str, Any] = {
        target.key: {"label": target.label, "levels": {}} for target in targets
    }
    for target in targets:  # one stream each, so first-request costs stay out of the figures
        measure_streams(target.chat_url, target.model, 1, words=3, api_key=api_key)
    for concurrency, rounds in settings.stream_levels:
        print(f"  {concurrency} streams x {rounds} rounds", flush=True)
        # One stream at a time: its rounds are streams one after another on one
        # connection, as the 1-stream figures always were; they have no crowd to vary.
        interleaved, streams_each = (rounds, 1) if concurrency > 1 else (1, rounds)
        measured: dict[str, list[dict[str, Any]]] = {target.key: [] for target in targets}
        for round_ in range(interleaved):
            for target in targets if round_ % 2 == 0 else targets[::-1]:
                summary = measure_streams(
                    target.chat_url,
                    target.model,
                    concurrency,
                    rounds=streams_each,
                    words=settings.stream_words,
                    tokens_per_second=settings.tokens_per_second,
                    pid=target.server.pid,
                    api_key=api_key,
                )
                measured[target.key].append(summary)
        for target in targets:
            results[target.key]["levels"][str(concurrency)] = combine_rounds(measured[target.key])
    return results


def run_translation(gateway: Server, settings: Settings, api_key: str) -> dict[str, Any]:
    """Gateway CPU per stream: OpenAI in → OpenAI out (relay) vs OpenAI in → Anthropic out."""
    url = f"{gateway.url}/v1/chat/completions"
    cpu = {"same_dialect": 0.0, "translated": 0.0}
    streams = {"same_dialect": 0, "translated": 0}
    ttft: dict[str, list[float]] = {"same_dialect": [], "translated": []}
    errors = 0
    models = {"same_dialect": "openai/echo", "translated": "anthropic/echo"}
    for model in models.values():
        measure_streams(url, model, 1, words=3, api_key=api_key)
    for _ in range(settings.translation_rounds):
        for name, model in models.items():
            summary = measure_streams(
                url,
                model,
                settings.translation_streams,
                words=settings.stream_words,
                tokens_per_second=settings.tokens_per_second,
                pid=gateway.pid,
                api_key=api_key,
            )
            cpu[name] += summary["server_cpu_seconds"]
            streams[name] += summary["streams"]
            ttft[name].append(summary["ttft_p50_ms"])
            errors += summary["errors"]
    per_stream = {name: cpu[name] / max(1, streams[name]) * 1000 for name in cpu}
    same = per_stream["same_dialect"]
    return {
        "streams_per_round": settings.translation_streams,
        "rounds": settings.translation_rounds,
        "cpu_ms_per_stream_same_dialect": same,
        "cpu_ms_per_stream_translated": per_stream["translated"],
        "ratio": per_stream["translated"] / same if same > 0 else 0.0,
        "ttft_p50_ms_same_dialect": min(ttft["same_dialect"]),
        "ttft_p50_ms_translated": min(ttft["translated"]),
        "errors": errors,
    }
