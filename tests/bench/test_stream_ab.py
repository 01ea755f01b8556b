"""``bench.stream_ab``: streams through an older tree's gateway and this one's, side by side.

A short run against this very revision must stream every round through all three targets
(the tool stops at the first failed stream) and print each one's medians; the figures
are read in the docs, never asserted here. Its temporary worktree is gone afterwards.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_a_short_run_streams_through_every_target_and_leaves_no_worktree() -> None:
    before = subprocess.run(
        ["git", "worktree", "list"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout
    command = [sys.executable, "-m", "bench.stream_ab", "--base", "HEAD"]
    command += ["--rounds", "2", "--streams", "5", "--words", "3"]
    run = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert run.returncode == 0, run.stderr[-2000:]
    medians = re.findall(r"^\s+(relay|base|this): TTFT\s+[\d.]+ ms", run.stdout, re.M)
    assert sorted(medians) == ["base", "relay", "this"], run.stdout
    after = subprocess.run(
        ["git", "worktree", "list"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert after == before
