"""Streaming load: N concurrent OpenAI chat streams, timed chunk by chunk.

For each stream: time to first byte (first SSE event), time to first token (first event
carrying text), the gaps between text events (the upstream sends one every
1/tokens-per-second) and the completion time. While the streams run, the server's
resident memory (with its children) is sampled and its CPU time is read before and after.

Standalone::

    python -m bench.stream_load --url http://127.0.0.1:8080/v1/chat/completions \
        --model openai/echo --concurrency 100 --rounds 2 --pid 1234
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from bench.memory import PeakRss
from bench.processes import cpu_seconds

STREAM_TIMEOUT_SECONDS = 300


@dataclass
class StreamSample:
    """One stream's timings in milliseconds, or the error that ended it."""

    ttfb_ms: float = 0.0
    ttft_ms: float = 0.0
    completion_ms: float = 0.0
    gaps_ms: list[float] = field(default_factory=list)
    tokens: int = 0
    error: str | None = None


def stream_body(model: str, words: int) -> bytes:
    """A chat body whose echo answer is ``words`` words long, with usage asked for."""
    text = " ".join(f"word{index}" for index in range(words))
    return orjson.dumps(
        {
            "model": model,
            "messages": [{"role": "user", "content": text}],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    )


def event_text(data: bytes) -> str:
    """The text an OpenAI chunk carries ("" for role, finish and usage chunks)."""
    chunk = orjson.loads(data)
    choices = chunk.get("choices") or ()
    if not choices:
        return ""
    content = (choices[0].get("delta") or {}).get("content")
    return content if isinstance(content, str) else ""


async def one_stream(session: aiohttp.ClientSession, url: str, body: bytes) -> StreamSample:
    """Run one stream to its end and time every event as it arrives."""
    sample = StreamSample()
    started = time.perf_counter()
    last_token = 0.0
    done = False
    try:
        async with session.post(url, data=body) as response:
            if response.status != 200:
                sample.error = f"status {response.status}"
                await response.read()
                return sample
            buffer = b""
            async for piece in response.content.iter_any():
                now = time.perf_counter()
                buffer += piece
                *events, buffer = buffer.split(b"\n\n")
                for event in events:
                    data = event.strip().removeprefix(b"data:").strip()
                    if not data:
                        continue
                    if not sample.ttfb_ms:
                        sample.ttfb_ms = (now - started) * 1000
                    if data == b"[DONE]":
                        done = True
                        continue
                    if not event_text(data):
                        continue
                    if sample.tokens == 0:
                        sample.ttft_ms = (now - started) * 1000
                    else:
                        sample.gaps_ms.append((now - last_token) * 1000)
                    last_token = now
                    sample.tokens += 1
    except (aiohttp.ClientError, TimeoutError, ValueError) as error:
        sample.error = f"{type(error).__name__}: {error}"
        return sample
    sample.completion_ms = (time.perf_counter() - started) * 1000
    if not done or sample.tokens == 0:
        sample.error = "stream ended without [DONE] or without text"
    return sample


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))
    return ordered[index]


def summarise(samples: list[StreamSample], nominal_gap_ms: float) -> dict[str, Any]:
    """Medians and tails over every stream and every gap of a level."""
    good = [sample for sample in samples if sample.error is None]
    gaps = [gap for sample in good for gap in sample.gaps_ms]
    ttft = [sample.ttft_ms for sample in good]
    completion = [sample.completion_ms for sample in good]
    errors = [sample.error for sample in samples if sample.error is not None]
    max_gap = max(gaps, default=0.0)
    return {
        "streams": len(samples),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "ttfb_p50_ms": statistics.median([s.ttfb_ms for s in good]) if good else 0.0,
        "ttft_p50_ms": statistics.median(ttft) if ttft else 0.0,
        "ttft_p99_ms": percentile(ttft, 0.99),
        "gap_p50_ms": statistics.median(gaps) if gaps else 0.0,
        "gap_p99_ms": percentile(gaps, 0.99),
        "gap_max_ms": max_gap,
        "nominal_gap_ms": nominal_gap_ms,
        "extra_p99_ms": max(0.0, percentile(gaps, 0.99) - nominal_gap_ms),
        "extra_max_ms": max(0.0, max_gap - nominal_gap_ms),
        "completion_p50_ms": statistics.median(completion) if completion else 0.0,
        "completion_p99_ms": percentile(completion, 0.99),
        "tokens_per_stream": statistics.median([s.tokens for s in good]) if good else 0,
    }


