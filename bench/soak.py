"""The replica topology at a moderate steady load for a long time: does memory stay flat?

    python -m bench.soak [--seconds 3600] [--rate 30] [--interval 60]     # make soak

nginx, three ``modelway serve`` replicas, PostgreSQL, Redis and ``modelway mock``
(``bench/chaos_topology.py``), no faults. Every ``interval`` seconds each replica's resident
memory (its process and workers) and open file descriptors are written to a CSV; at the end
a PNG plots them. The target (issue 19): memory growth under 5% after warm-up, the warm-up
being the first tenth of the run (at least one sample); the command exits 1 past it. Calls
are not kept (an hour is ~100,000): only counts.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
import time
from collections import Counter
from pathlib import Path

from bench.chaos import Load
from bench.chaos_topology import Topology, running_topology
from bench.processes import resident_bytes, run_directory, tree_total

REPO_ROOT = Path(__file__).resolve().parent.parent
FIELDS = ("minute", "replica", "rss_mib", "open_files")
#: Allowed growth of a replica's memory from the end of warm-up to the end of the run.
GROWTH_LIMIT = 0.05


def open_files(pid: int) -> int:
    """File descriptors open in ``pid`` and its workers."""
    return tree_total(pid, lambda process: process.num_fds())


async def soak(
    topology: Topology, seconds: float, rate: float, interval: float, csv_path: Path
) -> tuple[list[dict[str, float | str]], Counter[str]]:
    """Load for ``seconds`` and sample every ``interval``; the samples and the outcomes."""
    started = time.monotonic()
    load = Load(topology, concurrency=max(4, int(rate // 5)), started=started, rate=rate)
    runner = asyncio.create_task(load.run())
    samples: list[dict[str, float | str]] = []
    outcomes: Counter[str] = Counter()
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, FIELDS)
        writer.writeheader()
        while True:
            minute = round((time.monotonic() - started) / 60, 2)
            for replica in topology.replicas:
                sample: dict[str, float | str] = {
                    "minute": minute,
                    "replica": replica.name,
                    "rss_mib": round(resident_bytes(replica.server.pid) / 2**20, 1),
                    "open_files": open_files(replica.server.pid),
                }
                samples.append(sample)
                writer.writerow(sample)
            handle.flush()
            _tally(load, outcomes)
            if time.monotonic() - started >= seconds:
                break
            await asyncio.sleep(min(interval, max(0.0, started + seconds - time.monotonic())))
    load.stop.set()
    await runner
    _tally(load, outcomes)
    return samples, outcomes


def _tally(load: Load, outcomes: Counter[str]) -> None:
    """Count the calls ended so far and forget them (an hour of calls is not kept); the
    first failures are printed as they are seen."""
    open_calls = []
    for call in load.calls:
        if not call.end:
            open_calls.append(call)  # still in flight: counted when it ends
            continue
        outcomes[call.outcome] += 1
        if call.outcome == "failed" and outcomes["failed"] <= 5:
            print(f"failed at {call.start:.1f} s: {call.detail[:300]}", file=sys.stderr)
    load.calls[:] = open_calls


def growth(samples: list[dict[str, float | str]]) -> dict[str, float]:
    """Each replica's memory growth from the end of warm-up (a tenth of the run) to the end."""
    result = {}
    for name in sorted({str(sample["replica"]) for sample in samples}):
        series = [float(s["rss_mib"]) for s in samples if s["replica"] == name]
        warm = series[max(1, len(series) // 10) :] or series
        result[name] = warm[-1] / warm[0] - 1 if warm[0] else 0.0
    return result


def plot(samples: list[dict[str, float | str]], path: Path, title: str) -> None:
    """Memory and open files per replica over the run (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (memory, files) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for name in sorted({str(sample["replica"]) for sample in samples}):
        mine = [s for s in samples if s["replica"] == name]
        minutes = [float(s["minute"]) for s in mine]
        memory.plot(minutes, [float(s["rss_mib"]) for s in mine], marker=".", label=name)
        files.plot(minutes, [float(s["open_files"]) for s in mine], marker=".", label=name)
    memory.set_ylabel("resident memory (MiB)")
    memory.set_ylim(bottom=0)
    memory.legend()
    memory.set_title(title)
    files.set_ylabel("open file descriptors")
    files.set_ylim(bottom=0)
    files.set_xlabel("minutes")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--seconds", type=float, default=3600.0, help="length of the run")
    parser.add_argument("--rate", type=float, default=30.0, help="requests per second")
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between samples")
    parser.add_argument("--csv", type=Path, default=REPO_ROOT / "bench" / "results" / "soak.csv")
    parser.add_argument("--png", type=Path, default=REPO_ROOT / "docs" / "soak.png")
    parser.add_argument("--run-dir", type=Path, help="logs and data (default: a temp dir)")
    options = parser.parse_args(argv)
    options.csv.parent.mkdir(parents=True, exist_ok=True)
    options.png.parent.mkdir(parents=True, exist_ok=True)
    with (
        run_directory("modelway-soak-", options.run_dir) as run,
        running_topology(run.path, limited_rpm=600) as topology,
    ):
        samples, outcomes = asyncio.run(
            soak(topology, options.seconds, options.rate, options.interval, options.csv)
        )
    grown = growth(samples)
    minutes = options.seconds / 60
    title = f"3 replicas, {options.rate:g} req/s for {minutes:.3g} min: " + ", ".join(
        f"{name} {value:+.1%}" for name, value in grown.items()
    )
    plot(samples, options.png, title)
    print(", ".join(f"{outcome}: {count}" for outcome, count in sorted(outcomes.items())))
    for name, value in grown.items():
        print(f"{name}: memory {value:+.1%} after warm-up")
    print(f"samples: {options.csv}; plot: {options.png}")
    return 1 if any(value > GROWTH_LIMIT for value in grown.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
