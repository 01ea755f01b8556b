"""A benchmark run's temp directory goes when the run ends well and stays when it does not.

Runs write hundreds of MB of logs and SQLite files each; before, every run and every
suite run of the profiling tools left theirs in /tmp until the disk was full.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from bench.processes import KEEP_VARIABLE, run_directory


@pytest.fixture(autouse=True)
def _temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.delenv(KEEP_VARIABLE, raising=False)
    monkeypatch.setattr(tempfile, "tempdir", None)  # read TMPDIR again


def test_a_run_that_ends_well_leaves_nothing(tmp_path: Path) -> None:
    with run_directory("modelway-test-") as run:
        assert run.path.parent == tmp_path
        (run.path / "logs").mkdir()
        (run.path / "logs" / "server.log").write_text("x" * 1000)
    assert not run.path.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_run_that_fails_keeps_its_logs_and_says_where(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(RuntimeError), run_directory("modelway-test-") as run:
        (run.path / "server.log").write_text("why it failed")
        raise RuntimeError("the server never answered")
    assert (run.path / "server.log").read_text() == "why it failed"
    assert f"kept {run.path}" in capsys.readouterr().err


def test_a_run_that_found_problems_keeps_its_directory() -> None:
    with run_directory("modelway-test-") as run:
        run.keep()
    assert run.path.is_dir()


def test_the_environment_keeps_every_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEEP_VARIABLE, "1")
    with run_directory("modelway-test-") as run:
        pass
    assert run.path.is_dir()
    monkeypatch.setenv(KEEP_VARIABLE, "0")
    with run_directory("modelway-test-") as run:
        pass
    assert not run.path.exists()


def test_a_directory_the_caller_named_is_used_and_kept(tmp_path: Path) -> None:
    named = tmp_path / "mine"
    named.mkdir()
    with run_directory("modelway-test-", named) as run:
        assert run.path == named
    assert named.is_dir()
    assert [entry.name for entry in tmp_path.iterdir()] == ["mine"]
