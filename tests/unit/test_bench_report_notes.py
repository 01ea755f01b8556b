"""``bench/report.py`` rewrites docs/benchmarks.md and keeps the notes written by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import report


def test_a_rewrite_keeps_the_hand_written_notes_and_replaces_the_measured_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "benchmarks.md"
    notes = f"{report.NOTES_MARKER}\n\n## Measured by hand\n\nA table.\n"
    out.write_text(f"# old figures\n\n{notes}")
    monkeypatch.setattr(report, "render", lambda results, plot: "# new figures\n")
    monkeypatch.setattr(report, "write_plot", lambda results, plot: None)
    report.write_report({}, out)
    assert out.read_text() == f"# new figures\n\n{notes}"
    report.write_report({}, out)  # again: the notes are kept once, not doubled
    assert out.read_text() == f"# new figures\n\n{notes}"


def test_a_report_without_notes_is_just_the_measured_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "benchmarks.md"
    out.write_text("# old figures\n")
    monkeypatch.setattr(report, "render", lambda results, plot: "# new figures\n")
    monkeypatch.setattr(report, "write_plot", lambda results, plot: None)
    report.write_report({}, out)
    assert out.read_text() == "# new figures\n"
    assert report.kept_notes("no marker here") == ""


def test_the_committed_report_has_its_notes_marker() -> None:
    committed = Path(__file__).resolve().parents[2] / "docs" / "benchmarks.md"
    assert report.kept_notes(committed.read_text()).startswith(report.NOTES_MARKER)
