"""A streaming level's figures from its interleaved rounds (bench.stream_load.combine_rounds)."""

from __future__ import annotations

from bench.stream_load import StreamSample, combine_rounds, summarise


def _round(ttft_ms: float, worst_gap_ms: float, rss_mb: float) -> dict[str, object]:
    samples = [
        StreamSample(ttfb_ms=ttft_ms, ttft_ms=ttft_ms, gaps_ms=[50.0, worst_gap_ms], tokens=3)
        for _ in range(4)
    ]
    summary = summarise(samples, 50.0)
    summary.update(
        peak_rss_mb=rss_mb + 70, peak_worker_rss_mb=rss_mb, server_cpu_seconds=1.5, rounds=1
    )
    return summary


def test_a_level_is_the_median_of_its_rounds_with_counts_summed_and_the_peak_kept() -> None:
    rounds = [_round(900.0, 350.0, 150.0), _round(500.0, 90.0, 190.0), _round(700.0, 60.0, 170.0)]
    level = combine_rounds(rounds)
    assert level["ttft_p50_ms"] == 700.0
    assert level["extra_max_ms"] == 40.0  # the worst chunk of the middle round, not of all
    assert (level["streams"], level["errors"], level["rounds"]) == (12, 0, 3)
    assert level["server_cpu_seconds"] == 4.5
    assert (level["peak_worker_rss_mb"], level["peak_rss_mb"]) == (190.0, 260.0)
    assert level["round_ttft_p50_ms"] == [900.0, 500.0, 700.0]
    assert level["round_extra_max_ms"] == [300.0, 40.0, 10.0]
