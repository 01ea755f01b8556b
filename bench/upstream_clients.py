"""Upstream clients under the reference relay's work, side by side in one run.

    .venv/bin/python -m bench.upstream_clients [--rounds 3] [--seconds 5] [--streams 200]

The reference relay (``bench/relay_rsgi.py``: granian RSGI, one worker) is started once per
client of ``bench.relay_clients.CLIENTS``. Non-streaming: every relay in front of nginx (the
static upstream), wrk at 32 connections, the order of the clients flipped every round and a
pause before each run; the relay worker's user and system CPU (``/proc``, every thread of
the process, so a client's own runtime threads count) is read around each run. Streaming:
every relay in front of ``modelway mock`` at 20 tokens/s, ``--streams`` concurrent streams
per round (TTFT, gaps between chunks, completion, worker CPU per stream). Figures are
medians over the rounds; the table goes to stdout and into the "Upstream clients" section
of ``--out`` (docs/benchmarks.md; ``--out -`` writes nowhere), the raw runs to ``--json``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import orjson
import psutil

from bench.machine import cpu_model
from bench.processes import Server, run_directory
from bench.relay_clients import CLIENTS
from bench.report import ratio
from bench.servers import RelayVariant, mock_server, relay_server
from bench.stream_load import measure_streams
from bench.upstream_nginx import nginx_server
from bench.wrk_load import run_wrk, warm_up

MODEL = "openai/gpt-4o-mini"
STREAM_MODEL = "openai/echo"
CONNECTIONS = 32
TOKENS_PER_SECOND = 20.0
#: Before each run: the previous run's connections are closed and the machine settles.
PAUSE_SECONDS = 1.0
BASELINE = "aiohttp"
SECTION = "## Upstream clients"


def worker_pid(server: Server) -> int:
    """The process that serves: granian's worker (its only Python child)."""
    children = psutil.Process(server.pid).children(recursive=True)
    return children[-1].pid if children else server.pid


