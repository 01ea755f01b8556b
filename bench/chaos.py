"""Replicas under faults: a steady mixed load through nginx to three ``modelway serve``
replicas on one PostgreSQL and one Redis while, in turn, one replica is killed with
SIGKILL and started again, another is restarted with SIGTERM (a rolling restart), Redis is
restarted and PostgreSQL is restarted. Then it counts.

    python -m bench.chaos [--seconds 60] [--concurrency 12] [--rpm 120]   # make chaos

Printed: requests sent, answered, refused by the rate limit, failed (and the fault each
failure belongs to), usage records stored against answers (and the fault each missing
record belongs to), the most answers a limited key got in any 60 s, what readiness and
``/health`` answered during the outages, and tracebacks in the replicas' logs. The targets
(docs/deploy.md, issue 19) are checked by ``Report.problems``; the command exits 1 when one
is missed. ``tests/integration/test_chaos.py`` runs a short version in the suite.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import httpx
from sqlalchemy import select

from bench.chaos_measure import UNWRITTEN_BEFORE_KILL, Call, Fault, Report, measure
from bench.chaos_topology import LIMITED, MASTER_KEY, Replica, Topology, running_topology
from bench.processes import run_directory
from modelway.store import Store
from modelway.store.location import database_url
from modelway.store.tables import usage_records

#: How long Redis and PostgreSQL stay down (seconds).
OUTAGE_SECONDS = 2.0
MODELS = ("openai/gpt-4o-mini", "mock/echo")  # relayed to ``modelway mock``; built in
KEY_ORDER = ("team-a", "team-b", LIMITED, "team-a", "team-b")


class Load:
    """A mixed load: ``concurrency`` clients, each sending its next request as soon as the
    last ended (or, with ``rate``, paced to that many requests per second in all);
    streaming and not, the keys in turn."""

    def __init__(
        self, topology: Topology, concurrency: int, started: float, rate: float | None = None
    ) -> None:
        self._url = topology.url
        self._keys = {name: plaintext for name, (_, plaintext) in topology.keys.items()}
        self._concurrency = concurrency
        self._interval = 0.0 if rate is None else concurrency / rate
        self._started = started
        self._numbers = itertools.count()
        self.calls: list[Call] = []
        self.in_flight = 0
        self.stop = asyncio.Event()

    def now(self) -> float:
        return time.monotonic() - self._started

    async def run(self) -> None:
        limits = httpx.Limits(max_connections=self._concurrency * 2)
        timeout = httpx.Timeout(60.0, connect=10.0)
        async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:
            await asyncio.gather(*(self._client(client) for _ in range(self._concurrency)))

    async def _client(self, client: httpx.AsyncClient) -> None:
        while not self.stop.is_set():
            number = next(self._numbers)
            call = Call(
                request_id=f"chaos-{number}",
                key=KEY_ORDER[number % len(KEY_ORDER)],
                stream=number % 2 == 1,
                start=self.now(),
            )
            self.calls.append(call)
            self.in_flight += 1
            try:
                await self._send(client, call, MODELS[(number // 2) % len(MODELS)])
            except httpx.HTTPError as error:
                call.outcome, call.detail = "failed", f"{type(error).__name__}: {error}"
            finally:
                self.in_flight -= 1
                call.end = self.now()
            if self._interval:
                await asyncio.sleep(max(0.0, call.start + self._interval - self.now()))

    async def _send(self, client: httpx.AsyncClient, call: Call, model: str) -> None:
        body = {
            "model": model,
            "messages": [{"role": "user", "content": f"chaos request {call.request_id}"}],
            "max_tokens": 32,
            "stream": call.stream,
        }
        headers = {
            "authorization": f"Bearer {self._keys[call.key]}",
            "x-request-id": call.request_id,
        }
        url = f"{self._url}/v1/chat/completions"
        async with client.stream("POST", url, json=body, headers=headers) as response:
            chain = response.headers.get("x-chaos-upstream", "")
            call.tried = tuple(part.strip() for part in chain.split(",") if part.strip())
            call.upstream = call.tried[-1] if call.tried else ""
            text = (await response.aread()).decode(errors="replace")
        if response.status_code == 429:
            call.outcome = "refused"
        elif response.status_code != 200:
            call.outcome, call.detail = "failed", f"{response.status_code}: {text[:200]}"
        elif call.stream and "data: [DONE]" not in text:
            call.outcome, call.detail = "failed", f"stream ended early: {text[-200:]}"
        elif not call.stream and '"choices"' not in text:
            call.outcome, call.detail = "failed", f"not an answer: {text[:200]}"
        else:
            call.outcome = "answered"


def run(
    seconds: float = 60.0,
    *,
    concurrency: int = 12,
    limited_rpm: int = 120,
    run_dir: Path | None = None,
    unwritten_window: float = UNWRITTEN_BEFORE_KILL,
) -> Report:
    """Start the topology, load it for ``seconds`` with the four faults, and count."""
    with run_directory("modelway-chaos-", run_dir) as run:
        with running_topology(run.path, limited_rpm=limited_rpm) as topology:
            load, faults = asyncio.run(_loaded(topology, seconds, concurrency))
            _drain(topology, load)
            for replica in topology.replicas:  # SIGTERM: each flushes what it still holds
                replica.server.stop()
            records = asyncio.run(_stored(topology.postgres.url))
            logs = [replica.log.read_text(errors="replace") for replica in topology.replicas]
        calls = [asdict(call) for call in load.calls]
        (run.path / "calls.json").write_text(json.dumps(calls))  # every request, to look into
        report = measure(load.calls, faults, records, limited_rpm, seconds, logs, unwritten_window)
        if report.problems():
            run.keep()
        return report


async def _loaded(topology: Topology, seconds: float, concurrency: int) -> tuple[Load, list[Fault]]:
    started = time.monotonic()
    load = Load(topology, concurrency, started)
    runner = asyncio.create_task(load.run())
    faults: list[Fault] = []
    schedule = _schedule(topology, seconds, load.now)
    done = threading.Event()

    def inject() -> None:
        for at, name, replica, action in schedule:
            time.sleep(max(0.0, at - load.now()))
            fault = Fault(name, load.now(), replica=replica, in_flight=load.in_flight)
            faults.append(fault)
            action(fault)
            fault.end = load.now()
        done.set()

    injecting = asyncio.create_task(asyncio.to_thread(inject))
    await asyncio.sleep(seconds)
    await injecting  # a slow restart extends the run rather than cutting a fault short
    load.stop.set()
    await runner
    return load, faults


def _schedule(
    topology: Topology, seconds: float, now: Callable[[], float]
) -> list[tuple[float, str, str, Callable[[Fault], None]]]:
    first, second, third = topology.replicas

    def kill(fault: Fault) -> None:
        first.kill()
        fault.stopped = now()
        first.server.start()

    def rolling(fault: Fault) -> None:
        second.sigterm_restart()

    def redis(fault: Fault) -> None:
        topology.redis.stop()
        _probe(topology, fault)
        time.sleep(OUTAGE_SECONDS)
        _probe(topology, fault)
        topology.redis.start()

    def postgres(fault: Fault) -> None:
        topology.postgres.stop()
        _probe(topology, fault)
        time.sleep(OUTAGE_SECONDS)
        _probe(topology, fault)
        topology.postgres.start()

    del third
    return [
        (0.15 * seconds, f"kill -9 {first.name}", _address(first), kill),
        (0.35 * seconds, f"SIGTERM restart {second.name}", _address(second), rolling),
        (0.55 * seconds, "Redis restart", "", redis),
        (0.75 * seconds, "PostgreSQL restart", "", postgres),
    ]


def _address(replica: Replica) -> str:
    return f"127.0.0.1:{replica.server.port}"


def _probe(topology: Topology, fault: Fault) -> None:
    """Ask each replica directly for readiness and /health; count what they answered."""
    counts = Counter(fault.probes)
    for replica in topology.replicas:
        try:
            ready = httpx.get(f"{replica.url}/health/ready", timeout=5).status_code
            counts[f"ready {ready}"] += 1
            health = httpx.get(f"{replica.url}/health", timeout=10).json()
            for name, state in health.get("dependencies", {}).items():
                counts[f"/health {name} {state}"] += 1
            # An API that reads the store (the admin API): 503 in its outage, not a 500.
            keys = httpx.get(
                f"{replica.url}/admin/api/keys",
                headers={"authorization": f"Bearer {MASTER_KEY}"},
                timeout=10,
            )
            counts[f"admin {keys.status_code}"] += 1
        except httpx.HTTPError as error:
            counts[f"probe failed ({type(error).__name__})"] += 1
    fault.probes = dict(counts)


def _drain(topology: Topology, load: Load, within: float = 60.0) -> None:
    """Wait until the replicas have nothing spilled and the stored count stops growing."""
    deadline = time.monotonic() + within
    last, steady_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        count = len(asyncio.run(_stored(topology.postgres.url)))
        spilled = any((r.data_dir / "usage-spill.jsonl").exists() for r in topology.replicas)
        if count != last or spilled:
            last, steady_since = count, time.monotonic()
        elif time.monotonic() - steady_since >= 2.0:
            return
        time.sleep(0.5)
    del load


async def _stored(url: str) -> list[tuple[str, float, str | None, int]]:
    store = await Store.open(database_url({"DATABASE_URL": url}), migrate=False)
    try:
        async with store.engine.connect() as connection:
            query = select(
                usage_records.c.request_id,
                usage_records.c.time,
                usage_records.c.key_id,
                usage_records.c.status,
            )
            rows = (await connection.execute(query)).all()
        return [(row[0], row[1], row[2], row[3]) for row in rows]
    finally:
        await store.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the load")
    parser.add_argument("--concurrency", type=int, default=12, help="clients at once")
    parser.add_argument("--rpm", type=int, default=120, help="the limited key's RPM")
    parser.add_argument("--json", type=Path, help="also write the report here")
    parser.add_argument("--run-dir", type=Path, help="logs and data (default: a temp dir)")
    options = parser.parse_args(argv)
    report = run(
        options.seconds,
        concurrency=options.concurrency,
        limited_rpm=options.rpm,
        run_dir=options.run_dir,
    )
    print("\n".join(report.lines()))
    if options.json is not None:
        options.json.write_text(json.dumps(asdict(report), indent=2))
    return 1 if report.problems() else 0


if __name__ == "__main__":
    sys.exit(main())
