"""A serving worker settles the garbage collector once it has started (``rsgi``)."""

from __future__ import annotations

import subprocess
import sys

from modelway.gateway.rsgi import GC_THRESHOLDS


def test_the_started_worker_is_frozen_and_collects_less_often() -> None:
    check = (
        "import gc; from modelway.gateway.rsgi import settle_garbage_collector; "
        "before = gc.get_freeze_count(); settle_garbage_collector(); "
        "print(before, gc.get_freeze_count() > before, *gc.get_threshold())"
    )
    out = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["0", "True", *map(str, GC_THRESHOLDS)]
    assert GC_THRESHOLDS[0] > 700  # fewer young collections than CPython's default
