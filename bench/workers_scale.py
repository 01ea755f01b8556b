"""Workers scale: modelway's full pipeline and the reference relay, each on 1 and 2 workers.

    .venv/bin/python -m bench.workers_scale [--rounds 3] [--seconds 8] [--connections 64]
                                            [--pin load-core0|none] [--only KEY ...]

Starts its own nginx (the static upstream) and six servers side by side: the full
pipeline (master key set, wrk sends a virtual key, as ``make bench``'s) and the reference
relay (``bench.servers.REFERENCE_RELAY``), each with ``--workers 1``, ``--workers 2``, and
``--workers 1`` confined to core 1 (``taskset -c 1``, all its threads: what one core gives).
Each round runs wrk at 64 connections against every server in turn, the order reversed
every other round; figures are medians of the rounds.

Pinning on a 2-core machine (``--pin load-core0``, the default): wrk and nginx run on
core 0 only (``taskset -c 0``); the servers' workers are left to the scheduler, as a
user's would be. There is no third core to move the load generator to, so "apart" can
only mean "never on more than one core": 1 worker gets core 1 and what wrk and nginx
leave of core 0 (granian's I/O thread and the store's thread run beside its event loop);
2 workers share both cores with them. So each run reports the CPU that the server, wrk
and nginx took per request (``/proc`` and wrk's rusage) and what anything else took
meanwhile: 2 workers cannot serve more than ``2 / (server + wrk + nginx CPU per
request)``, and the report gives that ceiling beside the ratio. Not reniced: wrk and
nginx at ``nice -n -10`` (so a worker never delays them) changed nothing measurable (2
workers of the full pipeline: 6,619 req/s against 6,364 and 6,735 in the rounds of a run
without it).
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import statistics
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import psutil

from bench.pipeline import create_virtual_key
from bench.processes import Server, cpu_seconds, run_directory
from bench.servers import REFERENCE_RELAY, modelway_data_dir, modelway_server, relay_server
from bench.upstream_nginx import nginx_server
from bench.wrk_load import WrkRun, run_wrk, warm_up

MODEL = "openai/gpt-4o-mini"
CONNECTIONS = 64
WORKER_COUNTS = (1, 2)
#: Where wrk and nginx run, by ``--pin``: a command line prefix.
PINNING = {"load-core0": ("taskset", "-c", "0"), "none": ()}
#: Between two runs: the last run's usage records are written before the next is measured.
PAUSE_SECONDS = 1.0


@dataclass
class ScaleTarget:
    """One server with a worker count, and what each run against it measured."""

    key: str
    label: str
    kind: str  # modelway | relay
    workers: int
    server: Server
    api_key: str
    runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def chat_url(self) -> str:
        return f"{self.server.url}/v1/chat/completions"

    def median(self, name: str) -> float:
        return float(statistics.median(run[name] for run in self.runs))

    def summary(self) -> dict[str, Any]:
        figures = (
            "rps",
            "server_us",
            "wrk_us",
            "nginx_us",
            "server_cores",
            "load_cores",
            "other_cores",
            "p50_ms",
            "p99_ms",
        )
        return {
            "label": self.label,
            "kind": self.kind,
            "workers": self.workers,
            **{name: self.median(name) for name in figures},
            "errors": sum(run["errors"] for run in self.runs),
            "runs": self.runs,
        }


def worker_pids(pid: int) -> list[int]:
    """The worker processes under a server's main process (itself if it has none)."""
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return sorted(child.pid for child in children) or [pid]


def established_per_worker(pid: int, port: int) -> list[int]:
    """How many client connections each worker holds on ``port`` now."""
    counts = []
    for worker in worker_pids(pid):
        try:
            connections = psutil.Process(worker).net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            continue
        counts.append(
            sum(
                1
                for connection in connections
                if connection.status == psutil.CONN_ESTABLISHED
                and connection.laddr
                and connection.laddr.port == port
            )
        )
    return counts


def worker_cpu(pid: int) -> list[float]:
    """User plus system CPU seconds of each worker under ``pid``."""
    seconds = []
    for worker in worker_pids(pid):
        try:
            times = psutil.Process(worker).cpu_times()
        except psutil.NoSuchProcess:
            continue
        seconds.append(times.user + times.system)
    return seconds


