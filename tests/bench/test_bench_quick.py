"""Smoke test of the benchmark suite itself: the quick mode runs end to end.

It checks that every scenario and every target has a row with positive numbers. It never
asserts on a timing: machines here are shared and noisy, so speed is read in the report,
not tested. nginx and wrk must be installed (``bench/run.sh setup`` does it; scripts/test
calls it), so a missing tool fails the test instead of skipping it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
RELAY_KEYS = (
    "relay-granian-asgi-aiohttp",
    "relay-granian-rsgi-aiohttp-lean",
    "relay-granian-rsgi-aiohttp",
    "relay-uvicorn-aiohttp",
    "relay-granian-asgi-httpx",
    "relay-uvicorn-httpx",
)
HTTP_KEYS = (
    "direct",
    *RELAY_KEYS,
    "modelway",
    "modelway-pipeline",
    "modelway-pipeline-quiet",
    "modelway-cache-hit",
)
TARGET_COUNT = 15


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    assert shutil.which("wrk"), "wrk is missing: run bench/run.sh setup"
    assert shutil.which("nginx") or Path("/usr/sbin/nginx").exists(), "nginx is missing"
    out = tmp_path_factory.mktemp("bench") / "benchmarks.md"
    results = out.parent / "latest.json"
    subprocess.run(
        [
            sys.executable,
            *("-m", "bench.suite", "--mode", "quick", "--skip-litellm"),
            *("--out", str(out), "--results", str(results)),
        ],
        cwd=REPO_ROOT,
        check=True,
        timeout=240,
    )
    return out, json.loads(results.read_text())


def test_quick_run_writes_the_report_its_plot_and_the_raw_results(
    quick_run: tuple[Path, dict[str, Any]],
) -> None:
    out, results = quick_run
    report = out.read_text()
    assert out.with_suffix(".png").stat().st_size > 0
    for heading in (
        "## Targets",
        "## Non-streaming",
        "## Server and upstream client",
        "## Workers: 1 and 2 on 2 cores",
        "## Streaming",
    ):
        assert heading in report
    assert results["mode"] == "quick"
    assert results["machine"]["cores"] > 0


def test_every_non_streaming_target_has_positive_figures_and_no_errors(
    quick_run: tuple[Path, dict[str, Any]],
) -> None:
    out, results = quick_run
    report = out.read_text()
    assert set(HTTP_KEYS) <= set(results["http"])
    for key in HTTP_KEYS:
        entry = results["http"][key]
        assert f"| {entry['label']} |" in report
        for load in ("c1", "c32"):
            assert entry[load]["rps"] > 0
            assert entry[load]["p50_ms"] > 0
            assert entry[load]["p99_ms"] > 0
            assert entry[load]["errors"] == 0
        assert entry["peak_rss_mb"] > 0


def test_the_full_pipeline_records_a_usage_record_for_every_answer(
    quick_run: tuple[Path, dict[str, Any]],
) -> None:
    out, results = quick_run
    pipeline = results["pipeline"]
    assert pipeline["answered_requests"] > 0
    # wrk leaves out answers in flight when it stops; the gateway still records them.
    assert pipeline["usage_records"] >= pipeline["answered_requests"]
    assert "The full pipeline:" in out.read_text()


def test_metrics_and_request_lines_are_priced_in_back_to_back_pairs(
    quick_run: tuple[Path, dict[str, Any]],
) -> None:
    out, results = quick_run
    paired = results["observability_ab"]
    assert (paired["on"], paired["off"]) == ("modelway-pipeline", "modelway-pipeline-quiet")
    assert len(paired["ratios"]) == len(paired["on_rps"]) == len(paired["off_rps"]) == 1
    assert paired["ratio"] > 0 and min(paired["on_rps"] + paired["off_rps"]) > 0
    assert "back-to-back pairs" in out.read_text()


def test_one_and_two_workers_are_served_side_by_side_with_the_load_generator_priced(
    quick_run: tuple[Path, dict[str, Any]],
) -> None:
    out, results = quick_run
    scale = results["workers_scale"]
    assert set(scale["targets"]) == {
        f"{kind}-{variant}"
        for kind in ("modelway-pipeline", "reference-relay")
        for variant in ("1w", "2w", "1w-core1")
    }
    for entry in scale["targets"].values():
        assert entry["rps"] > 0 and entry["errors"] == 0
        assert entry["server_us"] > 0 and entry["wrk_us"] > 0 and entry["nginx_us"] > 0
        assert f"| {entry['label']} |" in out.read_text()
    assert set(scale["ratios"]) == {
        "modelway-pipeline",
        "modelway-pipeline-core1",
        "reference-relay",
        "reference-relay-core1",
    }


def test_every_streaming_level_completes_its_streams(
    quick_run: tuple[Path, dict[str, Any]],
) -> None:
    _, results = quick_run
    for key in ("direct", "relay", "modelway"):
        levels = results["streams"][key]["levels"]
        assert set(levels) == {"1", "100"}
        for level, figures in levels.items():
            assert figures["errors"] == 0, (key, level, figures["first_error"])
            assert figures["ttft_p50_ms"] > 0
            assert figures["gap_p50_ms"] > 0
            assert figures["completion_p50_ms"] > 0
            assert figures["peak_rss_mb"] > 0
            assert 0 < figures["peak_worker_rss_mb"] <= figures["peak_rss_mb"]
    translation = results["translation"]
    assert translation["errors"] == 0
    assert translation["ratio"] > 0
    assert results["startup"]["ready_seconds_median"] > 0
    assert results["startup"]["idle_rss_mb_median"] > 0
    # modelway serve is a supervisor and the worker it forked: both were measured.
    assert results["startup"]["supervisor_rss_mb_median"] > 0


def test_every_target_has_a_row_with_a_verdict(quick_run: tuple[Path, dict[str, Any]]) -> None:
    out, results = quick_run
    report = out.read_text()
    targets = results["targets"]
    assert len(targets) == TARGET_COUNT
    for row in targets:
        assert row["target"] in report
        # Only the LiteLLM comparison may be unmeasured, since this run skips LiteLLM.
        if "LiteLLM" not in row["target"]:
            assert row["met"] in (True, False)
