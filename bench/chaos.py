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
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import select

from bench.chaos_topology import LIMITED, Replica, Topology, running_topology
from modelway.store import Store
from modelway.store.location import database_url
from modelway.store.tables import usage_records

#: Seconds before a SIGKILL whose answers may not be stored yet: the usage writer's batch
#: interval (0.5 s) and one batch insert. The suite's short run allows more (a busy machine).
UNWRITTEN_BEFORE_KILL = 1.0
#: Seconds after a fault's recovery during which a failure still belongs to it.
AFTERMATH = 1.0
#: How long Redis and PostgreSQL stay down (seconds).
OUTAGE_SECONDS = 2.0
MODELS = ("openai/gpt-4o-mini", "mock/echo")  # relayed to ``modelway mock``; built in
KEY_ORDER = ("team-a", "team-b", LIMITED, "team-a", "team-b")


@dataclass
class Call:
    """One request the load sent: when, with which key, and how it ended."""

    request_id: str
    key: str
    stream: bool
    start: float
    end: float = 0.0
    #: ``answered`` (200, whole answer), ``refused`` (429), ``failed`` (anything else).
    outcome: str = "failed"
    detail: str = ""
    #: The replica (``127.0.0.1:port``) nginx passed it to last, when it answered at all.
    upstream: str = ""
    #: Every replica nginx tried for it, in order (``x-chaos-upstream``).
    tried: tuple[str, ...] = ()


@dataclass
class Fault:
    """One fault: when it began and when what it broke was back (seconds into the run)."""

    name: str
    start: float
    end: float = 0.0
    #: The replica it stopped (``127.0.0.1:port``), if it stopped one.
    replica: str = ""
    #: When the replica it killed was gone (its process reaped).
    stopped: float = 0.0
    #: Requests in flight on that replica (on every one for the others) when it began,
    #: for a kill: sent to it at any moment until it was back (its listen backlog, and
    #: calls nginx still sent down a kept-alive connection to it, too).
    in_flight: int = 0
    #: What readiness and /health answered on each replica while it lasted.
    probes: dict[str, int] = field(default_factory=dict)


@dataclass
class Report:
    """The counts of one run and the targets they meet or miss."""

    seconds: float
    sent: int
    answered: int
    refused: int
    failed: dict[str, int]
    records_stored: int
    records_for_answers: int
    records_missing: dict[str, int]
    records_duplicated: int
    limited_rpm: int
    #: The most answers the limited key got in any 60 s (what its RPM bounds).
    limited_served_most_in_60s: int
    #: Calls of the limited key that failed (a fault cut them off; admitted or not, unknown).
    limited_failed: int
    faults: list[Fault]
    unwritten_bound: dict[str, int]
    tracebacks: int
    outage_log_lines: dict[str, int]
    unwritten_window: float = UNWRITTEN_BEFORE_KILL
    #: Each failed call: when, where nginx sent it, and what it got (the first 20).
    failures: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        """The targets this run missed (empty: every target met)."""
        problems = []
        for fault in self.faults:
            failed = self.failed.get(fault.name, 0)
            missing = self.records_missing.get(fault.name, 0)
            if fault.name.startswith("kill -9"):
                if failed > fault.in_flight:
                    problems.append(f"{fault.name}: {failed} failed, > {fault.in_flight} in flight")
                bound = self.unwritten_bound.get(fault.name, 0)
                if missing > bound:
                    problems.append(f"{fault.name}: {missing} records lost, > {bound} unwritten")
            else:
                if failed:
                    problems.append(f"{fault.name}: {failed} requests failed")
                if missing:
                    problems.append(f"{fault.name}: {missing} usage records lost")
            for probe, count in fault.probes.items():
                if probe.startswith("ready ") and probe != "ready 200" and count:
                    problems.append(f"{fault.name}: readiness answered {probe} ({count} times)")
        for where in ("none",):
            if self.failed.get(where):
                problems.append(f"{self.failed[where]} requests failed outside any fault")
            if self.records_missing.get(where):
                problems.append(f"{self.records_missing[where]} records lost outside any fault")
        if self.records_duplicated:
            problems.append(f"{self.records_duplicated} usage records stored twice")
        if self.limited_served_most_in_60s > self.limited_rpm:
            problems.append(
                f"the limited key was served {self.limited_served_most_in_60s} times in "
                f"60 s, over its {self.limited_rpm} RPM"
            )
        if self.tracebacks:
            problems.append(f"{self.tracebacks} tracebacks in the replicas' logs")
        return problems

    def lines(self) -> list[str]:
        """The report as printed."""
        out = [
            f"load: {self.sent} requests in {self.seconds:.0f} s "
            f"({self.sent / self.seconds:.0f}/s): {self.answered} answered, "
            f"{self.refused} refused by the rate limit (429), "
            f"{sum(self.failed.values())} failed",
        ]
        for fault in self.faults:
            out.append(
                f"  {fault.name:<28} at {fault.start:5.1f} s, back at {fault.end:5.1f} s: "
                f"{self.failed.get(fault.name, 0)} failed "
                f"({fault.in_flight} in flight{' on it' if fault.replica else ''} then), "
                f"{self.records_missing.get(fault.name, 0)} records lost"
                + (
                    f" (<= {self.unwritten_bound[fault.name]} it answered in its last "
                    f"{self.unwritten_window:g} s)"
                    if fault.name in self.unwritten_bound
                    else ""
                )
            )
            if fault.probes:
                probes = ", ".join(f"{name}: {n}" for name, n in sorted(fault.probes.items()))
                out.append(f"  {'':<28} during it: {probes}")
        out += [
            f"  {'outside any fault':<28} {self.failed.get('none', 0)} failed, "
            f"{self.records_missing.get('none', 0)} records lost",
            f"usage records: {self.records_stored} stored, {self.records_for_answers} of "
            f"{self.answered} answers have theirs, {self.records_duplicated} duplicated",
            f"limited key ({self.limited_rpm} RPM): at most {self.limited_served_most_in_60s} "
            f"served in any 60 s over all replicas ({self.limited_failed} more cut off by a "
            "fault)",
            f"replica logs: {self.tracebacks} tracebacks; outage lines: "
            + ", ".join(f"{k}: {v}" for k, v in sorted(self.outage_log_lines.items())),
        ]
        out += [f"  failed: {failure}" for failure in self.failures]
        problems = self.problems()
        out.append("targets: all met" if not problems else "targets MISSED: " + "; ".join(problems))
        return out


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
    if run_dir is None:
        run_dir = Path(tempfile.mkdtemp(prefix="modelway-chaos-"))
    with running_topology(run_dir, limited_rpm=limited_rpm) as topology:
        load, faults = asyncio.run(_loaded(topology, seconds, concurrency))
        _drain(topology, load)
        for replica in topology.replicas:  # SIGTERM: each flushes what it still holds
            replica.server.stop()
        records = asyncio.run(_stored(topology.postgres.url))
        logs = [replica.log.read_text(errors="replace") for replica in topology.replicas]
    calls = [asdict(call) for call in load.calls]
    (run_dir / "calls.json").write_text(json.dumps(calls))  # every request, to look into
    return measure(load.calls, faults, records, limited_rpm, seconds, logs, unwritten_window)


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


