"""``bench.profile_served``: a served worker's time per request, by component.

The components are told by a sample's frames (checked on made-up stacks); a quick run
end to end (py-spy attached to real workers under wrk) gives every column a row per
component that adds up to about the worker's CPU. Figures are read in the docs, never
asserted here. nginx and wrk must be installed (``bench/run.sh setup``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bench.profile_served import (
    COMPONENTS,
    IDLE,
    OTHER,
    component_of,
    per_request,
    store_thread_waiting,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
LOOP = "_run_module_as_main (<frozen runpy>:198);serve (granian/server/mp.py:513)"


@pytest.mark.parametrize(
    ("leaf", "component"),
    [
        ("send (modelway/providers/lean_transport.py:176)", "upstream client (transport, aiohttp)"),
        ("data_received (aiohttp/client_proto.py:359)", "upstream client (transport, aiohttp)"),
        ("count (modelway/observability/metrics.py:380)", "metrics and request lines"),
        ("_chat (modelway/gateway/rsgi.py:307)", "HTTP face: granian body in, answer out, headers"),
        (
            "_record (modelway/calls/metered.py:560)",
            "metered call: key, limits, route, attempts, record",
        ),
        ("__call__ (modelway/store/records.py:45)", "usage records: build, queue, batch"),
        ("_chat (bench/relay_rsgi.py:49)", "HTTP face: granian body in, answer out, headers"),
        ("rewrite_body (bench/relay.py:30)", "chat body: parse, rewrite the model, answer"),
        ("something (elsewhere/module.py:1)", OTHER),
    ],
)
def test_a_sample_belongs_to_the_component_of_its_innermost_frame(
    leaf: str, component: str
) -> None:
    assert component_of(f"{LOOP};{leaf}") == component


def test_the_event_loop_is_where_a_stack_ends_in_the_loop_itself() -> None:
    assert component_of(LOOP) == "event loop: I/O, callbacks, timers (native)"


def test_the_store_thread_is_told_by_its_whole_stack() -> None:
    stack = "_bootstrap (threading.py:1002);_connection_worker_thread (aiosqlite/core.py:63)"
    assert component_of(stack) == "usage inserts (the store's own thread)"
    assert component_of(stack + ";_rows (modelway/store/usage.py:70)") == component_of(stack)


def test_the_store_thread_waiting_for_work_is_idle_not_inserts() -> None:
    waiting = (
        f"_bootstrap (threading.py:1002);_connection_worker_thread (/v/{store_thread_waiting()}"
    )
    assert component_of(waiting) == IDLE
    assert per_request(f"{waiting} 1000\n", rate=1000, requests=1) == dict.fromkeys(
        [name for name, _ in COMPONENTS] + [OTHER], 0.0
    )


def test_samples_become_microseconds_per_request() -> None:
    raw = f"{LOOP} 50\n{LOOP};_chat (bench/relay_rsgi.py:49) 30\n\n 7\n"
    figures = per_request(raw, rate=1000, requests=100)
    # 50 samples at 1,000 a second are 50 ms over 100 requests: 500 µs each.
    assert figures["event loop: I/O, callbacks, timers (native)"] == pytest.approx(500)
    assert figures["HTTP face: granian body in, answer out, headers"] == pytest.approx(300)
    assert set(figures) == {name for name, _ in COMPONENTS} | {OTHER}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    assert shutil.which("wrk"), "wrk is missing: run bench/run.sh setup"
    assert shutil.which("nginx") or Path("/usr/sbin/nginx").exists(), "nginx is missing"
    results = tmp_path_factory.mktemp("profile-served") / "profiles.json"
    subprocess.run(
        [
            *(sys.executable, "-m", "bench.profile_served"),
            *("--seconds", "1", "--pipeline", "--json", str(results)),
        ],
        cwd=REPO_ROOT,
        check=True,
        timeout=300,
    )
    profiles: list[dict[str, Any]] = json.loads(results.read_text())
    return profiles


def test_a_quick_run_profiles_the_relay_and_both_modelway_modes(
    quick_run: list[dict[str, Any]],
) -> None:
    by_name = {profile["name"]: profile for profile in quick_run}
    assert list(by_name) == ["reference relay", "modelway, open mode", "modelway, full pipeline"]
    for profile in quick_run:
        assert profile["rps"] > 0 and profile["cpu_us"] > 0
        assert sum(profile["components"].values()) > 0, profile
    relay = by_name["reference relay"]["components"]
    assert relay["metered call: key, limits, route, attempts, record"] == 0
    assert relay["usage inserts (the store's own thread)"] == 0
    pipeline = by_name["modelway, full pipeline"]["components"]
    assert pipeline["metered call: key, limits, route, attempts, record"] > 0
