"""What metrics and request lines cost in a served worker, side by side.

    .venv/bin/python -m bench.observability_ab [--rounds 2] [--seconds 4] [--only V V ...]

Starts nginx (the static upstream) and five ``modelway serve --workers 1`` in open mode —
everything on (its lines to a file, and to /dev/null), request lines off, metrics off,
both off — then runs wrk at 32 connections
against each, alternating the order every round and pausing 3 s between runs so one
run's usage records are written before the next is measured. Prints each variant's
req/s and its worker's user and system CPU per request (from ``/proc``).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import time
from contextlib import ExitStack
from pathlib import Path

from bench.pipeline import prepare_store
from bench.processes import run_directory
from bench.servers import modelway_data_dir, modelway_server
from bench.upstream_nginx import nginx_server
from bench.wrk_load import run_wrk, warm_up

MODEL = "openai/gpt-4o-mini"
VARIANTS = {
    "all on": "",
    # The same, its stderr (the request lines) to /dev/null: what writing the file costs.
    "all on, lines to /dev/null": "",
    "request lines off": "logging:\n  requests: false\n",
    "metrics off": "metrics:\n  enabled: false\n",
    "both off": "metrics:\n  enabled: false\nlogging:\n  requests: false\n",
}


def worker_cpu(port: int) -> tuple[float, float]:
    """User and system CPU seconds of the worker serving ``port`` (the newest process)."""
    pids = subprocess.run(["pgrep", "-f", f"port {port}"], capture_output=True, text=True)
    fields = Path(f"/proc/{pids.stdout.split()[-1]}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument(
        "--only", nargs="+", choices=sorted(VARIANTS), help="these variants (default: all five)"
    )
    args = parser.parse_args()
    variants = {name: VARIANTS[name] for name in args.only or VARIANTS}
    with run_directory("modelway-observability-ab-") as run:
        run_dir = run.path
        with ExitStack() as stack:
            nginx = stack.enter_context(nginx_server(run_dir))
            servers = {}
            for name, config in variants.items():
                slug = re.sub(r"[^a-z0-9]+", "-", name).strip("-")
                prepare_store(modelway_data_dir(run_dir, slug))
                path = run_dir / f"{slug}.yaml"
                path.write_text(config)
                env = {
                    "OPENAI_BASE_URL": f"{nginx.url}/v1",
                    "OPENAI_API_KEY": "x",
                    "MODELWAY_CONFIG": str(path),
                }
                server = modelway_server(run_dir, slug, env)
                if name.endswith("/dev/null"):
                    server.log_path = Path(os.devnull)
                servers[name] = stack.enter_context(server)
            for server in servers.values():
                warm_up(f"{server.url}/v1/chat/completions", MODEL, 2, "k")
            results: dict[str, list[str]] = {name: [] for name in servers}
            rates: dict[str, list[float]] = {name: [] for name in servers}
            names = list(servers)
            for round_number in range(args.rounds):
                for name in names if round_number % 2 == 0 else names[::-1]:
                    server = servers[name]
                    time.sleep(3)  # the previous run's usage records are written meanwhile
                    user, system = worker_cpu(server.port)
                    run = run_wrk(f"{server.url}/v1/chat/completions", MODEL, 32, args.seconds, "k")
                    user_after, system_after = worker_cpu(server.port)
                    per = 1e6 / max(1, run.requests)
                    rates[name].append(run.rps)
                    results[name].append(
                        f"{run.rps:,.0f} req/s, user {(user_after - user) * per:.0f} µs, "
                        f"system {(system_after - system) * per:.0f} µs"
                    )
        for name, runs in results.items():
            print(f"{name:>18}: " + " | ".join(runs))
        first = names[0]
        for name in names[1:]:
            ratio = statistics.median(rates[first]) / statistics.median(rates[name])
            print(f"{first} / {name}: {ratio:.3f} (medians of {len(rates[name])} runs)")


if __name__ == "__main__":
    main()
