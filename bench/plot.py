"""The report's PNG: throughput, latency and streaming figures of one run (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server

import matplotlib.pyplot as plt


def _http_panel(axis: Any, http: dict[str, Any], figure: str, title: str, log: bool) -> None:
    labels = [entry["label"] for entry in http.values()]
    values = [entry["c32" if figure == "rps" else "c1"][figure] for entry in http.values()]
    axis.barh(labels, values, color="#4c72b0")
    axis.invert_yaxis()
    axis.set_title(title)
    if log:
        axis.set_xscale("log")
    for index, value in enumerate(values):
        axis.text(
            value,
            index,
            f" {value:,.0f}" if figure == "rps" else f" {value:.2f}",
            va="center",
            fontsize=8,
        )


def _stream_panel(axis: Any, streams: dict[str, Any], figure: str, title: str) -> None:
    for entry in streams.values():
        levels = sorted(entry["levels"], key=int)
        axis.plot(
            [int(level) for level in levels],
            [entry["levels"][level][figure] for level in levels],
            marker="o",
            label=entry["label"],
        )
    axis.set_xscale("log")
    axis.set_ylim(bottom=0)
    axis.set_xlabel("concurrent streams")
    axis.set_title(title)
    axis.legend(fontsize=8)


def write_plot(results: dict[str, Any], path: Path) -> None:
    """Four panels: req/s at 32 connections, p50 at 1, streaming TTFT and peak RSS."""
    figure, axes = plt.subplots(2, 2, figsize=(14, 9))
    http, streams = results["http"], results["streams"]
    _http_panel(axes[0][0], http, "rps", "req/s at 32 connections (log scale)", log=True)
    _http_panel(axes[0][1], http, "p50_ms", "median latency at 1 connection (ms)", log=False)
    _stream_panel(axes[1][0], streams, "ttft_p50_ms", "time to first token, median (ms)")
    _stream_panel(axes[1][1], streams, "peak_rss_mb", "server resident memory, peak (MB)")
    figure.suptitle(f"modelway benchmarks ({results['mode']} mode, {results['finished_at']})")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
