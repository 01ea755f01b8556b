"""Wrong keys with a real key's lookup prefix against a ``modelway serve`` process.

An attacker at 127.0.0.2 (or at ``--addresses`` loopback addresses from 127.0.0.2 on,
in turn) sends ``--rate`` chat calls a second, each with a different wrong key that
starts with a real key's ``mw-`` + 8-character prefix, for ``--seconds``.
Meanwhile a user at 127.0.0.1 calls with that real key (cached after its first call)
every half second, and presents a new valid key for the first time every two seconds.
Reported: the server's CPU use (all its processes), the attacker's answers, and both
users' latencies. Not a test: figures for docs/security.md.

    .venv/bin/python -m bench.key_flood --seconds 10 --rate 20
    .venv/bin/python -m bench.key_flood --seconds 10 --rate 20 --addresses 200
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil

from modelway.store import Store, database_url

MASTER = "master-key-for-the-flood-0123456789"
READY = re.compile(r"modelway listening on (http://\S+)")
BODY = {"model": "mock/echo", "messages": [{"role": "user", "content": "hi"}]}


async def create_keys(data_dir: str, count: int) -> list[str]:
    store = await Store.open(database_url({"MODELWAY_DATA_DIR": data_dir}))
    try:
        return [(await store.keys.create(f"user-{n}"))[1] for n in range(count)]
    finally:
        await store.aclose()


@contextlib.contextmanager
def serving(data_dir: str) -> Iterator[tuple[str, int]]:
    """``modelway serve --port 0`` on the data dir: its URL and pid."""
    env = {**os.environ, "MODELWAY_DATA_DIR": data_dir, "MODELWAY_MASTER_KEY": MASTER}
    log_path = Path(data_dir, "serve.log")
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "modelway.cli", "serve", "--port", "0"],
            cwd=data_dir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            found = READY.search(line)
            if found:
                yield found.group(1), process.pid
                return
        raise RuntimeError(f"modelway serve did not start; see {log_path}")
    finally:
        process.terminate()
        process.wait(timeout=30)


def cpu_seconds(pid: int) -> float:
    root = psutil.Process(pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            total += times.user + times.system
    return total


async def timed_call(http: httpx.AsyncClient, url: str, key: str) -> tuple[int, float]:
    started = time.perf_counter()
    response = await http.post(
        f"{url}/v1/chat/completions", json=BODY, headers={"authorization": f"Bearer {key}"}
    )
    return response.status_code, time.perf_counter() - started


async def flood(
    url: str, real: str, seconds: float, rate: float, addresses: int
) -> collections.Counter[int]:
    """Open-loop wrong keys with ``real``'s prefix, one every 1/rate s, from 127.0.0.2 on."""
    statuses: collections.Counter[int] = collections.Counter()
    limits = httpx.Limits(max_connections=1000)
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.AsyncHTTPTransport(
                        local_address=f"127.0.{n // 250}.{2 + n % 250}"
                    ),
                    timeout=60,
                    limits=limits,
                )
            )
            for n in range(addresses)
        ]

        async def one(http: httpx.AsyncClient) -> None:
            wrong = real[:11] + secrets.token_urlsafe(32)
            try:
                status, _ = await timed_call(http, url, wrong)
            except httpx.HTTPError:
                status = 0
            statuses[status] += 1

        tasks = []
        started = time.perf_counter()
        sent = 0
        while (now := time.perf_counter() - started) < seconds:
            if sent < now * rate:
                tasks.append(asyncio.create_task(one(clients[sent % addresses])))
                sent += 1
            else:
                await asyncio.sleep(1 / rate / 4)
        await asyncio.gather(*tasks)
    return statuses


async def user(url: str, cached: str, fresh: list[str], seconds: float) -> dict[str, list[float]]:
    """The cached key every 0.5 s; a new key's first call every 2 s (from 127.0.0.1)."""
    latencies: dict[str, list[float]] = {"cached": [], "first": [], "refused": []}
    async with httpx.AsyncClient(timeout=60) as http:
        await timed_call(http, url, cached)  # cached before the flood starts
        started = time.perf_counter()
        tick = 0
        while time.perf_counter() - started < seconds:
            status, took = await timed_call(http, url, cached)
            latencies["cached" if status == 200 else "refused"].append(took)
            if tick % 4 == 2 and fresh:
                status, took = await timed_call(http, url, fresh.pop())
                latencies["first" if status == 200 else "refused"].append(took)
            tick += 1
            await asyncio.sleep(max(0.0, started + tick * 0.5 - time.perf_counter()))
    return latencies


def summary(values: list[float]) -> str:
    if not values:
        return "none"
    shown = ", ".join(f"{value * 1000:.0f}" for value in values)
    median, most = statistics.median(values) * 1000, max(values) * 1000
    return f"median {median:.0f} ms, max {most:.0f} ms ({shown})"


async def run(seconds: float, rate: float, addresses: int) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        keys = await create_keys(data_dir, 2 + int(seconds / 2) + 1)
        real, cached, fresh = keys[0], keys[1], keys[2:]
        with serving(data_dir) as (url, pid):
            async with httpx.AsyncClient(timeout=60) as http:
                await timed_call(http, url, cached)  # warm: imports, pools, the mock
            cpu_before, wall_before = cpu_seconds(pid), time.perf_counter()
            statuses, latencies = await asyncio.gather(
                flood(url, real, seconds, rate, addresses), user(url, cached, fresh, seconds)
            )
            wall = time.perf_counter() - wall_before
            cpu = cpu_seconds(pid) - cpu_before
    source = "127.0.0.2" if addresses == 1 else f"{addresses} addresses from 127.0.0.2"
    print(f"wrong keys with a real prefix: {rate:g}/s for {seconds:g} s from {source}")
    print(f"attacker's answers by status: {dict(sorted(statuses.items()))}")
    cores = os.cpu_count()
    print(f"server CPU: {cpu:.1f} s over {wall:.1f} s = {cpu / wall:.2f} cores ({cores} here)")
    print(f"cached valid key (127.0.0.1): {summary(latencies['cached'])}")
    print(f"new valid keys' first calls (127.0.0.1): {summary(latencies['first'])}")
    print(f"valid calls refused: {len(latencies['refused'])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=20.0, help="wrong keys a second")
    parser.add_argument("--addresses", type=int, default=1, help="attacker's source addresses")
    options = parser.parse_args()
    asyncio.run(run(options.seconds, options.rate, options.addresses))


if __name__ == "__main__":
    main()
