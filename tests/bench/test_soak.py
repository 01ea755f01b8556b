"""make soak's arithmetic and plot, on samples made here (the run itself takes an hour)."""

from __future__ import annotations

from pathlib import Path

from bench.soak import growth, plot


def samples(series: dict[str, list[float]]) -> list[dict[str, float | str]]:
    return [
        {"minute": minute, "replica": name, "rss_mib": value, "open_files": 50}
        for name, values in series.items()
        for minute, value in enumerate(values)
    ]


def test_growth_is_measured_from_the_end_of_warm_up_to_the_end() -> None:
    # Ten samples: the first (a tenth) is warm-up; growth runs from the second to the last.
    flat = [80.0] + [100.0] * 9
    leaking = [80.0, 100.0, 101, 102, 103, 104, 105, 106, 107, 110.0]
    grown = growth(samples({"replica-1": flat, "replica-2": leaking}))
    assert grown["replica-1"] == 0.0
    assert round(grown["replica-2"], 6) == 0.1


def test_the_plot_is_written(tmp_path: Path) -> None:
    path = tmp_path / "soak.png"
    plot(samples({"replica-1": [100.0, 101.0, 100.5]}), path, "title")
    assert path.read_bytes().startswith(b"\x89PNG")
