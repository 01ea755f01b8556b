"""Where a served worker's time goes per request: the reference relay beside modelway.

Each server runs one worker on core 1 while nginx and wrk share core 0 (``taskset``), so
the worker's CPU is its own. wrk loads each in turn at 32 connections while py-spy
samples the worker's Python stacks (every thread, idle ones left out); each sample is
put in one component by its innermost frame (``COMPONENTS``) and the table gives µs of
the worker per request. Native code shows under the Python frame that called it (the
event loop's own work under the frame that runs the loop), so the components sum to
about the worker's CPU per request (from /proc, printed beside). The store's thread
waiting for work is idle (``store_thread_waiting``): left out.

    python -m bench.profile_served [--seconds 10] [--rate 500] [--pipeline] [--json FILE]
"""

from __future__ import annotations

import argparse
import functools
import inspect
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import aiosqlite.core
import psutil

from bench.pipeline import create_virtual_key, prepare_store
from bench.processes import Server, run_directory
from bench.servers import (
    REFERENCE_RELAY,
    VENV_BIN,
    modelway_data_dir,
    modelway_server,
    relay_server,
)
from bench.suite import MODELWAY_MODEL
from bench.upstream_nginx import nginx_server
from bench.wrk_load import run_wrk, warm_up

#: Component -> does a sample belong to it: (the whole stack, its innermost frame).
Test = Callable[[str, str], bool]


def _in(*parts: str) -> Test:
    return lambda stack, leaf: any(part in leaf for part in parts)


COMPONENTS: tuple[tuple[str, Test], ...] = (
    ("usage inserts (the store's own thread)", lambda stack, leaf: "aiosqlite" in stack),
    (
        "usage records: build, queue, batch",
        _in("store/records.py", "store/writer.py", "store/usage.py", "store/rollups.py"),
    ),
    ("metrics and request lines", _in("observability/", "modelway/logs.py", "calls/hooks.py")),
    (
        "upstream client (transport, aiohttp)",
        _in("lean_transport.py", "providers/transport.py", "aiohttp/", "relay_clients.py"),
    ),
    (
        "event loop: I/O, callbacks, timers (native)",
        _in("granian/server/", "granian/_futures.py", "asyncio/", "modelway/deadlines.py"),
    ),
    (
        "HTTP face: granian body in, answer out, headers",
        _in("gateway/rsgi.py", "gateway/http.py", "relay_rsgi.py", "starlette/", "gateway/"),
    ),
    (
        "chat body: parse, rewrite the model, answer",
        _in("bench/relay.py", "providers/openai.py", "dialects/", "calls/scanners.py"),
    ),
    (
        "metered call: key, limits, route, attempts, record",
        _in("calls/", "engine.py", "providers/", "routing/", "limits/", "pricing.py"),
    ),
)
OTHER = "other"


@dataclass
class Profile:
    """One server's per-request figures."""

    name: str
    rps: float
    cpu_us: float
    components: dict[str, float]


def _frames(stack: str) -> list[str]:
    return [frame for frame in stack.split(";") if frame]


@functools.cache
def store_thread_waiting() -> str:
    """The innermost frame of the store's thread waiting for work (``tx.get()`` in
    aiosqlite's worker loop). py-spy cannot tell that wait from work (it blocks in C with
    the GIL released), so such samples are idle, not usage inserts."""
    source = inspect.getsource(aiosqlite.core)
    first = inspect.getsourcelines(aiosqlite.core._connection_worker_thread)[1]
    start = source.index("def _connection_worker_thread")
    offset = source.index("tx.get()", start)
    line = first + source.count("\n", start, offset)
    return f"aiosqlite/core.py:{line})"


IDLE = "idle"


def component_of(stack: str) -> str:
    """The component a sampled stack (py-spy's raw format, outermost first) belongs to."""
    frames = _frames(stack)
    leaf = frames[-1] if frames else ""
    if leaf.endswith(store_thread_waiting()):
        return IDLE
    for name, belongs in COMPONENTS:
        if belongs(stack, leaf):
            return name
    return OTHER


def per_request(raw: str, rate: float, requests: int) -> dict[str, float]:
    """µs per request of each component from py-spy's raw output (``stack count`` lines)."""
    samples: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if not count.isdigit() or not _frames(stack):
            continue
        samples[component_of(stack)] += int(count)  # idle ones are counted, and left out
    scale = 1e6 / rate / max(1, requests)
    return {name: samples[name] * scale for name, _ in (*COMPONENTS, (OTHER, None))}


def py_spy() -> str:
    found = shutil.which("py-spy", path=str(VENV_BIN)) or shutil.which("py-spy")
    if found is None:
        raise SystemExit("py-spy is not installed: scripts/setup dev")
    return found