def machine_busy() -> float:
    """CPU seconds every core has spent busy since boot (all processes, the kernel's too)."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def children_cpu() -> float:
    """CPU seconds of this process's finished children (wrk, once it has been waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(
    target: ScaleTarget, nginx: Server, seconds: float, connections: int, launcher: tuple[str, ...]
) -> dict[str, Any]:
    """One wrk run against ``target``; its rate and who spent how much CPU per request."""
    spread: list[int] = []

    def sample_connections() -> None:
        time.sleep(min(1.0, seconds / 2))
        spread.extend(established_per_worker(target.server.pid, target.server.port))

    sampler = threading.Thread(target=sample_connections, daemon=True)
    server_before, nginx_before, wrk_before = (
        cpu_seconds(target.server.pid),
        cpu_seconds(nginx.pid),
        children_cpu(),
    )
    workers_before = worker_cpu(target.server.pid)
    busy_before = machine_busy()
    started = time.perf_counter()
    sampler.start()
    run: WrkRun = run_wrk(target.chat_url, MODEL, connections, seconds, target.api_key, launcher)
    elapsed = time.perf_counter() - started
    busy = machine_busy() - busy_before
    sampler.join()
    server = cpu_seconds(target.server.pid) - server_before
    nginx_cpu = cpu_seconds(nginx.pid) - nginx_before
    wrk = children_cpu() - wrk_before
    workers_after = worker_cpu(target.server.pid)
    per_request = 1e6 / max(1, run.requests)
    return {
        "rps": run.rps,
        "requests": run.requests,
        "errors": run.errors,
        "p50_ms": run.p50_ms,
        "p99_ms": run.p99_ms,
        "server_us": server * per_request,
        "wrk_us": wrk * per_request,
        "nginx_us": nginx_cpu * per_request,
        "server_cores": server / elapsed,
        "load_cores": (wrk + nginx_cpu) / elapsed,
        # Anything else on the machine meanwhile (another job, this script, the kernel).
        "other_cores": max(0.0, busy - server - wrk - nginx_cpu) / elapsed,
        "worker_cores": [
            round((after - before) / elapsed, 3)
            for before, after in zip(workers_before, workers_after, strict=False)
        ],
        "connections_per_worker": spread,
    }


#: (workers, command prefix, key suffix, label suffix): 1 and 2 workers where the scheduler
#: puts them, and 1 worker confined to the core wrk and nginx leave alone, which shows what
#: the 1-worker figure borrows from the second core (granian's I/O thread, the store's).
VARIANTS = (
    (1, (), "1w", "1 worker"),
    (2, (), "2w", "2 workers"),
    (1, ("taskset", "-c", "1"), "1w-core1", "1 worker confined to core 1"),
)


def start_targets(
    stack: ExitStack, run_dir: Path, nginx: Server, only: set[str] | None, confine: bool
) -> list[ScaleTarget]:
    """The full pipeline and the reference relay on each variant (exits on ``stack``);
    without ``confine``, not the one confined to core 1."""
    base = f"{nginx.url}/v1"
    master_key = "sk-bench-master-" + secrets.token_hex(16)
    targets = []
    for workers, launcher, suffix, described in VARIANTS:
        if launcher and not confine:
            continue
        key = f"modelway-pipeline-{suffix}"
        if only is None or key in only:
            name = f"workers-scale-{key}"
            virtual_key = create_virtual_key(modelway_data_dir(run_dir, name))
            environment = {
                "OPENAI_BASE_URL": base,
                "OPENAI_API_KEY": "x",
                "MODELWAY_MASTER_KEY": master_key,
            }
            server = modelway_server(run_dir, name, environment, workers)
            server.command = [*launcher, *server.command]
            label = f"modelway, full pipeline, {described}"
            targets.append(
                ScaleTarget(
                    key, label, "modelway", workers, stack.enter_context(server), virtual_key
                )
            )
        key = f"reference-relay-{suffix}"
        if only is None or key in only:
            server = relay_server(run_dir, REFERENCE_RELAY, base, f"scale-{suffix}", workers)
            server.command = [*launcher, *server.command]
            label = f"reference relay, {described}"
            targets.append(
                ScaleTarget(key, label, "relay", workers, stack.enter_context(server), "bench")
            )
    return targets


