"""Scale: a district shaped like the source text, multiplied. At x1: 8 streets, 53 communities, 556 grids,
about 3,000 buildings, 1,571 staff, 6,900 residents and 17,000 requests over the last year; at xN every count
is N times that (x60: about 1,000,000 requests and 414,000 residents). Whatever the factor, the last 30 days
hold the grid workers' rounds: 1,571 workers making 8 visits a day (377,040 visits) and a night patrol by a
quarter of them each night.

On that database, in a fresh process that serves nothing else: a worker's ``/tasks`` through the core (one
update, one transaction), the scheduler's due scan (``bot.core.scheduler.due_jobs``), the daily digest of
community, street and district staff (one recipient's piece, one transaction, with the day's collection), one
month's district bulletin, peak RSS while residents file requests and all of the above runs, and the query plan
of every statement ``/tasks`` and the due scan issue (a full scan of a big table is reported).

    python -m bench.scale [--factor 60] [--db bench-x60.db] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import create_engine, event, func, select, text
from sqlalchemy.orm import Session

from bench.bulletin import STREET_NAMES, _Generator, _insert_chunks, _spread, time_bulletin
from bench.harness import FIRST_RESIDENT, FIRST_WORKER, Conversation, bench_settings, gridbot_under_test, run_scripted
from bot.core.bulletin import Month
from bot.core.categories import seed_categories
from bot.core.messages import Command, Incoming, Sender
from bot.core.scheduler import JobKind, Period, SchedulerConfig, due_jobs
from bot.core.units import DISTRICT
from bot.engines.telegram import CHANNEL
from bot.scheduler import BulletinCache, run_period_piece
from bot.service import Service, prepare_database
from storage.models import (
    Building,
    Category,
    Community,
    Grid,
    Patrol,
    Person,
    Rating,
    Request,
    RequestEvent,
    RequestStatus,
    Role,
    StaffRole,
    Street,
    Visit,
)

TARGET_TASKS = 0.050
TARGET_DUE_SCAN = 0.100
TARGET_BULLETIN = 5.0
TARGET_RSS_MB = 250.0
# The digest has no bound of its own: it is a scheduler job, held to the scheduler's per-step bound.
TARGET_DIGEST = TARGET_DUE_SCAN
ROOT = Path(__file__).resolve().parent.parent

# x1 counts from the source text.
COMMUNITIES, GRIDS, BUILDINGS = 53, 556, 3_000
RESIDENTS, REQUESTS = 6_900, 17_000
# 1,571 staff: two workers a grid, eight at each community, four at each street, three at the district.
WORKERS_PER_GRID, STAFF_PER_COMMUNITY, STAFF_PER_STREET, DISTRICT_STAFF = 2, 8, 4, 3
REQUEST_CHUNK = 20_000
# The workers' rounds of the last 30 days, at every factor: the issue's 1,571 workers x 8 visits a day.
VISIT_WORKERS, VISITS_PER_DAY, ROUND_DAYS = 1_571, 8, 30
# Local office hours of the visits (UTC+8: 08:00-18:00 is 00:00-10:00 UTC) and the share patrolling each night.
VISIT_HOURS_UTC = (0.0, 10.0)
PATROL_SHARE = 4
# The digest's recipients measured: community, street and district staff.
DIGEST_SAMPLE = ((Role.COMMUNITY, 8), (Role.STREET, 4), (Role.DISTRICT, 2))
OPEN = (RequestStatus.NEW, RequestStatus.ACCEPTED)


# --- the generator ---------------------------------------------------------------------------------------------


def _organisation(session: Session, factor: int) -> tuple[list[int], dict[int, int], dict[str, list[int]]]:
    """Streets, communities, grids and buildings, ``factor`` times the source text's; returns building ids, the
    grid of each building, and unit ids per level."""
    streets = [
        {"code": f"S{copy:02d}-{index + 1:02d}", "name": f"{name}街道{copy or ''}"}
        for copy in range(factor) for index, name in enumerate(STREET_NAMES)
    ]
    _insert_chunks(session, Street, iter(streets))
    street_ids = list(session.scalars(select(Street.id).order_by(Street.id)))
    communities = [
        {"code": f"C{street}-{n}", "name": f"第{n + 1}社区", "street_id": street}
        for street, count in zip(street_ids, _spread(COMMUNITIES * factor, len(street_ids)), strict=True)
        for n in range(count)
    ]
    _insert_chunks(session, Community, iter(communities))
    community_ids = list(session.scalars(select(Community.id).order_by(Community.id)))
    grids = [
        {"code": f"G{community}-{n}", "name": f"第{n + 1}网格", "community_id": community}
        for community, count in zip(community_ids, _spread(GRIDS * factor, len(community_ids)), strict=True)
        for n in range(count)
    ]
    _insert_chunks(session, Grid, iter(grids))
    grid_ids = list(session.scalars(select(Grid.id).order_by(Grid.id)))
    buildings = (
        {"code": f"B{grid}-{n}", "name": f"{n + 1}号楼", "address": "", "grid_id": grid, "active": True,
         "latitude": 32.99, "longitude": 112.53}
        for grid, count in zip(grid_ids, _spread(BUILDINGS * factor, len(grid_ids)), strict=True)
        for n in range(count)
    )
    _insert_chunks(session, Building, buildings)
    grid_of = {building: grid for building, grid in session.execute(select(Building.id, Building.grid_id))}
    units = {"grid": grid_ids, "community": community_ids, "street": street_ids}
    return sorted(grid_of), grid_of, units


def _people(session: Session, building_ids: list[int], units: dict[str, list[int]], factor: int,
            rng: random.Random) -> tuple[list[int], list[int]]:
    """Staff with their roles and residents; returns (resident person ids, worker Telegram ids)."""
    created = datetime(2024, 1, 1, tzinfo=UTC)
    roles: list[tuple[Role, int]] = [
        (Role.WORKER, grid) for grid in units["grid"] for _ in range(WORKERS_PER_GRID)
    ] + [
        (Role.COMMUNITY, community) for community in units["community"] for _ in range(STAFF_PER_COMMUNITY)
    ] + [(Role.STREET, street) for street in units["street"] for _ in range(STAFF_PER_STREET)]
    roles += [(Role.DISTRICT, 0)] * DISTRICT_STAFF

    def person(telegram_id: int, building: int | None) -> dict[str, Any]:
        return {"channel": CHANNEL, "external_id": str(telegram_id), "chat_id": str(telegram_id),
                "display_name": f"P{telegram_id}", "locale": "zh_CN", "state_data": {}, "created_at": created,
                "unreachable": False, "building_id": building}

    first = (session.scalar(select(func.max(Person.id))) or 0) + 1
    _insert_chunks(session, Person, (person(FIRST_WORKER + index, None) for index in range(len(roles))))
    _insert_chunks(session, StaffRole, (
        {"person_id": first + index, "role": role, "unit_id": unit} for index, (role, unit) in enumerate(roles)
    ))
    residents = RESIDENTS * factor
    # The first residents live in buildings of their own, so the ones that file in the benchmark never meet a
    # neighbour's duplicate; the rest are spread at random.
    homes = (building_ids[index] if index < len(building_ids) // 2 else rng.choice(building_ids)
             for index in range(residents))
    first_resident = first + len(roles)
    _insert_chunks(session, Person, (person(FIRST_RESIDENT + index, home) for index, home in enumerate(homes)))
    worker_telegram = [FIRST_WORKER + index for index, (role, _unit) in enumerate(roles)]
    return list(range(first_resident, first_resident + residents)), worker_telegram


def _with_timers(row: dict[str, Any], grid_of: dict[int, int], now: datetime) -> dict[str, Any]:
    """A generated request as the running system would have left it: held by its building's grid, with the
    scheduler's timers and markers where the scheduler would have put them."""
    row["unit_id"] = row["grid_id"] = grid_of[row["building_id"]]
    created, status = row["created_at"], row["status"]
    if status is RequestStatus.NEW and now - created < timedelta(days=2):
        row["remind_at"], row["escalate_at"] = created + timedelta(hours=4), created + timedelta(days=1)
    if status in OPEN and row["due_at"] <= now:
        row["overdue_escalated_at"] = row["due_at"] + timedelta(minutes=5)
    elif status in OPEN:
        row["overdue_check_at"] = row["due_at"]
    if status is RequestStatus.RESOLVED and row["resolved_at"] is not None:
        if row["resolved_at"] <= now - timedelta(days=7):
            row["status"] = RequestStatus.CLOSED  # the scheduler would have closed it
            row["closed_at"] = row["resolved_at"] + timedelta(days=7)
        elif row["resolved_at"] <= now - timedelta(days=3):
            row["reasked_at"] = row["resolved_at"] + timedelta(days=3)
    return row


