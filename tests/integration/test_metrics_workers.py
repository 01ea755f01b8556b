"""``/metrics`` with ``--workers 2``: one scrape sums every worker, and a worker killed and
replaced takes nothing back; the workers' metric files are the gateway's alone."""

from __future__ import annotations

import os
import signal
import stat
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.gateway import gateway_process
from tests.integration.mockserver import providers_at, running_mock
from tests.integration.test_worker_supervisor import _workers
from tests.polling import wait_until

CHAT = {"model": "mock/echo", "messages": [{"role": "user", "content": "one two three"}]}
CALLS = 20


def requests_total(url: str) -> float:
    # A new connection per scrape, so the workers take turns answering.
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "modelway_requests_total"
    )


def metrics_directory(worker: int) -> Path:
    """Where the worker keeps its metric values: the files it has mapped (once it has
    built its app, which may come just after the banner)."""

    def mapped() -> set[Path]:
        maps = Path(f"/proc/{worker}/maps").read_text().splitlines()
        files = {Path(line.split()[-1]) for line in maps if line.endswith(".db")}
        return {path.parent for path in files if path.parent.name.startswith("modelway-")}

    wait_until(lambda: len(mapped()) == 1, what=f"worker {worker}'s metric files")
    [directory] = mapped()
    return directory


def test_two_workers_are_summed_and_a_killed_one_takes_nothing_back(tmp_path: Path) -> None:
    env = {"MODELWAY_DATA_DIR": str(tmp_path)}
    with gateway_process(env, None, "--workers", "2") as (url, process):
        workers = _workers(process.pid)
        assert len(workers) == 2
        directory = metrics_directory(min(workers))
        assert directory == metrics_directory(max(workers))
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        for _ in range(CALLS):  # a connection each: both workers answer some
            reply = httpx.post(f"{url}/v1/chat/completions", json=CHAT, timeout=10)
            assert reply.status_code == 200
        # Each worker writes its counts once a second (and before a scrape it answers).
        wait_until(lambda: requests_total(url) == CALLS, what="both workers' counts")
        counted = {requests_total(url) for _ in range(6)}
        assert counted == {CALLS}, counted
        os.kill(min(workers), signal.SIGKILL)
        wait_until(lambda: len(_workers(process.pid) - {min(workers)}) == 2, what="a replacement")
        # The dead worker's counts stay in the sum: counters never go backwards.
        assert {requests_total(url) for _ in range(6)} == {CALLS}
        reply = httpx.post(f"{url}/v1/chat/completions", json=CHAT, timeout=10)
        assert reply.status_code == 200
        wait_until(lambda: requests_total(url) == CALLS + 1, what="the new count")
        assert {requests_total(url) for _ in range(6)} == {CALLS + 1}
    # Stopped: the workers' files go with the gateway.
    assert not directory.exists()


def test_a_stream_is_in_flight_until_it_ends(tmp_path: Path) -> None:
    def gauge(url: str, name: str) -> float:
        text = httpx.get(f"{url}/metrics", timeout=10).text
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name
        )

    long_text = " ".join(["word"] * 10)
    body = {
        "model": "openai/echo",
        "stream": True,
        "messages": [{"role": "user", "content": long_text}],
    }
    with running_mock("--tokens-per-second", "5") as mock_url:  # two seconds of stream
        env = {"MODELWAY_DATA_DIR": str(tmp_path), **providers_at(mock_url)}
        with gateway_process(env) as (url, _), httpx.Client(timeout=30) as client:
            with client.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
                assert response.status_code == 200
                lines = response.iter_lines()  # one iterator: dropping it would close the stream
                next(lines)  # the stream has begun
                assert gauge(url, "modelway_in_flight_streams") == 1
                assert gauge(url, "modelway_in_flight_calls") == 1
                assert any(line == "data: [DONE]" for line in lines)
            wait_until(
                lambda: gauge(url, "modelway_in_flight_streams") == 0, what="the stream's end"
            )
            assert gauge(url, "modelway_in_flight_calls") == 0