def measure(
    calls: list[Call],
    faults: list[Fault],
    records: list[tuple[str, float, str | None, int]],
    limited_rpm: int,
    seconds: float,
    logs: list[str],
    unwritten_window: float = UNWRITTEN_BEFORE_KILL,
) -> Report:
    """Count the run: failures and missing records each put down to the fault they fall in."""
    stored = Counter(request_id for request_id, *_ in records)
    for fault in faults:
        if fault.replica:  # exactly, now that each call says where it went
            # On it: nginx passed the call to it at some point (not only last), or the call
            # failed before nginx said where it went (no headers: it cannot be put elsewhere),
            # from the kill until it was back — nginx may still send a call down a kept-alive
            # connection to it after it was gone (a 502), until it notices.
            fault.in_flight = sum(
                (fault.replica in call.tried or (call.outcome == "failed" and not call.tried))
                and call.start <= max(fault.end, fault.stopped)
                and call.end >= fault.start
                for call in calls
            )
    failed: Counter[str] = Counter()
    missing: Counter[str] = Counter()
    unwritten: Counter[str] = Counter()
    for call in calls:
        if call.outcome == "failed":
            failed[_fault_of(call.start, call.end, faults)] += 1
        elif call.outcome == "answered":
            for fault in faults:
                if _unwritten_at(call, fault, unwritten_window):
                    unwritten[fault.name] += 1
            if call.request_id not in stored:
                missing[_record_fault_of(call, faults, unwritten_window)] += 1
    answered = [call for call in calls if call.outcome == "answered"]
    # Served, not "not refused": a call a kill cut off may have been refused or never
    # reached a limiter, so only answers are known to have been admitted.
    served = sorted(c.start for c in calls if c.key == LIMITED and c.outcome == "answered")
    return Report(
        seconds=seconds,
        sent=len(calls),
        answered=len(answered),
        refused=sum(call.outcome == "refused" for call in calls),
        failed=dict(failed),
        records_stored=len(records),
        records_for_answers=sum(call.request_id in stored for call in answered),
        records_missing=dict(missing),
        records_duplicated=sum(count - 1 for count in stored.values() if count > 1),
        limited_rpm=limited_rpm,
        limited_served_most_in_60s=_most_in_window(served, 60.0),
        limited_failed=sum(c.key == LIMITED and c.outcome == "failed" for c in calls),
        faults=faults,
        unwritten_bound=dict(unwritten),
        tracebacks=sum(log.count("Traceback") for log in logs),
        outage_log_lines={
            "unreachable": sum(log.count(" unreachable (") for log in logs),
            "answers again": sum(log.count(" answers again after ") for log in logs),
        },
        unwritten_window=unwritten_window,
        failures=[
            f"{call.request_id} {call.start:.2f}-{call.end:.2f} s via "
            f"{','.join(call.tried) or '?'}: {call.detail[:120]}"
            for call in calls
            if call.outcome == "failed"
        ][:20],
    )


def _unwritten_at(call: Call, fault: Fault, window: float) -> bool:
    """Whether the killed replica answered ``call`` too shortly before dying to store it."""
    return (
        fault.name.startswith("kill -9")
        and call.upstream == fault.replica
        and fault.start - window <= call.end <= max(fault.start, fault.stopped)
    )


def _fault_of(start: float, end: float, faults: list[Fault]) -> str:
    """The fault whose time (and aftermath) the interval overlaps, or ``none``."""
    for fault in faults:
        if start <= fault.end + AFTERMATH and end >= fault.start:
            return fault.name
    return "none"


def _record_fault_of(call: Call, faults: list[Fault], window: float) -> str:
    """A missing record belongs to a kill if the killed replica answered it just before,
    else to the fault its request overlaps, else to none."""
    for fault in faults:
        if _unwritten_at(call, fault, window):
            return fault.name
    return _fault_of(call.start, call.end, faults)


def _most_in_window(times: list[float], window: float) -> int:
    """The most of ``times`` (sorted) inside any span of ``window`` seconds."""
    most, first = 0, 0
    for last, moment in enumerate(times):
        while moment - times[first] >= window:
            first += 1
        most = max(most, last - first + 1)
    return most


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