def _rounds(session: Session, grid_of: dict[int, int], now: datetime, rng: random.Random) -> tuple[int, int]:
    """30 days of visits by ``VISIT_WORKERS`` workers (each to buildings of their grid) and night patrols;
    returns the counts (visits, patrols)."""
    buildings_of: dict[int, list[int]] = {}
    for building, grid in grid_of.items():
        buildings_of.setdefault(grid, []).append(building)
    workers = [(person, grid) for person, grid in session.execute(
        select(StaffRole.person_id, StaffRole.unit_id).where(StaffRole.role == Role.WORKER).order_by(StaffRole.id))]
    chosen = rng.sample(workers, min(VISIT_WORKERS, len(workers)))
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    days = [today - timedelta(days=back) for back in range(ROUND_DAYS)]

    def visits() -> Iterator[dict[str, Any]]:
        for day in days:
            for worker, grid in chosen:
                for _ in range(VISITS_PER_DAY):
                    at = day + timedelta(hours=rng.uniform(*VISIT_HOURS_UTC))
                    if at < now:
                        yield {"worker_id": worker, "grid_id": grid, "building_id": rng.choice(buildings_of[grid]),
                               "room": "", "met": "", "note": "", "photo": None, "request_id": None, "at": at}

    def patrols() -> Iterator[dict[str, Any]]:
        for day in days[1:]:
            for worker, grid in chosen[::PATROL_SHARE]:
                started = day + timedelta(hours=13 + rng.uniform(0, 2))  # 21:00-23:00 local
                yield {"worker_id": worker, "grid_id": grid, "started_at": started,
                       "ended_at": started + timedelta(hours=rng.uniform(1, 3)), "auto_closed": False,
                       "distance_m": rng.uniform(500, 5000)}

    return _insert_chunks(session, Visit, visits()), _insert_chunks(session, Patrol, patrols())


