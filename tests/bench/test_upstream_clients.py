"""The upstream client comparison (``bench.upstream_clients``) runs end to end in a quick mode.

Every client of ``bench.relay_clients.CLIENTS`` must have a row with positive figures and
no errors; speed is read in the report, never asserted here. nginx and wrk must be
installed (``bench/run.sh setup``), as for the suite's own smoke test.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bench.relay_clients import CLIENTS
from bench.upstream_clients import SECTION, write_section

REPO_ROOT = Path(__file__).resolve().parents[2]
EARLIER_REPORT = "# Benchmarks\n\nintro\n\n## Upstream clients\n\nold table\n\n## Later\n\nkept\n"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    assert shutil.which("wrk"), "wrk is missing: run bench/run.sh setup"
    assert shutil.which("nginx") or Path("/usr/sbin/nginx").exists(), "nginx is missing"
    out = tmp_path_factory.mktemp("upstream-clients") / "benchmarks.md"
    out.write_text(EARLIER_REPORT)
    results = out.parent / "results.json"
    subprocess.run(
        [
            sys.executable,
            *("-m", "bench.upstream_clients", "--rounds", "1", "--seconds", "1"),
            *("--warmup", "1", "--streams", "10", "--words", "3"),
            *("--out", str(out), "--json", str(results)),
        ],
        cwd=REPO_ROOT,
        check=True,
        timeout=240,
    )
    return out.read_text(), json.loads(results.read_text())


def test_every_client_has_positive_figures_and_no_errors(
    quick_run: tuple[str, dict[str, Any]],
) -> None:
    _, results = quick_run
    rows = results["rows"]
    assert list(rows) == list(CLIENTS)
    for client, row in rows.items():
        for name in ("rps", "cpu_us", "ttft_p50_ms", "completion_p50_ms"):
            assert row[name] > 0, (client, name, row)
        assert row["errors"] == 0, (client, row)
        assert row["stream_errors"] == 0, (client, results["streaming"][client])


def test_the_report_section_has_a_row_per_client_and_replaces_the_earlier_one(
    quick_run: tuple[str, dict[str, Any]],
) -> None:
    report, _ = quick_run
    assert report.startswith("# Benchmarks\n\nintro\n\n## Upstream clients\n")
    assert "old table" not in report
    assert report.endswith("## Later\n\nkept\n")
    for client in CLIENTS:
        assert f"\n| {client} | " in report


def test_the_section_is_appended_to_a_report_without_one(tmp_path: Path) -> None:
    out = tmp_path / "benchmarks.md"
    out.write_text("# Benchmarks\n\nintro\n")
    write_section(out, f"{SECTION}\n\ntable\n")
    assert out.read_text() == "# Benchmarks\n\nintro\n\n## Upstream clients\n\ntable\n"
