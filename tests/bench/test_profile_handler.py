"""``bench.profile_handler``: modelway's RSGI chat handler in a loop, every variant answered.

A short run of each variant must answer every call 200 and pass every stream on whole
(the tool stops at the first call that does not) and print a CPU figure per variant; the
figures are read in the docs, never asserted here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_a_short_run_answers_every_call_of_every_variant(tmp_path: Path) -> None:
    profile = tmp_path / "handler.prof"
    command = [sys.executable, "-m", "bench.profile_handler", "--requests", "96"]
    command += [
        "--rounds",
        "2",
        "--variants",
        "open,quiet,pipeline,stream",
        "--profile",
        str(profile),
    ]
    run = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert run.returncode == 0, run.stderr[-2000:]
    figures = dict(re.findall(r"^\s*(\w+):\s+([\d.]+) µs CPU per call", run.stdout, re.M))
    assert set(figures) == {"open", "quiet", "pipeline", "stream"}, run.stdout
    assert all(float(value) > 0 for value in figures.values())
    assert profile.stat().st_size > 0


def test_an_unknown_variant_is_refused_by_name() -> None:
    command = [sys.executable, "-m", "bench.profile_handler", "--variants", "open,fast"]
    run = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode != 0
    assert "fast" in run.stderr