def generate(path: Path, factor: int, now: datetime, seed: int = 1) -> dict[str, int]:
    """A fresh, upgraded SQLite database at ``path`` holding the district at ``factor``; returns counts."""
    path.unlink(missing_ok=True)
    url = f"sqlite+aiosqlite:///{path}"
    service = Service.from_settings(bench_settings(url))

    async def upgrade() -> None:
        try:
            await prepare_database(service.database)
        finally:
            await service.database.dispose()

    asyncio.run(upgrade())
    engine = create_engine(f"sqlite:///{path}")
    rng = random.Random(seed)
    try:
        with Session(engine) as session, session.begin():
            seed_categories(session)
            building_ids, grid_of, units = _organisation(session, factor)
            residents, workers = _people(session, building_ids, units, factor, rng)
            categories = [(row.id, row.due_days) for row in session.execute(select(Category.id, Category.due_days))]
            start = now - timedelta(days=365)
            generator = _Generator(rng, building_ids, residents, categories, start, 365 * 86_400.0, 1, [], [])
            total = REQUESTS * factor
            for begun in range(0, total, REQUEST_CHUNK):
                count = min(REQUEST_CHUNK, total - begun)
                rows: Iterator[dict[str, Any]] = (
                    _with_timers(generator.request() | _NO_TIMERS, grid_of, now) for _ in range(count)
                )
                _insert_chunks(session, Request, rows)
                _insert_chunks(session, RequestEvent, iter(generator.events))
                _insert_chunks(session, Rating, iter(generator.ratings))
                generator.events.clear()
                generator.ratings.clear()
            visits, patrols = _rounds(session, grid_of, now, rng)
        with engine.connect() as connection:
            connection.execute(text("ANALYZE"))
            connection.commit()
    finally:
        engine.dispose()
    return {"requests": REQUESTS * factor, "residents": RESIDENTS * factor, "buildings": len(building_ids),
            "staff": len(workers), "visits": visits, "patrols": patrols}


_NO_TIMERS = {
    "remind_at": None, "escalate_at": None, "overdue_check_at": None, "overdue_escalated_at": None, "reasked_at": None
}


# --- measuring (in a process of its own, so its RSS is the serving process's) ----------------------------------


@dataclass
class ScaleResult:
    factor: int
    counts: dict[str, int]
    generate_seconds: float
    tasks_ms: list[float] = field(default_factory=list)
    tasks_rows: list[int] = field(default_factory=list)
    due_scan_ms: list[float] = field(default_factory=list)
    due_jobs: int = 0
    digest_ms: list[float] = field(default_factory=list)
    digest_messages: int = 0
    bulletin_s: float = 0.0
    bulletin_requests: int = 0
    steps_per_second: float = 0.0
    peak_rss_mb: float = 0.0
    full_scans: list[str] = field(default_factory=list)

    @property
    def tasks_p50(self) -> float:
        return statistics.median(self.tasks_ms)

    @property
    def due_scan_p50(self) -> float:
        return statistics.median(self.due_scan_ms)

    @property
    def digest_p50(self) -> float:
        return statistics.median(self.digest_ms)


