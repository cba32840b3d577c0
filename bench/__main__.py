"""Run every benchmark and rewrite ``bench/RESULTS.md``.

    python -m bench            # the full run (about 13 minutes on 2 cores), rewrites bench/RESULTS.md but for
                               # the sections measured by separate commands (see ``KEPT_FROM``)
    python -m bench --quick    # a small run for CI (under 2 minutes); prints, writes nothing

Timings on a shared 2-core machine swing by a factor of two from one minute to the next, so no result fails the
run on its own: ``--quick`` exits non-zero only on a gross regression, a measured ratio below half its target
(for bounds: a value above twice the bound); start-up seconds stretch with the load, so there it guards their
share beyond ``import aiogram`` in the same run. The full run reports every target as met or not met.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiogram
import psutil
import sqlalchemy

from bench import conversation, desk, latency, routing, scale, startup, statements, yardsticks

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
DEFAULT_POSTGRES = "postgresql+asyncpg://root@127.0.0.1:5432/test"


@dataclass(frozen=True)
class Check:
    """One target: ``value`` against ``target``; ``higher`` says which direction is good."""

    name: str
    value: float
    target: float
    unit: str
    higher: bool = False
    # False for seconds that stretch with the machine's load; ``--quick`` then guards a ratio of the same run.
    guards: bool = True

    @property
    def met(self) -> bool:
        return self.value >= self.target if self.higher else self.value <= self.target

    @property
    def gross(self) -> bool:
        """Off by more than a factor of two: a regression, not noise."""
        return self.value < self.target / 2 if self.higher else self.value > self.target * 2

    def line(self) -> str:
        sign = ">=" if self.higher else "<="
        state = "met" if self.met else "**not met**"
        return f"| {self.name} | {self.value:,.3g} {self.unit} | {sign} {self.target:g} {self.unit} | {state} |"


@dataclass
class Report:
    sections: list[str]
    checks: list[Check]

    def add(self, title: str, body: str, *checks: Check) -> None:
        print(f"\n## {title}\n{body}", flush=True)
        self.sections.append(f"## {title}\n\n```\n{body}\n```\n")
        self.checks.extend(checks)


def _postgres_version(url: str) -> str | None:
    async def ask() -> str:
        import asyncpg
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        connection = await asyncpg.connect(user=parsed.username, host=parsed.host, port=parsed.port or 5432,
                                           database=parsed.database)
        try:
            return str(await connection.fetchval("SHOW server_version"))
        finally:
            await connection.close()

    try:
        return asyncio.run(ask())
    except (OSError, Exception):  # no server: the PostgreSQL run is skipped and says so
        return None


def machine() -> str:
    memory = psutil.virtual_memory().total / 2**30
    return "\n".join([
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: {os.cpu_count()} cores (`nproc`), {memory:.1f} GiB memory, {platform.platform()}",
        f"- Python {platform.python_version()}, aiogram {aiogram.__version__}, SQLAlchemy {sqlalchemy.__version__}, "
        f"SQLite {sqlite3.sqlite_version}",
    ])


def run(quick: bool, postgres: str | None) -> Report:
    report = Report([], [])
    pg_version = _postgres_version(postgres) if postgres else None

    sizes = (80, 20) if quick else (600, 50)
    sqlite_result = asyncio.run(conversation.measure_sqlite(*sizes))
    body = conversation.describe(sqlite_result)
    checks = [Check("conversation / echo, SQLite", sqlite_result.ratio, conversation.TARGET_RATIO, "", True)]
    if pg_version and postgres:
        pg_result = asyncio.run(conversation.measure_postgres(postgres, *sizes))
        body += "\n" + conversation.describe(pg_result)
        checks.append(Check("conversation / echo, PostgreSQL", pg_result.ratio, conversation.TARGET_RATIO, "", True))
    else:
        body += "\nPostgreSQL: no server reachable, not measured"
    report.add("1. Conversation throughput", body, *checks)

    counted = asyncio.run(statements.measure_sqlite(5 if quick else 20))
    report.add("1b. SQL statements per update", statements.describe(counted), *(
        Check(f"statements per update, {step}", counted.steps[step].median, statements.BEFORE[step] / 2, "")
        for step in statements.STEPS
    ))

    yard = asyncio.run(yardsticks.measure(**(yardsticks.QUICK if quick else yardsticks.FULL)))
    report.add("1c. Yardsticks: echo, the limit, the peers and gridbot, interleaved", yardsticks.describe(yard),
               Check("gridbot / the limit", yard.ratio("gridbot", "limit"), yardsticks.TARGET_OF_LIMIT, "", True),
               Check("gridbot / idiomatic peer", yard.ratio("gridbot", "idiomatic"), yardsticks.TARGET_OF_IDIOMATIC,
                     "", True))

    lat = asyncio.run(latency.measure_sqlite(100.0, 4.0 if quick else 15.0))
    report.add("2. Latency at 100 steps/s", latency.describe(lat),
               Check("latency p99 at 100 steps/s", lat.p99 * 1000, latency.TARGET_P99 * 1000, "ms"))

    rout = asyncio.run(routing.measure(5 if quick else 30))
    report.add("3. Routing", routing.describe(rout),
               Check("confirm -> worker p99", rout.p99 * 1000, routing.TARGET_P99 * 1000, "ms"))

    for factor in (1,) if quick else (1, 60):
        result = scale.measure(factor)
        checks = [
            # Medians: the single slowest call on a shared machine says more about the neighbours than the code
            # (the maxima are in the section below).
            Check(f"x{factor} /tasks (median of 20)", result.tasks_p50, scale.TARGET_TASKS * 1000, "ms"),
            Check(f"x{factor} due scan (median of 10)", result.due_scan_p50, scale.TARGET_DUE_SCAN * 1000, "ms"),
            Check(f"x{factor} digest piece (median of {len(result.digest_ms)})", result.digest_p50,
                  scale.TARGET_DIGEST * 1000, "ms"),
            Check(f"x{factor} district bulletin", result.bulletin_s, scale.TARGET_BULLETIN, "s"),
            Check(f"x{factor} peak RSS serving", result.peak_rss_mb, scale.TARGET_RSS_MB, "MB"),
            Check(f"x{factor} full table scans", len(result.full_scans), 0, "queries"),
        ]
        report.add(f"4. Scale x{factor}", scale.describe(result), *checks)

    # Three starts even in a quick run: one start on a shared machine swings by a second either way.
    start = asyncio.run(startup.measure(3))
    report.add("5. Start-up", startup.describe(start), *startup_checks(start))

    desk_db = Path(tempfile.gettempdir()) / ("gridbot-bench-desk-quick.db" if quick else "gridbot-bench-desk-x60.db")
    figures = desk.run(60, desk_db, 20, quick)
    label = "quick" if quick else "x60"
    report.add("6. Desk figures", desk.describe(figures),
               Check(f"{label} desk overview, district (median of {len(figures.district_ms)})", figures.district_p50,
                     desk.TARGET_OVERVIEW * 1000, "ms"),
               Check(f"{label} desk overview, community (median of {len(figures.community_ms)})",
                     figures.community_p50, desk.TARGET_OVERVIEW * 1000, "ms"))


    for name, module in (("broadcast", "bench.broadcast"), ("pacing", "bench.pacing"), ("engines", "bench.engines")):
        if not quick and importlib.util.find_spec(module) is not None:
            report.add(f"Other: {name}", _run_other(module))
    report.sections.insert(0, machine() + (f", PostgreSQL {pg_version}" if pg_version else "") + "\n")
    return report


def startup_checks(start: startup.StartupResult) -> list[Check]:
    return [
        Check("start-up beyond import aiogram", start.beyond_engine, startup.TARGET_BEYOND_ENGINE, "s", guards=False),
        Check("start-up beyond import aiogram, share of it", start.share_beyond_engine,
              startup.TARGET_SHARE_BEYOND_ENGINE, ""),
    ]


def _run_other(module: str) -> str:
    """Benchmarks other parts of the project keep in ``bench/``, run as their authors wrote them."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", module], capture_output=True, text=True, timeout=300,
                          check=False, cwd=RESULTS.parent.parent)
    tail = "\n".join((done.stdout or done.stderr).strip().splitlines()[-12:])
    return f"{tail}\n(python -m {module}: exit {done.returncode}, {time.perf_counter() - started:.0f} s)"


