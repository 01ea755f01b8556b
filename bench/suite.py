"""Run the benchmark suite and write the report: ``python -m bench.suite --mode full``.

Phases, all against upstreams started here and stopped at the end: non-streaming load
(direct, relay variants, modelway in open mode and with its full pipeline, LiteLLM) on
nginx; 1 and 2 workers of the full pipeline and of the reference relay
(``bench.workers_scale``); streams through the mock; the translation cost; and
fresh-start readiness and idle memory of a modelway worker.
"""

from __future__ import annotations

import argparse
import secrets
import shlex
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import orjson

from bench.http_phase import HttpTarget, run_http_phase, run_paired
from bench.machine import machine, versions
from bench.pipeline import (
    PIPELINE_RPM,
    PIPELINE_TPM,
    count_usage_records,
    create_virtual_key,
    prepare_store,
)
from bench.processes import Server, run_directory
from bench.report import write_report
from bench.servers import (
    BENCH_DIR,
    REFERENCE_RELAY,
    RELAY_VARIANTS,
    REPO_ROOT,
    litellm_installed,
    litellm_server,
    mock_server,
    modelway_data_dir,
    modelway_server,
    relay_server,
)
from bench.settings import MODES, Settings
from bench.startup_phase import run_startup
from bench.stream_phase import StreamTarget, run_stream_phase, run_translation
from bench.targets import check_targets
from bench.upstream_nginx import nginx_server
from bench.workers_scale import run_workers_scale

MODELWAY_MODEL = "openai/gpt-4o-mini"
#: The gateway with its whole request path: master key set, one virtual key used by wrk.
PIPELINE = "modelway-pipeline"
#: The same with metrics and the per-request log line off: what observability costs.
QUIET_PIPELINE = "modelway-pipeline-quiet"
QUIET_CONFIG = "metrics:\n  enabled: false\nlogging:\n  requests: false\n"
#: Open mode with the response cache on for wrk's one body (it sets no temperature, so
#: ``deterministic_only`` is off): after the first request every answer is a hit.
CACHE_HIT = "modelway-cache-hit"
CACHE_CONFIG = "cache:\n  ttl: 86400\n  deterministic_only: false\n"


def http_targets(
    stack: ExitStack, run_dir: Path, nginx: Server, litellm: Server | None
) -> list[HttpTarget]:
    """Start every non-streaming target (each one's exit is registered on ``stack``)."""
    base = f"{nginx.url}/v1"
    providers = {"OPENAI_BASE_URL": base, "OPENAI_API_KEY": "x"}
    targets = [HttpTarget("direct", "direct (nginx)", "direct", nginx, "gpt-4o-mini")]
    for variant in RELAY_VARIANTS:
        server = stack.enter_context(relay_server(run_dir, variant, base))
        key = f"relay-{variant.server}-{variant.client}"
        targets.append(HttpTarget(key, variant.name, "relay", server, MODELWAY_MODEL))
    # Open mode (no master key, no virtual key): the bare relay path.
    prepare_store(modelway_data_dir(run_dir, "modelway"))
    gateway = stack.enter_context(modelway_server(run_dir, "modelway", providers))
    label = "modelway, open mode (bare relay)"
    targets.append(HttpTarget("modelway", label, "modelway", gateway, MODELWAY_MODEL))
    # Every request authenticated, rate limited and recorded.
    virtual_key = create_virtual_key(modelway_data_dir(run_dir, PIPELINE))
    master_key = "sk-bench-master-" + secrets.token_hex(16)
    pipeline = modelway_server(run_dir, PIPELINE, {**providers, "MODELWAY_MASTER_KEY": master_key})
    stack.enter_context(pipeline)
    label = "modelway, full pipeline (virtual key)"
    targets.append(
        HttpTarget(PIPELINE, label, "modelway", pipeline, MODELWAY_MODEL, api_key=virtual_key)
    )
    # The same pipeline with metrics and request logs off, to price them.
    quiet_key = create_virtual_key(modelway_data_dir(run_dir, QUIET_PIPELINE))
    config = run_dir / f"{QUIET_PIPELINE}.yaml"
    config.write_text(QUIET_CONFIG)
    quiet_env = {**providers, "MODELWAY_MASTER_KEY": master_key, "MODELWAY_CONFIG": str(config)}
    quiet = stack.enter_context(modelway_server(run_dir, QUIET_PIPELINE, quiet_env))
    label = "modelway, full pipeline, metrics and request logs off"
    targets.append(
        HttpTarget(QUIET_PIPELINE, label, "modelway", quiet, MODELWAY_MODEL, api_key=quiet_key)
    )
    # Every answer from the response cache, in memory: what a hit costs.
    prepare_store(modelway_data_dir(run_dir, CACHE_HIT))
    config = run_dir / f"{CACHE_HIT}.yaml"
    config.write_text(CACHE_CONFIG)
    cache_env = {**providers, "MODELWAY_CONFIG": str(config)}
    cached = stack.enter_context(modelway_server(run_dir, CACHE_HIT, cache_env))
    label = "modelway, open mode, every answer a cache hit"
    targets.append(HttpTarget(CACHE_HIT, label, "modelway", cached, MODELWAY_MODEL))
    if litellm is not None:
        targets.append(HttpTarget("litellm", "LiteLLM proxy", "litellm", litellm, "bench-static"))
    return targets