class _PeakRss:
    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        process = psutil.Process()
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, process.memory_info().rss)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, psutil.Process().memory_info().rss)
        return self.peak / 2**20


class _Plans:
    """Collects the query plan of every statement run while ``active``; notes full scans of tables."""

    def __init__(self, service: Service) -> None:
        self.active = False
        self.full_scans: set[str] = set()
        engine = service.database.sync_engine
        assert engine is not None

        @event.listens_for(engine, "before_cursor_execute")
        def explain(connection: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                    executemany: bool) -> None:
            if not self.active or executemany or not statement.lstrip().upper().startswith("SELECT"):
                return
            for row in cursor.connection.execute(f"EXPLAIN QUERY PLAN {statement}", parameters).fetchall():
                detail = str(row[-1])
                # "SCAN t" reads the whole table; "SCAN t USING (COVERING) INDEX" walks an index in order.
                if detail.startswith("SCAN ") and "USING" not in detail and "CONSTANT ROW" not in detail:
                    self.full_scans.add(f"{detail} <- {' '.join(statement.split())[:160]}")


async def _serve_and_measure(path: Path, result: ScaleResult, conversations: int) -> None:
    url = f"sqlite+aiosqlite:///{path}"
    service = Service.from_settings(bench_settings(url))
    database = service.database
    plans = _Plans(service)
    try:
        core = gridbot_under_test(service)
        # Residents filing through the whole engine while the rest runs: what "while serving" means.
        residents = await database.run(
            lambda s: [int(x) for x in s.scalars(select(Person.external_id).where(
                Person.external_id >= str(FIRST_RESIDENT), Person.building_id.is_not(None),
            ).order_by(Person.id).limit(conversations))]
        )
        people = [Conversation(user_id, core.session) for user_id in residents]
        scripts: list[list[Callable[[], dict[str, Any]]]] = [
            [partial(c.step, i) for c in people[lane::20] for i in range(Conversation.STEPS)]
            for lane in range(20)
        ]
        stats = await run_scripted(core, scripts)
        result.steps_per_second = stats.rate
        runtime_core = service.runtime({}, "gridbot").core
        # Staff roles were inserted workers first, district staff last: 12 workers at random and the last 8
        # (street and district staff, whose /tasks also looks for requests stuck at units without staff).
        last_role = await database.run(lambda s: s.scalar(select(func.max(StaffRole.id))) or 0)
        workers = WORKERS_PER_GRID * GRIDS * result.factor
        role_ids = random.Random(3).sample(range(1, workers + 1), 12) + list(range(last_role - 7, last_role + 1))
        sample = await database.run(lambda s: list(s.execute(
            select(Person.external_id, StaffRole.role).join(StaffRole, StaffRole.person_id == Person.id)
            .where(StaffRole.id.in_(role_ids))
        ).tuples()))
        now = datetime.now(UTC)
        update_ids = iter(range(900_000_000, 901_000_000))
        # The second pass only collects query plans (EXPLAIN would distort the timings of the first).
        for explain in (False, True):
            plans.active = explain
            for telegram_id, _role in sample:
                sender = Sender(CHANNEL, telegram_id, telegram_id, "staff", "zh-hans")
                started = time.perf_counter()
                sent = await runtime_core.handle(Incoming(CHANNEL, next(update_ids), sender, Command("tasks", "")))
                if not explain:
                    result.tasks_ms.append((time.perf_counter() - started) * 1000)
                    result.tasks_rows.append(len(sent))
            for _ in range(1 if explain else 10):
                started = time.perf_counter()
                jobs = await database.run(lambda s: due_jobs(s, now))
                if not explain:
                    result.due_scan_ms.append((time.perf_counter() - started) * 1000)
                    result.due_jobs = len(jobs)
        plans.active = False
        await _measure_digest(database, now, result)
        month = Month(now.year, now.month).shifted(-1)
        seconds, bulletin = await time_bulletin(database, DISTRICT, month, runs=1)
        result.bulletin_s, result.bulletin_requests = seconds, bulletin.totals.counts.received
        result.full_scans = sorted(plans.full_scans)
    finally:
        await database.dispose()