def worker_of(server: Server) -> psutil.Process:
    """The one worker process under ``server``'s supervisor (granian forks it)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        children = psutil.Process(server.pid).children(recursive=True)
        if children:
            return children[-1]
        time.sleep(0.1)
    raise RuntimeError(f"{server.name} has no worker process")


def pin(process: psutil.Process, core: int) -> None:
    """``process`` and every thread of it on ``core`` only."""
    for thread in process.threads():
        os.sched_setaffinity(thread.id, {core})


def profile(
    name: str,
    server: Server,
    model: str,
    key: str,
    seconds: float,
    rate: int,
    launcher: list[str],
) -> Profile:
    url = f"{server.url}/v1/chat/completions"
    worker = worker_of(server)
    warm_up(url, model, 2, key)
    run_wrk(url, model, 32, 2, key, launcher=launcher)
    with tempfile.NamedTemporaryFile(suffix=".txt") as out:
        command = [py_spy(), "record", "--pid", str(worker.pid), "--rate", str(rate)]
        command += ["--nonblocking", "--format", "raw", "--output", out.name]
        command += ["--duration", str(round(seconds) + 2)]
        spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1)  # attached
        before = worker.cpu_times()
        run = run_wrk(url, model, 32, seconds, key, launcher=launcher)
        after = worker.cpu_times()
        _, errors = spy.communicate(timeout=seconds + 30)
        raw = Path(out.name).read_text(errors="replace")
    if spy.returncode != 0 or not raw:
        raise RuntimeError(f"py-spy sampled nothing of {name}: {errors.decode()[-500:]}")
    cpu = (after.user - before.user) + (after.system - before.system)
    # py-spy sampled a second before and after the load too: only idle, which it leaves out.
    return Profile(
        name, run.rps, cpu / max(1, run.requests) * 1e6, per_request(raw, rate, run.requests)
    )


def table(profiles: list[Profile]) -> str:
    """The Markdown table: one column per server, one row per component, µs per request."""
    header = "| µs per request | " + " | ".join(p.name for p in profiles) + " |"
    lines = [header, "|---|" + "---:|" * len(profiles)]
    for name in [component for component, _ in COMPONENTS] + [OTHER]:
        cells = " | ".join(f"{p.components[name]:.1f}" for p in profiles)
        lines.append(f"| {name} | {cells} |")
    sampled = " | ".join(f"**{sum(p.components.values()):.1f}**" for p in profiles)
    lines.append(f"| sampled, all components | {sampled} |")
    lines.append(
        "| not sampled: threads without Python frames (granian's I/O) | "
        + " | ".join(f"{max(0.0, p.cpu_us - sum(p.components.values())):.1f}" for p in profiles)
        + " |"
    )
    lines.append(
        "| worker CPU (/proc, user + system) | "
        + " | ".join(f"{p.cpu_us:.1f}" for p in profiles)
        + " |"
    )
    lines.append(
        "| req/s at 32 connections | " + " | ".join(f"{p.rps:,.0f}" for p in profiles) + " |"
    )
    return "\n".join(lines)


@contextmanager
def servers(run_dir: Path, pipeline: bool) -> Iterator[list[tuple[str, Server, str, str]]]:
    """nginx on core 0; the reference relay and modelway (open mode, and the full pipeline
    if asked) each with one worker, pinned to core 1 once ready."""
    with ExitStack() as stack:
        nginx = stack.enter_context(nginx_server(run_dir, launcher=["taskset", "-c", "0"]))
        upstream = {"OPENAI_BASE_URL": f"{nginx.url}/v1", "OPENAI_API_KEY": "x"}
        relay = stack.enter_context(relay_server(run_dir, REFERENCE_RELAY, f"{nginx.url}/v1"))
        chosen = [("reference relay", relay, MODELWAY_MODEL, "x")]
        prepare_store(modelway_data_dir(run_dir, "modelway-open"))
        bare = stack.enter_context(modelway_server(run_dir, "modelway-open", upstream))
        chosen.append(("modelway, open mode", bare, MODELWAY_MODEL, "x"))
        if pipeline:
            key = create_virtual_key(modelway_data_dir(run_dir, "modelway-pipeline"))
            master = {"MODELWAY_MASTER_KEY": "sk-bench-master-" + os.urandom(12).hex()}
            full = stack.enter_context(
                modelway_server(run_dir, "modelway-pipeline", {**upstream, **master})
            )
            chosen.append(("modelway, full pipeline", full, MODELWAY_MODEL, key))
        for _, server, _, _ in chosen:
            pin(worker_of(server), 1)
        yield chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=500, help="py-spy samples per second")
    parser.add_argument("--pipeline", action="store_true", help="the full pipeline too")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("needs 2 cores: the worker on one, nginx and wrk on the other")
    with (
        run_directory("modelway-profile-served-") as run,
        servers(run.path, args.pipeline) as chosen,
    ):
        profiles = [
            profile(name, server, model, key, args.seconds, args.rate, ["taskset", "-c", "0"])
            for name, server, model, key in chosen
        ]
    print(table(profiles))
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(profile) for profile in profiles], indent=2))


if __name__ == "__main__":
    main()
