"""SQL statements per update, by step of the filing conversation: what the database is asked to do for each
``/new``, category, description, photos done, location skipped, hide name and confirm.

    python -m bench.statements [--conversations 20] [--postgres URL] [--show STEP]
    python -m bench.statements --quick    # for CI: exits non-zero when a step needs far more than it should

Each update is handled through the real aiogram engine, runtime and core with the network null (see
``bench.harness``), one resident at a time, so every statement executed while the core handles an update
belongs to that update. Statements are counted twice: as SQLAlchemy sends them to the driver (the
``before_cursor_execute`` event, one per ``execute`` or ``executemany``) and, on SQLite, as SQLite itself runs
them (``sqlite3``'s trace callback, which also sees the transaction's BEGIN and COMMIT and each statement of an
``executemany``). Recording a batch of updates and recording deliveries are hops of their own, counted apart.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bench.harness import Conversation, deployment, gridbot_under_test, postgres_url, run_scripted, sqlite_url
from bot.core.app import PendingDelivery
from bot.core.messages import Incoming
from bot.runtime import Runtime

STEPS = ("new", "category", "description", "photos", "location", "hide", "confirm")

# SQLAlchemy statements per step on main before the hot path was cut (issue 21 counted 9, 11, 8, 9, 9, 10 and
# 22 on an older main); the target is at most half of them.
BEFORE: dict[str, int] = {"new": 12, "category": 13, "description": 8, "photos": 10, "location": 10, "hide": 11,
                          "confirm": 28}
# What this benchmark measured after the cut; ``--quick`` fails when a step needs more than ``GROSS`` times it.
REACHED: dict[str, int] = {"new": 4, "category": 5, "description": 4, "photos": 4, "location": 4, "hide": 4,
                           "confirm": 11}
GROSS = 1.5
T = TypeVar("T")


@dataclass
class StepCounts:
    """Statements of each update of one step kind, at both levels."""

    sqlalchemy: list[int] = field(default_factory=list)
    sqlite: list[int] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.sqlalchemy) if self.sqlalchemy else float("nan")

    @property
    def sqlite_median(self) -> float:
        return statistics.median(self.sqlite) if self.sqlite else float("nan")


@dataclass
class StatementsResult:
    database: str
    conversations: int
    steps: dict[str, StepCounts]
    # Statements of the hops beside handling (recording batches, recording deliveries), per update handled.
    other_per_update: float
    shown: list[str]


class Counter:
    """Counts the statements of each hop that handles an update of a known step kind, and of the other hops."""

    def __init__(self, show: str | None) -> None:
        self.kind_of: dict[int, str] = {}
        self.steps: dict[str, StepCounts] = defaultdict(StepCounts)
        self.current: str | None = None
        self.sqlalchemy = 0
        self.sqlite = 0
        self.other = 0
        self.updates = 0
        self.show = show
        self.shown: list[str] = []

    def on_statement(self, statement: str) -> None:
        if self.current is None:
            self.other += 1
            return
        self.sqlalchemy += 1
        if self.current == self.show and len(self.shown) < 100:
            self.shown.append(" ".join(statement.split())[:400])

    def on_sqlite(self, _statement: str) -> None:
        if self.current is not None:
            self.sqlite += 1

    def handling(self, incoming: Incoming) -> None:
        """The core starts handling an update: what follows, up to the end of its hop, is that update's."""
        self.current, self.sqlalchemy, self.sqlite = self.kind_of.get(incoming.update_id), 0, 0
        self.updates += 1

    def hop_done(self) -> None:
        if self.current is not None:
            self.steps[self.current].sqlalchemy.append(self.sqlalchemy)
            self.steps[self.current].sqlite.append(self.sqlite)
            if self.current == self.show:
                self.show = None  # one update of the step shown is enough
        self.current = None


@contextlib.contextmanager
def counting(runtime: Runtime, counter: Counter) -> Iterator[None]:
    """Count every statement of the runtime's database while the block runs; updates are told apart by
    ``Core.handle_in_session`` starting, and end with their hop (the commit included)."""
    core, database = runtime.core, runtime.core.database
    handle, run = core.handle_in_session, database.run

    def handle_in_session(session: Session, incoming: Incoming, failed: bool = False) -> list[PendingDelivery]:
        counter.handling(incoming)
        return handle(session, incoming, failed)

    async def run_hop(unit_of_work: Callable[[Session], T]) -> T:
        try:
            return await run(unit_of_work)
        finally:
            counter.hop_done()

    def before_cursor_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        counter.on_statement(statement)

    engine: Engine = database.sync_engine or database.async_engine.sync_engine
    traced: list[Any] = []

    def on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        # SQLite's own count; asyncpg offers no such hook, so PostgreSQL is counted at SQLAlchemy's level only.
        if database.sync_engine is not None and all(dbapi_connection is not seen for seen in traced):
            dbapi_connection.set_trace_callback(counter.on_sqlite)
            traced.append(dbapi_connection)

    core.handle_in_session = handle_in_session  # type: ignore[method-assign]
    database.run = run_hop  # type: ignore[method-assign]
    event.listen(engine, "before_cursor_execute", before_cursor_execute)
    event.listen(engine, "checkout", on_checkout)
    try:
        yield
    finally:
        event.remove(engine, "checkout", on_checkout)
        event.remove(engine, "before_cursor_execute", before_cursor_execute)
        del core.handle_in_session, database.run
        for connection in traced:
            connection.set_trace_callback(None)