# Sections of RESULTS.md measured by separate commands (issue by issue, with their own machines and dates) sit
# between these two lines; a full run writes everything else afresh and keeps them as they are.
KEPT_FROM = "<!-- Measured by hand: `python -m bench` keeps everything from here to the closing line. -->"
KEPT_TO = "<!-- End of what was measured by hand. -->"


def kept_sections(text: str) -> list[str]:
    """The parts of an earlier RESULTS.md between ``KEPT_FROM`` and ``KEPT_TO``, the marks included."""
    kept, start = [], text.find(KEPT_FROM)
    while start >= 0 and (end := text.find(KEPT_TO, start)) >= 0:
        kept.append(text[start:end + len(KEPT_TO)] + "\n")
        start = text.find(KEPT_FROM, end)
    return kept


def write_results(report: Report, seconds: float, notes: Callable[[Report], str], path: Path = RESULTS) -> None:
    table = ["| target | measured | required | |", "|---|---|---|---|", *(c.line() for c in report.checks)]
    kept = kept_sections(path.read_text()) if path.exists() else []
    path.write_text("\n".join([
        "# Benchmark results",
        "",
        f"Written by `python -m bench` (full run, {seconds / 60:.1f} minutes).",
        "",
        report.sections[0],
        "## Targets",
        "",
        *table,
        "",
        *kept,
        notes(report),
        *report.sections[1:],
    ]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a small run for CI; fails only on gross regressions")
    parser.add_argument("--postgres", default=os.environ.get("GRIDBOT_BENCH_POSTGRES", DEFAULT_POSTGRES),
                        help="PostgreSQL server URL for the PostgreSQL conversation run ('' to skip)")
    args = parser.parse_args()
    started = time.perf_counter()
    report = run(args.quick, args.postgres or None)
    seconds = time.perf_counter() - started
    print(f"\n{len([c for c in report.checks if c.met])}/{len(report.checks)} targets met in {seconds:.0f} s")
    for check in report.checks:
        print(check.line())
    if args.quick:
        # Known misses are tracked in RESULTS.md; CI only guards against things getting much worse than the
        # last full run found, so a ratio already below half its target is compared with a floor instead.
        gross = gross_regressions(report.checks)
        for check in gross:
            print(f"GROSS REGRESSION: {check.line()}")
        return 1 if gross else 0
    from bench.notes import notes

    write_results(report, seconds, notes)
    return 0


# Targets the full run does not meet yet (see RESULTS.md); for these ``--quick`` guards a floor instead: half
# of what the last full run measured, or twice its time.
KNOWN_FLOORS: dict[str, tuple[float, bool]] = {
    "conversation / echo": (0.01, True),  # measured 0.02-0.05
    # The targets, 0.5 and 2.0, are far off, and half of them would fail every run: these floors are a little
    # under half of the lowest ratios bench.yardsticks measured when it was written (0.16 of the limit and 0.42
    # of the idiomatic peer in quick runs, 0.19 and 0.44 in full ones), leaving room for a busy machine.
    "gridbot / the limit": (0.06, True),
    "gridbot / idiomatic peer": (0.17, True),
    # Met on a quiet machine (p99 9-17 ms); on a loaded CI machine the neighbours decide the tail of a 4 s run.
    "latency p99": (5_000.0, False),
}


def gross_regressions(checks: list[Check]) -> list[Check]:
    """The checks that fail ``--quick``: far off their target (or the floor of a known miss) and guarded."""
    return [c for c in checks if c.guards and c.gross and not _known_miss(c)]


def _known_miss(check: Check) -> bool:
    for prefix, (floor, higher) in KNOWN_FLOORS.items():
        if check.name.startswith(prefix):
            return check.value >= floor if higher else check.value <= floor
    return False


if __name__ == "__main__":
    sys.exit(main())