async def _measure_digest(database: Any, now: datetime, result: ScaleResult) -> None:
    """One daily digest piece (claim, what the recipient's units hold, the day's collection, the outbox row)
    for each sampled recipient, each in its own transaction as the scheduler runs it."""
    def pick(session: Session) -> list[str]:
        rng = random.Random(5)
        subjects = []
        for role, count in DIGEST_SAMPLE:
            people = list(session.scalars(select(StaffRole.person_id).where(StaffRole.role == role)
                                          .order_by(StaffRole.id)))
            subjects += [f"person:{person}" for person in rng.sample(people, min(count, len(people)))]
        return subjects

    config = SchedulerConfig()
    period = Period(JobKind.DAILY_DIGEST, "bench", now)
    for subject in await database.run(pick):
        work = partial(run_period_piece, period=period, subject=subject, now=now, config=config,
                       cache=BulletinCache())
        started = time.perf_counter()
        written = await database.run(work)
        result.digest_ms.append((time.perf_counter() - started) * 1000)
        result.digest_messages += len(written or [])


def _child(path: Path, factor: int, counts: dict[str, int], generate_seconds: float, conversations: int) -> None:
    result = ScaleResult(factor, counts, generate_seconds)
    watcher = _PeakRss()
    asyncio.run(_serve_and_measure(path, result, conversations))
    result.peak_rss_mb = watcher.stop()
    print("RESULT " + json.dumps(asdict(result)))


def measure(factor: int, path: Path | None = None, conversations: int = 100) -> ScaleResult:
    """Generate the district (unless ``path`` already holds one at this factor), then measure in a child."""
    with tempfile.TemporaryDirectory(prefix="gridbot-bench-") as directory:
        db = path or Path(directory) / f"scale-x{factor}.db"
        started = time.perf_counter()
        counts = generate(db, factor, datetime.now(UTC))
        generate_seconds = time.perf_counter() - started
        child = subprocess.run(
            [sys.executable, "-m", "bench.scale", "--child", str(db), "--factor", str(factor),
             "--counts", json.dumps(counts), "--generated", str(generate_seconds),
             "--conversations", str(conversations)],
            cwd=ROOT, env=os.environ | {"PYTHONPATH": str(ROOT)}, capture_output=True, text=True, check=False,
        )
        line = next((x for x in child.stdout.splitlines() if x.startswith("RESULT ")), None)
        if child.returncode != 0 or line is None:
            raise RuntimeError(f"scale measurement failed:\n{child.stderr[-3000:]}")
        data = json.loads(line.removeprefix("RESULT "))
        return ScaleResult(**data)


def describe(result: ScaleResult) -> str:
    scans = "none" if not result.full_scans else "; ".join(result.full_scans)
    return "\n".join([
        f"x{result.factor}: {result.counts} generated in {result.generate_seconds:.0f} s",
        f"  /tasks through the core: median {result.tasks_p50:.1f} ms, max {max(result.tasks_ms):.1f} ms "
        f"(target < {TARGET_TASKS * 1000:.0f} ms)",
        f"  scheduler due scan (due_jobs): median {result.due_scan_p50:.1f} ms, max {max(result.due_scan_ms):.1f} ms,"
        f" {result.due_jobs} jobs due (target < {TARGET_DUE_SCAN * 1000:.0f} ms)",
        f"  daily digest, one recipient (community, street, district staff): median {result.digest_p50:.1f} ms, "
        f"max {max(result.digest_ms):.1f} ms, {result.digest_messages} of {len(result.digest_ms)} sent a message "
        f"(target < {TARGET_DIGEST * 1000:.0f} ms)",
        f"  district bulletin, one month: {result.bulletin_s:.2f} s, {result.bulletin_requests} requests "
        f"(target < {TARGET_BULLETIN:.0f} s)",
        f"  peak RSS while serving: {result.peak_rss_mb:.0f} MB (target < {TARGET_RSS_MB:.0f} MB); "
        f"filing {result.steps_per_second:.0f} steps/s on this database",
        f"  full table scans in /tasks and the due scan: {scans}",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--factor", type=int, default=60)
    parser.add_argument("--conversations", type=int, default=100)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--counts", help=argparse.SUPPRESS)
    parser.add_argument("--generated", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(Path(args.child), args.factor, json.loads(args.counts), args.generated, args.conversations)
        return
    print(describe(measure(args.factor, conversations=args.conversations)))


if __name__ == "__main__":
    main()