#: Figures a level reports as the median of its rounds' (the rest: summed, or the peak).
_MEDIAN_OF_ROUNDS = (
    "ttfb_p50_ms",
    "ttft_p50_ms",
    "ttft_p99_ms",
    "gap_p50_ms",
    "gap_p99_ms",
    "gap_max_ms",
    "extra_p99_ms",
    "extra_max_ms",
    "completion_p50_ms",
    "completion_p99_ms",
    "tokens_per_stream",
)


def combine_rounds(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One level's figures from its rounds' summaries: each median and tail the median of
    the rounds' (the worst held-back chunk: the worst of a typical round), streams,
    errors and CPU summed, memory the peak; each round's TTFT and worst chunk kept."""
    combined = dict(rounds[0])
    for name in _MEDIAN_OF_ROUNDS:
        combined[name] = statistics.median(summary[name] for summary in rounds)
    for name in ("streams", "errors", "server_cpu_seconds"):
        combined[name] = sum(summary[name] for summary in rounds)
    for name in ("peak_rss_mb", "peak_worker_rss_mb"):
        combined[name] = max(summary[name] for summary in rounds)
    combined["first_error"] = next(
        (summary["first_error"] for summary in rounds if summary["first_error"]), None
    )
    combined["rounds"] = len(rounds)
    combined["round_ttft_p50_ms"] = [summary["ttft_p50_ms"] for summary in rounds]
    combined["round_extra_max_ms"] = [summary["extra_max_ms"] for summary in rounds]
    return combined


async def run_level(
    url: str, model: str, concurrency: int, rounds: int, words: int, api_key: str
) -> list[StreamSample]:
    """``rounds`` rounds of ``concurrency`` streams started together."""
    body = stream_body(model, words)
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=STREAM_TIMEOUT_SECONDS)
    samples: list[StreamSample] = []
    headers = {"authorization": f"Bearer {api_key}", "content-type": "application/json"}
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, headers=headers
    ) as session:
        for _ in range(rounds):
            batch = [one_stream(session, url, body) for _ in range(concurrency)]
            samples.extend(await asyncio.gather(*batch))
    return samples


def measure_streams(
    url: str,
    model: str,
    concurrency: int,
    *,
    rounds: int = 1,
    words: int = 20,
    tokens_per_second: float = 20.0,
    pid: int | None = None,
    api_key: str = "bench",
) -> dict[str, Any]:
    """Run a level and summarise it; with ``pid``, the server's peak RSS and CPU time too."""
    cpu_before = cpu_seconds(pid) if pid is not None else 0.0
    if pid is None:
        samples = asyncio.run(run_level(url, model, concurrency, rounds, words, api_key))
        peak = worker_peak = 0.0
    else:
        with PeakRss(pid) as rss:
            samples = asyncio.run(run_level(url, model, concurrency, rounds, words, api_key))
        peak, worker_peak = rss.peak_mb, rss.worker_peak_mb
    summary = summarise(samples, 1000 / tokens_per_second)
    summary["concurrency"] = concurrency
    summary["rounds"] = rounds
    summary["peak_rss_mb"] = peak
    summary["peak_worker_rss_mb"] = worker_peak
    summary["server_cpu_seconds"] = cpu_seconds(pid) - cpu_before if pid is not None else 0.0
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description="Concurrent streaming load.")
    parser.add_argument("--url", required=True, help="the chat completions URL")
    parser.add_argument("--model", default="echo")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--words", type=int, default=20)
    parser.add_argument("--tokens-per-second", type=float, default=20.0)
    parser.add_argument("--pid", type=int, help="server process to sample for memory and CPU")
    parser.add_argument("--api-key", default="bench", help="sent as a bearer token")
    args = parser.parse_args()
    summary = measure_streams(
        args.url,
        args.model,
        args.concurrency,
        rounds=args.rounds,
        words=args.words,
        tokens_per_second=args.tokens_per_second,
        pid=args.pid,
        api_key=args.api_key,
    )
    print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
