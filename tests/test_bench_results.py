"""bench's report: a full run keeps the sections measured by separate commands; `--quick` fails on gross regressions."""

from __future__ import annotations

from pathlib import Path

from bench.__main__ import (
    KEPT_FROM,
    KEPT_TO,
    RESULTS,
    Check,
    Report,
    gross_regressions,
    kept_sections,
    startup_checks,
    write_results,
)
from bench.startup import StartupResult


def test_a_full_run_keeps_what_was_measured_by_hand(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text("\n".join([
        "# Benchmark results", "old table", "",
        KEPT_FROM, "## Measured for an issue", "its numbers", KEPT_TO, "",
        "## How each figure is measured", "old notes", "",
        KEPT_FROM, "## Another issue", "more numbers", KEPT_TO, "",
    ]))
    report = Report([], [])
    report.sections.append("- date: today\n")
    report.add("1. Conversation throughput", "fresh output", Check("ratio", 0.4, 0.5, ""))

    write_results(report, 60.0, lambda _report: "fresh notes\n", path=results)

    text = results.read_text()
    assert "old table" not in text and "old notes" not in text
    assert "fresh output" in text and "fresh notes" in text
    for kept in ("## Measured for an issue\nits numbers", "## Another issue\nmore numbers"):
        assert text.count(kept) == 1
    assert text.index("| ratio |") < text.index("## Measured for an issue") < text.index("fresh notes")
    write_results(report, 60.0, lambda _report: "fresh notes\n", path=results)
    assert results.read_text() == text  # a second run keeps the same parts, once each


def test_the_committed_results_mark_their_hand_measured_sections() -> None:
    kept = kept_sections(RESULTS.read_text())
    assert any("## SQL statements per update and the hot path (issue 21)" in part for part in kept)
    assert any("## Sending a notice at the paid limit" in part for part in kept)


def _start(gridbot: float, engine_import: float) -> StartupResult:
    return StartupResult([gridbot] * 3, [engine_import] * 3, [gridbot] * 3, [engine_import] * 3)


def test_a_slow_machine_stretching_start_up_and_the_import_together_is_no_regression() -> None:
    # A CI run on a busy machine: 1.23 s beyond a 4.71 s import, where a quiet one measures 0.4 s beyond 2.5 s.
    checks = startup_checks(_start(5.94, 4.71))
    assert not checks[0].met
    assert gross_regressions(checks) == []


def test_start_up_growing_beyond_the_import_fails_the_quick_run() -> None:
    checks = startup_checks(_start(3.6, 2.5))
    assert [c.name for c in gross_regressions(checks)] == ["start-up beyond import aiogram, share of it"]
