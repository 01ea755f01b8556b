"""A response-cache hit against the relay path, at one connection, side by side.

    .venv/bin/python -m bench.cache_ab [--rounds 4] [--seconds 4]

Starts nginx (the static upstream) and two ``modelway serve --workers 1`` in open mode:
one relaying every request, one with ``cache: {deterministic_only: false}`` answering
every request after the first from its in-memory cache (wrk sends one body). Then wrk at
one connection against each, alternating the order every round; prints each one's
median latency per round and the median of those.
"""

from __future__ import annotations

import argparse
import statistics
from contextlib import ExitStack

from bench.pipeline import prepare_store
from bench.processes import run_directory
from bench.servers import modelway_data_dir, modelway_server
from bench.upstream_nginx import nginx_server
from bench.wrk_load import run_wrk, warm_up

MODEL = "openai/gpt-4o-mini"
VARIANTS = {
    "relay path": "",
    "cache hit": "cache:\n  ttl: 86400\n  deterministic_only: false\n",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    with run_directory("modelway-cache-ab-") as run:
        run_dir = run.path
        with ExitStack() as stack:
            nginx = stack.enter_context(nginx_server(run_dir))
            urls = {}
            for name, config in VARIANTS.items():
                slug = name.replace(" ", "-")
                prepare_store(modelway_data_dir(run_dir, slug))
                env = {"OPENAI_BASE_URL": f"{nginx.url}/v1", "OPENAI_API_KEY": "x"}
                if config:
                    path = run_dir / f"{slug}.yaml"
                    path.write_text(config)
                    env["MODELWAY_CONFIG"] = str(path)
                server = stack.enter_context(modelway_server(run_dir, slug, env))
                urls[name] = f"{server.url}/v1/chat/completions"
            for url in urls.values():
                warm_up(url, MODEL, 2, "bench")
            medians: dict[str, list[float]] = {name: [] for name in urls}
            for round_number in range(args.rounds):
                order = list(urls) if round_number % 2 == 0 else list(reversed(urls))
                for name in order:
                    run = run_wrk(urls[name], MODEL, 1, args.seconds, "bench")
                    medians[name].append(run.p50_ms)
        for name, values in medians.items():
            rounds = ", ".join(f"{value:.3f}" for value in values)
            print(f"{name}: p50 {statistics.median(values):.3f} ms at 1 connection ({rounds})")


if __name__ == "__main__":
    main()