async def measure(database_url: str, conversations: int, show: str | None = None) -> StatementsResult:
    counter = Counter(show)
    async with deployment(database_url, conversations + 1) as deployed:
        service = deployed.service
        runtimes: list[Runtime] = []
        service.runtime_listeners.append(runtimes.append)
        under_test = gridbot_under_test(service)
        people = [Conversation(user_id, under_test.session) for user_id in deployed.residents]
        # One conversation first, uncounted, as a running bot has warmed its caches and compiled statements.
        await run_scripted(under_test, [_script(people[0], {})])
        with counting(runtimes[0], counter):
            # One resident at a time: every statement while an update is handled belongs to it.
            one_at_a_time = [make for person in people[1:] for make in _script(person, counter.kind_of)]
            await run_scripted(under_test, [one_at_a_time])
    name = "PostgreSQL" if database_url.startswith("postgresql") else "SQLite"
    return StatementsResult(name, conversations, dict(counter.steps), counter.other / max(counter.updates, 1),
                            counter.shown)


def _script(person: Conversation, kind_of: dict[int, str]) -> list[Callable[[], dict[str, Any]]]:
    def step(index: int) -> Callable[[], dict[str, Any]]:
        def make() -> dict[str, Any]:
            payload = person.step(index)
            kind_of[payload["update_id"]] = STEPS[index]
            return payload

        return make

    return [step(index) for index in range(Conversation.STEPS)]


async def measure_sqlite(conversations: int, show: str | None = None) -> StatementsResult:
    with tempfile.TemporaryDirectory(prefix="gridbot-bench-") as directory:
        return await measure(sqlite_url(Path(directory), "statements.db"), conversations, show)


async def measure_postgres(server_url: str, conversations: int, show: str | None = None) -> StatementsResult:
    async with postgres_url(server_url) as url:
        return await measure(url, conversations, show)


def describe(result: StatementsResult) -> str:
    sqlite = result.database == "SQLite"
    head = f"{'step':<12} {'SQLAlchemy':>10} {'SQLite':>7} {'before':>7} {'target':>7}" if sqlite else (
        f"{'step':<12} {'SQLAlchemy':>10} {'before':>7} {'target':>7}")
    lines = [f"{result.database}: SQL statements per update, median of {result.conversations} conversations", head]
    for step in STEPS:
        counts = result.steps[step]
        level = f" {counts.sqlite_median:>7.0f}" if sqlite else ""
        lines.append(f"{step:<12} {counts.median:>10.0f}{level} {BEFORE[step]:>7} {BEFORE[step] / 2:>7g}")
    total = sum(result.steps[step].median for step in STEPS)
    lines.append(f"{'conversation':<12} {total:>10.0f}{' ' * 8 if sqlite else ''} {sum(BEFORE.values()):>7}")
    lines.append(f"beside handling (recording updates, recording deliveries): {result.other_per_update:.1f} "
                 "SQLAlchemy statements per update")
    if result.shown:
        lines += ["", "statements of one update:", *(f"  {statement}" for statement in result.shown)]
    return "\n".join(lines)


def gross_regressions(result: StatementsResult) -> list[str]:
    return [
        f"{step}: {result.steps[step].median:.0f} statements (more than {GROSS} x {REACHED[step]})"
        for step in STEPS
        if result.steps[step].median > GROSS * REACHED[step]
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="a few conversations; fails only on gross regressions")
    parser.add_argument("--postgres", help="a PostgreSQL server URL (postgresql+asyncpg://...) to count on too")
    parser.add_argument("--show", choices=STEPS, help="print the statements of one update of this step")
    args = parser.parse_args()
    conversations = 5 if args.quick else args.conversations
    results = [asyncio.run(measure_sqlite(conversations, args.show))]
    if args.postgres:
        results.append(asyncio.run(measure_postgres(args.postgres, conversations, args.show)))
    gross = []
    for result in results:
        print(describe(result))
        gross += gross_regressions(result)
    for line in gross:
        print(f"GROSS REGRESSION: {line}")
    return 1 if args.quick and gross else 0


if __name__ == "__main__":
    sys.exit(main())