def worker_cpu(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of ``pid``, all its threads."""
    times = psutil.Process(pid).cpu_times()
    return times.user, times.system


def round_order(clients: list[str], round_number: int) -> list[str]:
    """The clients in order on even rounds, reversed on odd ones (drift hits all alike)."""
    return clients if round_number % 2 == 0 else clients[::-1]


@contextmanager
def relays(
    run_dir: Path, clients: list[str], upstream: str, slug: str
) -> Iterator[dict[str, Server]]:
    """One reference relay per client in front of ``upstream``, stopped on exit."""
    with ExitStack() as stack:
        yield {
            client: stack.enter_context(
                relay_server(run_dir, RelayVariant("granian-rsgi", client), upstream, slug)
            )
            for client in clients
        }


def throughput_phase(
    servers: dict[str, Server], rounds: int, seconds: float, warmup: float
) -> dict[str, list[dict[str, float]]]:
    """Each round: wrk at 32 connections against every relay, CPU read around each run."""
    for client, server in servers.items():
        print(f"  warm-up {client}", flush=True)
        warm_up(f"{server.url}/v1/chat/completions", MODEL, warmup, "bench")
    runs: dict[str, list[dict[str, float]]] = {client: [] for client in servers}
    for number in range(rounds):
        for client in round_order(list(servers), number):
            server = servers[client]
            pid = worker_pid(server)
            time.sleep(PAUSE_SECONDS)
            user, system = worker_cpu(pid)
            run = run_wrk(f"{server.url}/v1/chat/completions", MODEL, CONNECTIONS, seconds, "bench")
            user_after, system_after = worker_cpu(pid)
            per = 1e6 / max(1, run.requests)
            runs[client].append(
                {
                    "rps": run.rps,
                    "requests": run.requests,
                    "errors": run.errors,
                    "user_us": (user_after - user) * per,
                    "system_us": (system_after - system) * per,
                    "cpu_us": (user_after - user + system_after - system) * per,
                }
            )
            print(
                f"  round {number + 1}/{rounds} {client}: {run.rps:,.0f} req/s, "
                f"{runs[client][-1]['cpu_us']:.0f} µs CPU/request, {run.errors} errors",
                flush=True,
            )
    return runs


def streaming_phase(
    servers: dict[str, Server], rounds: int, streams: int, words: int
) -> dict[str, list[dict[str, Any]]]:
    """Each round: ``streams`` concurrent streams through every relay in turn."""
    for server in servers.values():
        measure_streams(f"{server.url}/v1/chat/completions", STREAM_MODEL, 1, words=3)
    runs: dict[str, list[dict[str, Any]]] = {client: [] for client in servers}
    for number in range(rounds):
        for client in round_order(list(servers), number):
            server = servers[client]
            time.sleep(PAUSE_SECONDS)
            summary = measure_streams(
                f"{server.url}/v1/chat/completions",
                STREAM_MODEL,
                streams,
                words=words,
                tokens_per_second=TOKENS_PER_SECOND,
                pid=worker_pid(server),
            )
            summary["cpu_ms_per_stream"] = summary["server_cpu_seconds"] * 1000 / streams
            runs[client].append(summary)
            print(
                f"  round {number + 1}/{rounds} {client}: {streams} streams, TTFT p50 "
                f"{summary['ttft_p50_ms']:.1f} ms, {summary['errors']} errors",
                flush=True,
            )
    return runs


def median(runs: list[dict[str, Any]], name: str) -> float:
    return float(statistics.median(run[name] for run in runs))


def summarise(
    throughput: dict[str, list[dict[str, float]]], streaming: dict[str, list[dict[str, Any]]]
) -> dict[str, dict[str, float]]:
    """Per client: the medians over the rounds, and errors summed."""
    rows: dict[str, dict[str, float]] = {}
    for client, runs in throughput.items():
        streams = streaming[client]
        rows[client] = {
            "rps": median(runs, "rps"),
            "cpu_us": median(runs, "cpu_us"),
            "user_us": median(runs, "user_us"),
            "system_us": median(runs, "system_us"),
            "errors": sum(run["errors"] for run in runs),
            "ttft_p50_ms": median(streams, "ttft_p50_ms"),
            "gap_p99_ms": median(streams, "gap_p99_ms"),
            "extra_max_ms": median(streams, "extra_max_ms"),
            "completion_p50_ms": median(streams, "completion_p50_ms"),
            "cpu_ms_per_stream": median(streams, "cpu_ms_per_stream"),
            "stream_errors": sum(run["errors"] for run in streams),
        }
    return rows


def render(results: dict[str, Any]) -> str:
    """The Markdown section: the table, each round's figures, and how they were taken."""
    rows = results["rows"]
    base = rows.get(BASELINE)
    settings = results["settings"]
    lines = [
        SECTION,
        "",
        f"Generated by `{results['command']}` ({results['finished']}, {results['machine']}). "
        "The reference relay (granian RSGI, one worker) with each upstream client, side by "
        f"side in one run: wrk at {CONNECTIONS} connections against nginx for "
        f"{settings['seconds']:g} s per run, then {settings['streams']} concurrent streams "
        f"of {settings['words']} tokens from `modelway mock` at {TOKENS_PER_SECOND:g} tokens/s; "
        f"{settings['rounds']} rounds, the clients' order flipped every round; medians of the "
        "rounds. CPU is the relay worker's user + system time (every thread of the process) "
        "over the requests it answered.",
        "",
        "| client | req/s @32 | vs aiohttp | CPU µs/request (user + sys) | CPU vs aiohttp "
        "| errors | TTFT p50 ms | gap p99 ms | max extra ms | completion p50 ms "
        "| CPU ms/stream | stream errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for client, row in rows.items():
        rps_ratio = ratio(row["rps"], base["rps"] if base else None)
        cpu_ratio = ratio(row["cpu_us"], base["cpu_us"] if base else None)
        lines.append(
            f"| {client} | {row['rps']:,.0f} | {rps_ratio} | {row['cpu_us']:.0f} "
            f"({row['user_us']:.0f} + {row['system_us']:.0f}) | {cpu_ratio} | "
            f"{row['errors']:.0f} | {row['ttft_p50_ms']:.1f} | {row['gap_p99_ms']:.1f} | "
            f"{row['extra_max_ms']:.1f} | {row['completion_p50_ms']:.0f} | "
            f"{row['cpu_ms_per_stream']:.2f} | {row['stream_errors']:.0f} |"
        )
    lines += ["", "Each round (req/s, CPU µs/request):", ""]
    for client, runs in results["throughput"].items():
        figures = ", ".join(f"{run['rps']:,.0f} / {run['cpu_us']:.0f}" for run in runs)
        lines.append(f"- {client}: {figures}")
    return "\n".join(lines) + "\n"


def write_section(out: Path, section: str) -> None:
    """Replace the "Upstream clients" section of ``out`` (up to the next ``## ``), or append it."""
    text = out.read_text() if out.exists() else ""
    start = text.find(SECTION + "\n")
    if start < 0:
        out.write_text(text.rstrip("\n") + "\n\n" + section if text else section)
        return
    end = text.find("\n## ", start + len(SECTION))
    rest = text[end + 1 :] if end >= 0 else ""
    out.write_text(text[:start] + section + ("\n" + rest if rest else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0, help="one wrk run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of wrk per relay")
    parser.add_argument("--streams", type=int, default=200, help="concurrent streams")
    parser.add_argument("--words", type=int, default=20, help="tokens per streamed answer")
    parser.add_argument("--only", nargs="+", choices=CLIENTS, help="these clients (default: all)")
    parser.add_argument("--out", default="docs/benchmarks.md", help="'-' writes no report")
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    parser.add_argument("--command", help="the command to name in the report")
    args = parser.parse_args()
    clients = list(args.only or CLIENTS)
    with run_directory("modelway-upstream-clients-") as run:
        run_dir = run.path
        with nginx_server(run_dir) as nginx:
            print("throughput: relays in front of nginx", flush=True)
            with relays(run_dir, clients, f"{nginx.url}/v1", "static") as servers:
                throughput = throughput_phase(servers, args.rounds, args.seconds, args.warmup)
        with mock_server(run_dir, TOKENS_PER_SECOND) as mock:
            print("streaming: relays in front of modelway mock", flush=True)
            with relays(run_dir, clients, f"{mock.url}/v1", "stream") as servers:
                streaming = streaming_phase(servers, args.rounds, args.streams, args.words)
        command = args.command or (
            f".venv/bin/python -m bench.upstream_clients --rounds {args.rounds} "
            f"--seconds {args.seconds:g} --streams {args.streams}"
        )
        results = {
            "command": command,
            "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{psutil.cpu_count()} cores, {cpu_model()}",
            "settings": {
                "rounds": args.rounds,
                "seconds": args.seconds,
                "streams": args.streams,
                "words": args.words,
            },
            "rows": summarise(throughput, streaming),
            "throughput": throughput,
            "streaming": streaming,
        }
        section = render(results)
        print("\n" + section)
        if args.out != "-":
            write_section(Path(args.out), section)
        if args.json is not None:
            args.json.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