def start_litellm(
    stack: ExitStack, run_dir: Path, nginx: Server, mock: Server, key: str
) -> tuple[Server | None, str | None]:
    """LiteLLM when installed and able to start; otherwise why not."""
    if not litellm_installed():
        return None, "not installed (bench/run.sh installs it in full mode)"
    server = litellm_server(run_dir, f"{nginx.url}/v1", f"{mock.url}/v1", "litellm", key)
    try:
        return stack.enter_context(server), None
    except RuntimeError as error:
        print(f"  LiteLLM did not start, continuing without it: {error}", flush=True)
        return None, "it did not start (see its log in the run directory)"


def run_suite(
    settings: Settings, run_dir: Path, with_litellm: bool, command: str
) -> dict[str, Any]:
    """Every phase; the raw results with the targets checked."""
    api_key = "sk-bench-" + secrets.token_hex(24)
    started = time.time()
    results: dict[str, Any] = {
        "mode": settings.mode,
        "command": command,
        "machine": machine(),
        "versions": versions(),
        "settings": {
            **settings.__dict__,
            "stream_levels": [list(x) for x in settings.stream_levels],
        },
    }
    with ExitStack() as stack:
        nginx = stack.enter_context(nginx_server(run_dir))
        mock = stack.enter_context(mock_server(run_dir, settings.tokens_per_second))
        litellm, skipped = (
            start_litellm(stack, run_dir, nginx, mock, api_key)
            if with_litellm
            else (None, "skipped (--skip-litellm)")
        )
        results["litellm_skipped"] = skipped
        print("==> non-streaming load", flush=True)
        with ExitStack() as http_stack:
            targets = http_targets(http_stack, run_dir, nginx, litellm)
            results["http"] = run_http_phase(targets, settings, api_key)
            print("==> metrics and request lines: on vs off, in pairs", flush=True)
            by_key = {target.key: target for target in targets}
            results["observability_ab"] = run_paired(
                by_key[PIPELINE], by_key[QUIET_PIPELINE], settings, api_key
            )
        # The gateways have stopped, so their usage writers have flushed.
        results["pipeline"] = pipeline_check(results["http"][PIPELINE], run_dir)
        print("==> 1 and 2 workers on 2 cores (wrk and nginx on core 0)", flush=True)
        results["workers_scale"] = run_workers_scale(
            run_dir,
            settings.workers_rounds,
            settings.workers_seconds,
            warmup_seconds=settings.warmup_seconds,
        )
        print("==> streaming load", flush=True)
        prepare_store(modelway_data_dir(run_dir, "modelway-streams"))
        streaming_gateway = stack.enter_context(
            modelway_server(
                run_dir,
                "modelway-streams",
                {
                    "OPENAI_BASE_URL": f"{mock.url}/v1",
                    "OPENAI_API_KEY": "x",
                    "ANTHROPIC_BASE_URL": mock.url,
                    "ANTHROPIC_API_KEY": "x",
                },
            )
        )
        # The reference relay streams too: the least a Python relay costs per chunk.
        reference = stack.enter_context(
            relay_server(run_dir, REFERENCE_RELAY, f"{mock.url}/v1", slug="streams")
        )
        stream_targets = [
            StreamTarget("direct", "direct (mock)", mock, "echo"),
            StreamTarget("relay", "reference relay", reference, "openai/echo"),
            StreamTarget("modelway", "modelway", streaming_gateway, "openai/echo"),
        ]
        if litellm is not None:
            stream_targets.append(StreamTarget("litellm", "LiteLLM proxy", litellm, "bench-stream"))
        results["streams"] = run_stream_phase(stream_targets, settings, api_key)
        print("==> translation cost", flush=True)
        results["translation"] = run_translation(streaming_gateway, settings, api_key)
        print("==> fresh start: ready time and idle memory", flush=True)
        results["startup"] = run_startup(
            lambda: modelway_server(
                run_dir, "modelway-startup", {"OPENAI_BASE_URL": f"{nginx.url}/v1"}
            ),
            settings.startup_repeats,
        )
    results["finished_at"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results["duration_seconds"] = round(time.time() - started, 1)
    results["targets"] = check_targets(results, settings.top_stream_level)
    return results


def pipeline_check(entry: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """The full-pipeline target's limits, and proof it recorded what it answered."""
    answered = entry["warmup_requests"] + entry["c1"]["requests"] + entry["c32"]["requests"]
    return {
        "rpm": PIPELINE_RPM,
        "tpm": PIPELINE_TPM,
        # wrk does not count answers still in flight when it stops, so records >= answered.
        "answered_requests": answered,
        "usage_records": count_usage_records(modelway_data_dir(run_dir, PIPELINE)),
    }


def default_out(mode: str) -> Path:
    """Full runs write the docs; quick runs write to a temp dir so CI leaves docs alone."""
    if mode == "full":
        return REPO_ROOT / "docs" / "benchmarks.md"
    return Path(tempfile.mkdtemp(prefix="modelway-bench-")) / "benchmarks.md"


def main() -> None:
    parser = argparse.ArgumentParser(description="Run modelway's benchmark suite.")
    parser.add_argument("--mode", choices=sorted(MODES), default="quick")
    parser.add_argument("--out", type=Path, help="the Markdown report (the PNG goes beside it)")
    parser.add_argument("--results", type=Path, help="the raw JSON results")
    parser.add_argument("--skip-litellm", action="store_true")
    parser.add_argument("--command", help="the command to record in the report")
    args = parser.parse_args()
    settings = MODES[args.mode]
    out: Path = args.out or default_out(args.mode)
    results_path: Path = args.results or (
        BENCH_DIR / "results" / "latest.json"
        if args.out is None and args.mode == "full"
        else out.parent / "latest.json"
    )
    command = args.command or shlex.join(
        [Path(sys.executable).name, "-m", "bench.suite", *sys.argv[1:]]
    )
    with run_directory("modelway-bench-run-") as run:
        print(f"==> {settings.mode} run; processes and logs in {run.path}", flush=True)
        results = run_suite(settings, run.path, not args.skip_litellm, command)
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    plot = write_report(results, out)
    print(f"==> report {out}\n==> plot {plot}\n==> results {results_path}", flush=True)
    for row in results["targets"]:
        verdict = {True: "met", False: "NOT MET", None: "not measured"}[row["met"]]
        print(f"  [{verdict:>12}] {row['scenario']}: {row['target']} — {row['measured']}")


if __name__ == "__main__":
    main()
