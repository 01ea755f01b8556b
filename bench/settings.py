"""How long and how hard each mode of the suite runs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    """One mode's durations, repeats and stream levels."""

    mode: str
    seconds: float  # one wrk run
    repeats: int  # wrk runs per target and connection count; figures are medians
    warmup_seconds: float
    stream_levels: tuple[tuple[int, int], ...]  # (concurrent streams, rounds)
    stream_words: int  # tokens per streamed answer
    translation_streams: int
    translation_rounds: int
    startup_repeats: int
    ab_pairs: int = 1  # back-to-back pairs of runs, metrics and request lines on vs off
    ab_seconds: float = 1.0  # one run of such a pair
    tokens_per_second: float = 20.0
    workers_rounds: int = 1  # rounds of 1 and 2 workers (bench/workers_scale.py)
    workers_seconds: float = 2.0  # one wrk run of those rounds

    @property
    def top_stream_level(self) -> int:
        return max(level for level, _ in self.stream_levels)


QUICK = Settings(
    mode="quick",
    seconds=2,
    repeats=1,
    warmup_seconds=1,
    stream_levels=((1, 3), (100, 1)),
    stream_words=20,
    translation_streams=100,
    translation_rounds=1,
    startup_repeats=2,
)

FULL = Settings(
    mode="full",
    seconds=10,
    repeats=3,
    warmup_seconds=3,
    stream_levels=((1, 10), (100, 3), (1000, 5)),
    stream_words=40,
    translation_streams=100,
    translation_rounds=3,
    startup_repeats=5,
    # Many short pairs: the median of 24 was within 0.984-0.986x in two runs where
    # 10 pairs of 5 s spread 0.90-1.01x (one pair alone: 0.78-1.49x).
    ab_pairs=24,
    ab_seconds=2,
    workers_rounds=3,
    workers_seconds=8,
)

MODES = {"quick": QUICK, "full": FULL}
