"""Each gateway's metrics directory: a SIGKILLed gateway's is removed by the next one
that starts, a live gateway's never."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from modelway.gateway.workers import METRICS_DIR_PREFIX, _sweep_metrics_directories


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_only_the_directories_of_gateways_that_are_gone_are_removed(tmp_path: Path) -> None:
    dead = tmp_path / f"{METRICS_DIR_PREFIX}{_dead_pid()}-abc123"
    alive = tmp_path / f"{METRICS_DIR_PREFIX}{os.getpid()}-def456"
    unnamed = tmp_path / f"{METRICS_DIR_PREFIX}x1y2z3"  # not ours to judge: no pid
    for directory in (dead, alive, unnamed):
        directory.mkdir(mode=0o700)
        (directory / "counter_1.db").write_bytes(b"\0" * 16)
    elsewhere = tmp_path / "kept"
    elsewhere.mkdir()
    linked = tmp_path / f"{METRICS_DIR_PREFIX}{_dead_pid()}-link"
    linked.symlink_to(elsewhere, target_is_directory=True)

    _sweep_metrics_directories(tmp_path)

    assert not dead.exists()
    assert (alive / "counter_1.db").exists() and (unnamed / "counter_1.db").exists()
    assert linked.is_symlink() and elsewhere.is_dir()  # a link is never followed
