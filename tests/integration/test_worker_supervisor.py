"""Workers that die, even in quick succession, are replaced; the gateway never goes down."""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from modelway.gateway.workers import (
    MAX_CONNECTIONS_PER_WORKER,
    MAX_OPEN_FILES,
    RESERVED_FILES,
    RespawnBackoff,
    connections_per_worker,
)
from tests.integration.gateway import _wait_for_banner, gateway_process
from tests.polling import wait_until
from tests.processes import stop


def test_a_worker_that_keeps_dying_young_waits_longer_each_time() -> None:
    backoff = RespawnBackoff(first=0.5, ceiling=4.0, stable_after=30.0)
    assert [backoff.delay(0, lived=1.0) for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert backoff.delay(1, lived=1.0) == 0.5  # each worker has its own streak
    assert backoff.delay(0, lived=60.0) == 0.0  # a long life resets it
    assert backoff.delay(0, lived=1.0) == 0.5


def _workers(supervisor: int) -> set[int]:
    children: set[int] = set()
    for task in Path(f"/proc/{supervisor}/task").iterdir():
        try:
            children.update(int(pid) for pid in (task / "children").read_text().split())
        except FileNotFoundError:  # a thread that ended while we looked
            continue
    return children


def test_two_worker_deaths_in_a_row_leave_the_gateway_serving(tmp_path: Path) -> None:
    stderr = tmp_path / "stderr.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELWAY_")}
    env["MODELWAY_DATA_DIR"] = str(tmp_path)
    with stderr.open("w") as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "modelway.cli", "serve", "--port", "0", "--workers", "2"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
    try:
        url = _wait_for_banner(process, 30)
        assert url is not None, stderr.read_text()
        first = _workers(process.pid)
        assert len(first) == 2
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: len(_workers(process.pid) - {victim}) == 2, what="a replacement")
        # granian's own supervisor calls this a crash loop and stops every worker.
        [replacement] = _workers(process.pid) - first
        os.kill(replacement, signal.SIGKILL)
        with httpx.Client(base_url=url, timeout=10) as http:
            assert http.get("/health/live").status_code == 200  # the survivor answers
            wait_until(
                lambda: len(_workers(process.pid) - first - {replacement}) == 1,
                what="a second replacement",
            )
            assert process.poll() is None
            assert http.get("/health/live").status_code == 200
        said = stderr.read_text()
        assert said.count("died; respawning it in") == 2
        assert "(1 of 2 workers serving)" in said
    finally:
        stop(process, within=20)
        if process.stdout is not None:
            process.stdout.close()


def _soft_open_files(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError("no open-files limit")


def test_the_workers_may_hold_as_many_connections_as_the_hard_limit_allows(
    tmp_path: Path,
) -> None:
    def low_soft_limit() -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELWAY_")}
    env["MODELWAY_DATA_DIR"] = str(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "modelway.cli", "serve", "--port", "0"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        preexec_fn=low_soft_limit,
    )
    try:
        assert _wait_for_banner(process, 30) is not None
        [worker] = _workers(process.pid)
        assert _soft_open_files(worker) == min(hard, MAX_OPEN_FILES)
    finally:
        process.terminate()
        try:  # a deadline, not a timing: a busy machine stops a worker slowly
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
        finally:
            if process.stdout is not None:
                process.stdout.close()


def test_idle_connections_by_the_thousand_keep_no_one_else_out(tmp_path: Path) -> None:
    # granian's default let 1,024 connections that never send a request hold every place
    # a worker had until their header timeout: 1,100 of them, no key needed, and the
    # gateway answered nobody for ~25 s.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, 4096), hard), hard))
    idle: list[socket.socket] = []
    try:
        with gateway_process({"MODELWAY_DATA_DIR": str(tmp_path)}) as (url, _):
            address = urlsplit(url)
            for _ in range(1_500):
                idle.append(socket.create_connection((address.hostname, address.port)))
            # Answered while they are all open: within far less than their header timeout.
            live = httpx.get(f"{url}/health/live", timeout=15)
            assert live.status_code == 200
    finally:
        for connection in idle:
            connection.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_each_worker_serves_a_share_of_the_open_files_within_bounds() -> None:
    assert connections_per_worker(20_000, 1) == 20_000 - RESERVED_FILES
    assert connections_per_worker(20_000, 4) == (20_000 - RESERVED_FILES) // 4
    assert connections_per_worker(1_024, 2) == 1_024  # never below granian's own
    assert connections_per_worker(MAX_OPEN_FILES, 1) == MAX_CONNECTIONS_PER_WORKER