def run_workers_scale(
    run_dir: Path,
    rounds: int,
    seconds: float,
    connections: int = CONNECTIONS,
    pin: str = "load-core0",
    only: set[str] | None = None,
    warmup_seconds: float = 2.0,
) -> dict[str, Any]:
    """Start nginx and the targets, warm them, run ``rounds`` alternating rounds; the results."""
    launcher = PINNING[pin]
    with ExitStack() as stack:
        nginx = stack.enter_context(nginx_server(run_dir, "nginx-workers-scale", launcher))
        targets = start_targets(stack, run_dir, nginx, only, confine=bool(launcher))
        for target in targets:
            print(f"  warm-up {target.label}", flush=True)
            warm_up(target.chat_url, MODEL, warmup_seconds, target.api_key)
        for number in range(rounds):
            order = targets if number % 2 == 0 else targets[::-1]
            for target in order:
                time.sleep(PAUSE_SECONDS)
                target.runs.append(measure(target, nginx, seconds, connections, launcher))
                run = target.runs[-1]
                print(
                    f"  round {number + 1}/{rounds}: {target.label}: {run['rps']:,.0f} req/s, "
                    f"server {run['server_us']:.0f} µs/request on {run['server_cores']:.2f} "
                    f"cores {run['worker_cores']}, wrk {run['wrk_us']:.1f} + nginx "
                    f"{run['nginx_us']:.1f} µs/request, other {run['other_cores']:.2f} cores, "
                    f"connections {run['connections_per_worker']}",
                    flush=True,
                )
    summaries = {target.key: target.summary() for target in targets}
    return {
        "connections": connections,
        "seconds": seconds,
        "rounds": rounds,
        "pin": pin,
        "launcher": " ".join(launcher),
        "cores": os.cpu_count(),
        "targets": summaries,
        "ratios": scale_ratios(summaries),
    }


def scale_ratios(summaries: dict[str, Any]) -> dict[str, float]:
    """2 workers over 1 (``kind``), and over 1 confined to one core (``kind-core1``)."""
    ratios = {}
    for kind in ("modelway-pipeline", "reference-relay"):
        two = summaries.get(f"{kind}-2w")
        for suffix in ("1w", "1w-core1"):
            one = summaries.get(f"{kind}-{suffix}")
            if one and two and one["rps"]:
                ratios[kind + suffix.removeprefix("1w")] = two["rps"] / one["rps"]
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=CONNECTIONS)
    parser.add_argument("--pin", choices=sorted(PINNING), default="load-core0")
    parser.add_argument("--only", nargs="+", help="these targets (e.g. modelway-pipeline-2w)")
    parser.add_argument("--json", type=Path, help="write the raw results here")
    args = parser.parse_args()
    with run_directory("modelway-workers-scale-") as run:
        run_dir = run.path
        print(f"==> workers scale; processes and logs in {run_dir}", flush=True)
        results = run_workers_scale(
            run_dir,
            args.rounds,
            args.seconds,
            args.connections,
            args.pin,
            set(args.only) if args.only else None,
        )
        if args.json:
            args.json.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
        for key, summary in results["targets"].items():
            print(
                f"{key:>22}: {summary['rps']:,.0f} req/s, server {summary['server_us']:.0f} µs "
                f"on {summary['server_cores']:.2f} cores, wrk {summary['wrk_us']:.1f} + nginx "
                f"{summary['nginx_us']:.1f} µs per request, {summary['errors']} errors"
            )
        for kind, ratio in results["ratios"].items():
            over = "1 worker confined to core 1" if kind.endswith("-core1") else "1 worker"
            print(f"{kind.removesuffix('-core1')}: 2 workers / {over} = {ratio:.2f}\u00d7")


if __name__ == "__main__":
    main()
