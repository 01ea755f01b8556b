"""Sample a server's resident memory (with its child processes, and its largest process:
the worker) in a background thread."""

from __future__ import annotations

import threading
from types import TracebackType

from bench.processes import resident_bytes, worker_bytes

MB = 1_000_000


class PeakRss:
    """Records the peak RSS of ``pid`` and its descendants while in use, and the peak of
    its worker alone (the largest process under a supervisor, or ``pid`` itself when it
    serves in its own process): the per-worker targets read that one, not the sum with
    the supervisor (~70 MB of a forked ``modelway serve``).

    In MB (10^6 bytes), as the targets are written.
    """

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_bytes = 0
        self.worker_peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rss-{pid}", daemon=True)

    @property
    def peak_mb(self) -> float:
        return self.peak_bytes / MB

    @property
    def worker_peak_mb(self) -> float:
        return self.worker_peak_bytes / MB

    def _sample(self) -> None:
        self.peak_bytes = max(self.peak_bytes, resident_bytes(self.pid))
        self.worker_peak_bytes = max(self.worker_peak_bytes, worker_bytes(self.pid)[0])

    def _run(self) -> None:
        while True:
            self._sample()
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
