"""Streaming scenarios through the mock at a set token rate, and the translation cost."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.processes import Server
from bench.settings import Settings
from bench.stream_load import measure_streams


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
    """Every level for every target (levels ascending, targets interleaved within a level)."""
    results: dict[str, Any] = {
        target.key: {"label": target.label, "levels": {}} for target in targets
    }
    for target in targets:  # one stream each, so first-request costs stay out of the figures
        measure_streams(target.chat_url, target.model, 1, words=3, api_key=api_key)
    for concurrency, rounds in settings.stream_levels:
        for target in targets:
            print(f"  {concurrency} streams x {rounds}: {target.label}", flush=True)
            summary = measure_streams(
                target.chat_url,
                target.model,
                concurrency,
                rounds=rounds,
                words=settings.stream_words,
                tokens_per_second=settings.tokens_per_second,
                pid=target.server.pid,
                api_key=api_key,
            )
            results[target.key]["levels"][str(concurrency)] = summary
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
