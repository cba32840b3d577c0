"""The desk's figures at scale: the overview and the evaluation (``bot.core.desk_figures``) on the x60 district.

The district is ``bench.scale``'s (x60: 480 streets, 3,180 communities, 33,360 grids, 1,020,000 requests over
the year before ``NOW``), built once into ``--db`` and reused while its side file says it holds that factor and
the same migrations (building x60 takes a few minutes). Through ``Database.run``, as a web page would ask:

* the district's and one community's overview with a ``TrendCache``: the first call (which reads the year's
  earlier months) and then the median of ``--runs`` calls (which count what stands and this month afresh);
* the district's overview without a cache (every call reads the whole year), the median of 3;
* the month's evaluation of the district (its streets ranked) and of one community (its grids and workers);
* the desk's PAGES through HTTP, as a browser asks for them: the desk app (``bot.desk.app.make_app``) served on
  a loopback port in this process, a district admin signed in by a link (cookie kept by the client), then the
  first call and the median of ``--runs`` of the district's overview page, one community's, the list of that
  community's overdue requests, the district's newest requests, and the evaluation pages of last month.

    python -m bench.desk [--factor 60] [--db bench-desk-x60.db] [--runs 20]
    python -m bench.desk --quick     # 20,000 requests from bench.bulletin, built in seconds: for CI

``--explain`` prints SQLite's plan of every statement the overview issues.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import psutil
from sqlalchemy import create_engine, event, select, text
from sqlalchemy.orm import Session

from bench.bulletin import generate_requests
from bench.scale import generate
from bot.core.bulletin import Month
from bot.core.desk_access import issue_link
from bot.core.desk_figures import TrendCache, evaluation, overview
from bot.core.units import DISTRICT, Unit
from storage.database import Database
from storage.migrate import revisions
from storage.models import Community, Level, Person, Role, StaffRole

TARGET_OVERVIEW = 0.200
TIMEZONE = "Asia/Shanghai"
# The clock the district is built for and measured at: fixed, so a built file stays valid.
NOW = datetime(2026, 11, 16, 2, tzinfo=UTC)
QUICK_REQUESTS = 20_000
QUICK_NOW = datetime(2026, 10, 20, 2, tzinfo=UTC)  # within bench.bulletin's last month
T = TypeVar("T")


@dataclass
class DeskResult:
    label: str
    requests: int
    build_seconds: float
    reused: bool
    load_before: float
    load_after: float = 0.0
    district_first_ms: float = 0.0
    district_ms: list[float] = field(default_factory=list)
    # CPU time of this process (every thread, the database's included) over the same calls: on a shared machine
    # the wall-clock time also holds the waits for a core.
    district_cpu_ms: list[float] = field(default_factory=list)
    district_uncached_ms: list[float] = field(default_factory=list)
    community_first_ms: float = 0.0
    community_ms: list[float] = field(default_factory=list)
    evaluation_district_ms: list[float] = field(default_factory=list)
    evaluation_community_ms: list[float] = field(default_factory=list)
    open_requests: int = 0
    # The desk's pages through HTTP, by name (``PAGES``): the first call, then every timed call.
    page_first_ms: dict[str, float] = field(default_factory=dict)
    page_ms: dict[str, list[float]] = field(default_factory=dict)
    page_cpu_ms: dict[str, list[float]] = field(default_factory=dict)
    page_bytes: dict[str, int] = field(default_factory=dict)

    @property
    def district_p50(self) -> float:
        return statistics.median(self.district_ms)

    @property
    def community_p50(self) -> float:
        return statistics.median(self.community_ms)


def _load() -> float:
    return float(psutil.getloadavg()[0])


def build(path: Path, factor: int, quick: bool) -> tuple[int, float, bool]:
    """The district in ``path``, built unless its side file says it is there already: (requests, seconds,
    reused)."""
    side = path.with_suffix(path.suffix + ".json")
    # A file built before a migration was added lacks its tables, whatever its head says: rebuilt then.
    wanted = {"factor": factor, "quick": quick, "now": NOW.isoformat(), "migrations": revisions()}
    if path.exists() and side.exists() and json.loads(side.read_text()).get("built") == wanted:
        return int(json.loads(side.read_text())["requests"]), 0.0, True
    started = time.perf_counter()
    if quick:
        requests = generate_requests(path, QUICK_REQUESTS).requests
        _analyze(path)
    else:
        requests = generate(path, factor, NOW)["requests"]
    side.write_text(json.dumps({"built": wanted, "requests": requests}))
    return requests, time.perf_counter() - started, False


def _analyze(path: Path) -> None:
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            connection.execute(text("ANALYZE"))
            connection.commit()
    finally:
        engine.dispose()


async def _timed(database: Database, work: Callable[[Session], T], cpu: list[float] | None = None) -> tuple[float, T]:
    started, cpu_started = time.perf_counter(), time.process_time()
    value = await database.run(work)
    if cpu is not None:
        cpu.append((time.process_time() - cpu_started) * 1000)
    return (time.perf_counter() - started) * 1000, value


async def measure(path: Path, result: DeskResult, now: datetime, runs: int) -> None:
    database = Database(f"sqlite+aiosqlite:///{path}")
    try:
        await measure_on(database, result, now, runs)
        await measure_pages(database, result, now, runs)
    finally:
        await database.dispose()


async def measure_on(database: Database, result: DeskResult, now: datetime, runs: int) -> None:
    """Every timing of ``DeskResult`` on ``database``, at ``now``."""
    community_id = await database.run(lambda s: s.scalar(select(Community.id).order_by(Community.id)))
    community = Unit(Level.COMMUNITY, int(community_id or 0))
    month = Month.containing(now, TIMEZONE).shifted(-1)
    cache = TrendCache(keep=timedelta(days=1))
    for area, first, times in ((DISTRICT, "district_first_ms", result.district_ms),
                               (community, "community_first_ms", result.community_ms)):
        show = partial(overview, area=area, now=now, timezone=TIMEZONE, cache=cache)
        elapsed, figures = await _timed(database, show)
        setattr(result, first, elapsed)
        if area == DISTRICT:
            result.open_requests = figures.totals.standing.open
        cpu = result.district_cpu_ms if area == DISTRICT else None
        for _ in range(runs):
            times.append((await _timed(database, show, cpu))[0])
    uncached = partial(overview, area=DISTRICT, now=now, timezone=TIMEZONE)
    for _ in range(3):
        result.district_uncached_ms.append((await _timed(database, uncached))[0])
    for area, times, count in ((DISTRICT, result.evaluation_district_ms, 3),
                               (community, result.evaluation_community_ms, 5)):
        evaluate = partial(evaluation, area=area, month=month, timezone=TIMEZONE)
        for _ in range(count):
            times.append((await _timed(database, evaluate))[0])


# --- the desk's pages through HTTP ----------------------------------------------------------------------

BENCH_ADMIN = "bench-desk-district"
# The pages timed: (name, path with ``{community}`` for the community's id, runs at most, a text the page
# must hold, so a refusal or an empty page is never what was timed).
PAGES = (
    ("overview, district", "/overview", 0, "Overview: the whole district"),
    ("overview, one community", "/overview?area=community:{community}", 0, "Overview: "),
    ("list, one community's overdue requests", "/requests?unit=community:{community}&overdue=1", 0,
     'id="results"'),
    ("list, the district's newest requests", "/requests", 0, '<a href="/requests/'),
    ("evaluation of last month, one community", "/evaluation?area=community:{community}", 5, "Evaluation for "),
    ("evaluation of last month, district", "/evaluation", 3, "Evaluation for "),
)


def _district_admin(session: Session, now: datetime) -> int:
    """The district admin the pages are read as: made once in the bench file, found again after."""
    found = session.scalar(select(Person.id).where(Person.channel == "bench", Person.external_id == BENCH_ADMIN))
    if found is not None:
        return int(found)
    person = Person(channel="bench", external_id=BENCH_ADMIN, chat_id=BENCH_ADMIN, display_name="Bench District",
                    locale="en", state_data={}, created_at=now, unreachable=True)
    session.add(person)
    session.flush()
    session.add(StaffRole(person_id=person.id, role=Role.DISTRICT, unit_id=0))
    return person.id


def _sign_in_link(session: Session, now: datetime) -> str:
    return issue_link(session, session.get_one(Person, _district_admin(session, now)), now)


async def _get(http: Any, url: str, wanted: str) -> tuple[float, float, int]:
    """One page: wall-clock and CPU milliseconds (of this process, server and client together), and bytes."""
    started, cpu_started = time.perf_counter(), time.process_time()
    async with http.get(url) as response:
        body = await response.text()
    elapsed, cpu = (time.perf_counter() - started) * 1000, (time.process_time() - cpu_started) * 1000
    if response.status != 200 or wanted not in body:
        raise RuntimeError(f"{url} answered {response.status} without {wanted!r}: {body[:300]}")
    return elapsed, cpu, len(body.encode())


async def measure_pages(database: Database, result: DeskResult, now: datetime, runs: int) -> None:
    """The desk's pages over loopback HTTP with a signed-in session, at ``now`` by the desk's clock."""
    import aiohttp
    from aiohttp import web

    from bot.core.clock import FrozenClock
    from bot.core.context import CoreConfig
    from bot.desk.app import DeskConfig, make_app

    community_id = await database.run(lambda s: s.scalar(select(Community.id).order_by(Community.id)))
    token = await database.run(partial(_sign_in_link, now=now))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    base = f"http://127.0.0.1:{port}"
    config = DeskConfig(core=CoreConfig(timezone=TIMEZONE, default_locale="en"), public_url=base,
                        listen=f"127.0.0.1:{port}")
    runner = web.AppRunner(make_app(database, config, FrozenClock(now)), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            # Not following the redirect to the overview: its first call is timed below.
            async with http.post(f"{base}/signin", data={"token": token}, allow_redirects=False) as signed:
                if signed.status != 303 or signed.headers.get("Location") != "/overview":
                    raise RuntimeError(f"signing in answered {signed.status}")
            for name, path, most, wanted in PAGES:
                url = base + path.format(community=community_id)
                first, _cpu, size = await _get(http, url, wanted)
                result.page_first_ms[name], result.page_bytes[name] = first, size
                times, cpu_times = result.page_ms.setdefault(name, []), result.page_cpu_ms.setdefault(name, [])
                for _ in range(min(runs, most) if most else runs):
                    elapsed, cpu, _size = await _get(http, url, wanted)
                    times.append(elapsed)
                    cpu_times.append(cpu)
    finally:
        await runner.cleanup()


def explain(path: Path, now: datetime) -> list[str]:
    """SQLite's plan of each statement of the district's and a community's overview."""
    engine = create_engine(f"sqlite:///{path}")
    statements: list[tuple[str, Any]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def record(connection: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        statements.append((statement, parameters))

    lines: list[str] = []
    try:
        with Session(engine) as session:
            community_id = session.scalar(select(Community.id).order_by(Community.id))
            for area in (DISTRICT, Unit(Level.COMMUNITY, int(community_id or 0))):
                statements.clear()
                overview(session, area, now, TIMEZONE)
                recorded = list(statements)
                raw = session.connection().connection.driver_connection
                assert raw is not None
                for statement, parameters in recorded:
                    lines.append(f"{area.level.value}: {' '.join(statement.split())[:100]}")
                    lines += [f"    {row[-1]}" for row in raw.execute(f"EXPLAIN QUERY PLAN {statement}", parameters)]
    finally:
        engine.dispose()
    return lines


async def measure_postgres(server_url: str, requests: int, runs: int) -> tuple[DeskResult, list[str]]:
    """The same on PostgreSQL: ``requests`` from ``bench.bulletin`` (its district of 556 grids, not x60's) in a
    scratch database, vacuumed and analysed; then the overview timed and its statements' plans."""
    import asyncpg
    from sqlalchemy.engine import make_url

    from bot.service import prepare_database
    from tests.postgres import scratch_postgres_database

    async with scratch_postgres_database(server_url) as url:
        database = Database(url)
        try:
            await prepare_database(database)
            started = time.perf_counter()
            await database.run(lambda session: generate_requests(session, requests))
            parsed = make_url(url)
            connection = await asyncpg.connect(user=parsed.username, host=parsed.host, port=parsed.port or 5432,
                                               database=parsed.database)
            try:
                await connection.execute("VACUUM ANALYZE")
                # The generator gives people and requests their ids itself, which leaves PostgreSQL's sequences
                # behind: the pages' sign-in adds a person after them.
                for table in ("people", "requests"):
                    await connection.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
            finally:
                await connection.close()
            result = DeskResult(f"PostgreSQL, {requests:,} requests (bench.bulletin)", requests,
                                time.perf_counter() - started, False, _load())
            await measure_on(database, result, QUICK_NOW, runs)
            await measure_pages(database, result, QUICK_NOW, runs)
            result.load_after = _load()
            plans = await database.run(partial(_postgres_plans, now=QUICK_NOW))
        finally:
            await database.dispose()
    return result, plans


def _postgres_plans(session: Session, now: datetime) -> list[str]:
    """EXPLAIN ANALYZE of each statement of the district's overview."""
    statements: list[tuple[str, Any]] = []
    engine = session.get_bind().engine

    def record(connection: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        overview(session, DISTRICT, now, TIMEZONE)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    lines = []
    for statement, parameters in statements:
        lines.append(f"district: {' '.join(statement.split())[:100]}")
        plan = session.connection().exec_driver_sql(f"EXPLAIN ANALYZE {statement}", parameters)
        lines += [f"    {row[0]}" for row in plan]
    return lines


def run(factor: int, db: Path, runs: int, quick: bool) -> DeskResult:
    requests, seconds, reused = build(db, factor, quick)
    label = f"{QUICK_REQUESTS:,} requests (bench.bulletin)" if quick else f"x{factor}"
    result = DeskResult(label, requests, seconds, reused, _load())
    asyncio.run(measure(db, result, QUICK_NOW if quick else NOW, runs))
    result.load_after = _load()
    return result


def _median(values: list[float]) -> str:
    return f"median {statistics.median(values):.0f} ms (min {min(values):.0f}, max {max(values):.0f})"


def describe(result: DeskResult) -> str:
    built = "reused the file built before" if result.reused else f"built in {result.build_seconds:.0f} s"
    return "\n".join([
        f"{result.label}: {result.requests:,} requests ({built}); load average {result.load_before:.1f} before, "
        f"{result.load_after:.1f} after",
        f"  overview, district, with a TrendCache: first call {result.district_first_ms:.0f} ms, then "
        f"{_median(result.district_ms)} of {len(result.district_ms)} (target < {TARGET_OVERVIEW * 1000:.0f} ms); "
        f"{result.open_requests:,} open; CPU time of those calls: {_median(result.district_cpu_ms)}",
        f"  overview, one community, with a TrendCache: first call {result.community_first_ms:.0f} ms, then "
        f"{_median(result.community_ms)} of {len(result.community_ms)}",
        f"  overview, district, without a cache (the whole year each time): {_median(result.district_uncached_ms)}"
        f" of {len(result.district_uncached_ms)}",
        f"  evaluation of last month, district: {_median(result.evaluation_district_ms)}; one community: "
        f"{_median(result.evaluation_community_ms)}",
        "  the desk's pages through HTTP, signed in as a district admin:",
        *(f"    {name}: first call {result.page_first_ms[name]:.0f} ms, then {_median(times)} of {len(times)}"
          f"{_verdict(name, times)}; CPU {_median(result.page_cpu_ms[name])}; {result.page_bytes[name]:,} bytes"
          for name, times in result.page_ms.items()),
    ])


def _verdict(name: str, times: list[float]) -> str:
    """The target's verdict for the pages it holds: the overview and the filtered lists."""
    if name.startswith("evaluation"):
        return ""
    met = statistics.median(times) < TARGET_OVERVIEW * 1000
    return f" (target < {TARGET_OVERVIEW * 1000:.0f} ms: {'met' if met else 'NOT met'})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--factor", type=int, default=60)
    parser.add_argument("--db", help="the district's SQLite file, reused when it holds the same build")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_REQUESTS:,} requests, for CI")
    parser.add_argument("--explain", action="store_true", help="print the overview's query plans")
    parser.add_argument("--postgres", help="a PostgreSQL server URL: measure there instead, in a scratch database")
    parser.add_argument("--requests", type=int, default=1_020_000, help="requests generated on PostgreSQL")
    args = parser.parse_args()
    if args.postgres:
        result, plans = asyncio.run(measure_postgres(args.postgres, args.requests, args.runs))
        print(describe(result))
        print("\n".join(plans))
        return
    db = Path(args.db or ("bench-desk-quick.db" if args.quick else f"bench-desk-x{args.factor}.db"))
    result = run(args.factor, db, args.runs, args.quick)
    print(describe(result))
    if args.explain:
        print("\n".join(explain(db, QUICK_NOW if args.quick else NOW)))
    print("RESULT " + json.dumps(asdict(result)))


if __name__ == "__main__":
    main()
