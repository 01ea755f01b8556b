"""The workers' metric files with ``--workers N``: read merged for a scrape, and a dead
worker's live gauges dropped (its counters and histograms stay in the sum).

Each worker writes its values to its own files in a directory private to the gateway
(``gateway/workers.py`` makes it before anything imports prometheus-client).
"""

from __future__ import annotations

import glob
import os
from typing import Any

from prometheus_client import multiprocess

#: A metric file's header: how much of it is in use (prometheus-client's ``mmap_dict``).
_HEADER_BYTES = 8


class WorkerFiles(multiprocess.MultiProcessCollector):
    """Every worker's metric files, but not one a worker is creating as we read: a new
    file is empty until its creator sizes it and writes its header, and prometheus-client
    fails on one without a header (``struct.error``: a scrape that raced a replacement
    worker's start answered 500). Such a file holds no values yet."""

    def collect(self) -> Any:
        files = []
        for path in glob.glob(os.path.join(self._path, "*.db")):
            try:
                if os.path.getsize(path) >= _HEADER_BYTES:
                    files.append(path)
            except FileNotFoundError:  # a dead worker's live gauges, just removed
                continue
        return self.merge(files, accumulate=True)  # type: ignore[no-untyped-call]


def mark_dead(pid: int, path: str) -> None:
    """Drop a dead worker's live gauges; its counters and histograms stay in the sum."""
    multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]
