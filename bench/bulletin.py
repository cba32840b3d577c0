"""Benchmark of the monthly bulletin on a district the size of Wancheng's central city.

``generate_requests`` fills a database with an organisation shaped like the one in the source text (8 streets,
53 communities, 556 grids, about 3,000 buildings) and ``n`` requests spread evenly over the months before
``LAST_MONTH``, with their events and ratings; other benchmarks reuse it. Run:

    python -m bench.bulletin [--requests 1000000] [--db bench-bulletin.db] [--seed 1]

It prints how long generation took and how long ``compute_bulletin`` takes for one month of the district,
one street and one community.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Table, create_engine, func, insert, select
from sqlalchemy.orm import Session

from bot.core.bulletin import Bulletin, Month, compute_bulletin
from bot.core.categories import seed_categories
from bot.core.units import DISTRICT, Unit
from storage.database import Database
from storage.models import (
    Base,
    Building,
    Category,
    Community,
    EventKind,
    Grid,
    Level,
    Person,
    Rating,
    Request,
    RequestEvent,
    RequestStatus,
    Street,
)

TIMEZONE = "Asia/Shanghai"
STREET_NAMES = ("东关", "新华", "汉冶", "仲景", "枣林", "赤虹", "白河", "金华")
COMMUNITIES = 53
GRIDS = 556
BUILDINGS = 3_000
RESIDENTS = 20_000
MONTHS = 24
LAST_MONTH = Month(2026, 10)
CHUNK = 50_000
CREATED = datetime(2024, 1, 1, tzinfo=UTC)
# Share of requests in each final status; the rest are closed.
STATUS_SHARES = ((RequestStatus.NEW, 0.04), (RequestStatus.ACCEPTED, 0.08), (RequestStatus.WITHDRAWN, 0.03),
                 (RequestStatus.RESOLVED, 0.10))
ESCALATED_SHARE = 0.15
REOPENED_SHARE = 0.04
RATED_SHARE = 0.5


@dataclass(frozen=True)
class GeneratedDistrict:
    """What ``generate_requests`` made, for a benchmark to choose its areas and months from."""

    requests: int
    events: int
    ratings: int
    first_month: Month
    last_month: Month
    street_id: int
    community_id: int


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _insert_chunks(session: Session, model: type[Base], rows: Iterator[dict[str, Any]]) -> int:
    """Core executemany in chunks: no ORM objects, so a million rows take seconds, not minutes."""
    count, chunk = 0, []
    for row in rows:
        chunk.append(row)
        if len(chunk) == CHUNK:
            session.execute(insert(_table(model)), chunk)
            count, chunk = count + len(chunk), []
    if chunk:
        session.execute(insert(_table(model)), chunk)
        count += len(chunk)
    return count


def _spread(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` nearly equal whole numbers."""
    return [total // parts + (1 if index < total % parts else 0) for index in range(parts)]


def build_organisation(session: Session) -> list[int]:
    """Streets, communities, grids and buildings shaped like Wancheng's central city; returns building ids."""
    streets = [Street(code=f"S{index + 1:02d}", name=f"{name}街道") for index, name in enumerate(STREET_NAMES)]
    session.add_all(streets)
    session.flush()
    communities = []
    for street, count in zip(streets, _spread(COMMUNITIES, len(streets)), strict=True):
        for number in range(count):
            code = f"{street.code}-C{number + 1:02d}"
            communities.append(Community(code=code, name=f"{street.name}第{number + 1}社区", street_id=street.id))
    session.add_all(communities)
    session.flush()
    grids = []
    for community, count in zip(communities, _spread(GRIDS, len(communities)), strict=True):
        for number in range(count):
            code = f"{community.code}-G{number + 1:02d}"
            grids.append(Grid(code=code, name=f"{community.name}第{number + 1}网格", community_id=community.id))
    session.add_all(grids)
    session.flush()
    buildings = [
        {"code": f"{grid.code}-B{number + 1}", "name": f"{number + 1}号楼", "address": "", "grid_id": grid.id,
         "active": True}
        for grid, count in zip(grids, _spread(BUILDINGS, len(grids)), strict=True)
        for number in range(count)
    ]
    _insert_chunks(session, Building, iter(buildings))
    return list(session.scalars(select(Building.id)))


def _residents(session: Session, building_ids: list[int], rng: random.Random) -> list[int]:
    first = (session.scalar(select(func.max(Person.id))) or 0) + 1
    rows: Iterator[dict[str, Any]] = (
        {"id": first + index, "channel": "bench", "external_id": f"r{first + index}", "chat_id": f"r{first + index}",
         "display_name": "", "state_data": {}, "building_id": rng.choice(building_ids), "created_at": CREATED}
        for index in range(RESIDENTS)
    )
    _insert_chunks(session, Person, rows)
    return list(range(first, first + RESIDENTS))


@dataclass
class _Generator:
    """Draws requests with their events and ratings; ids are assigned here so events can refer to them."""

    rng: random.Random
    building_ids: list[int]
    resident_ids: list[int]
    categories: list[tuple[int, int]]  # (id, due days)
    start: datetime
    seconds: float
    next_id: int
    events: list[dict[str, Any]]
    ratings: list[dict[str, Any]]

    def status(self) -> RequestStatus:
        draw = self.rng.random()
        for status, share in STATUS_SHARES:
            if draw < share:
                return status
            draw -= share
        return RequestStatus.CLOSED

    def request(self) -> dict[str, Any]:
        rng, request_id = self.rng, self.next_id
        self.next_id += 1
        category_id, due_days = rng.choice(self.categories)
        created = self.start + timedelta(seconds=rng.random() * self.seconds)
        status = self.status()
        unaccepted = status in (RequestStatus.NEW, RequestStatus.WITHDRAWN)
        accepted = None if unaccepted else created + timedelta(hours=rng.expovariate(1 / 4))
        done = status in (RequestStatus.RESOLVED, RequestStatus.CLOSED)
        resolved = accepted + timedelta(hours=rng.lognormvariate(3.5, 1.0)) if done and accepted else None
        stars = self.side_rows(request_id, created, status)
        return {
            "id": request_id,
            "resident_id": rng.choice(self.resident_ids),
            "building_id": rng.choice(self.building_ids),
            "category_id": category_id,
            "description": "",
            "hide_identity": False,
            "status": status,
            "level": Level.GRID,
            "unit_id": 0,
            "created_at": created,
            "due_at": created + timedelta(days=due_days),
            "accepted_at": accepted,
            "resolved_at": resolved,
            "resolved_level": Level.GRID if resolved else None,
            "closed_at": resolved + timedelta(days=2) if resolved and status is RequestStatus.CLOSED else None,
            "supporters": 0,
            "rating_stars": stars,
        }

    def side_rows(self, request_id: int, created: datetime, status: RequestStatus) -> int | None:
        """The request's events and rating; its stars, which the request row holds a copy of."""
        rng = self.rng
        self.events.append({"request_id": request_id, "at": created, "kind": EventKind.FILED, "text": ""})
        if rng.random() < ESCALATED_SHARE:
            self.events.append({"request_id": request_id, "at": created, "kind": EventKind.ESCALATED, "text": ""})
        if rng.random() < REOPENED_SHARE:
            self.events.append({"request_id": request_id, "at": created, "kind": EventKind.REOPENED, "text": ""})
        if status is RequestStatus.CLOSED and rng.random() < RATED_SHARE:
            stars = rng.choices((1, 2, 3, 4, 5), weights=(1, 1, 2, 4, 6))[0]
            self.ratings.append(
                {"request_id": request_id, "outcome": "fixed" if stars > 2 else "partly", "stars": stars, "at": created}
            )
            return stars
        return None


def with_grid(row: dict[str, Any], grid_of: dict[int, int]) -> dict[str, Any]:
    """A generated request with the grid of its building, which every request names."""
    row["grid_id"] = grid_of[row["building_id"]]
    return row


def _prepare(session: Session) -> tuple[list[int], list[int], list[tuple[int, int]]]:
    """The buildings, residents and categories to draw from, creating the organisation if there is none."""
    rng = random.Random(0)
    building_ids = list(session.scalars(select(Building.id)))
    if not building_ids:
        building_ids = build_organisation(session)
    seed_categories(session)
    resident_ids = _residents(session, building_ids, rng)
    categories = [(row.id, row.due_days) for row in session.execute(select(Category.id, Category.due_days))]
    return building_ids, resident_ids, categories


def _fill(session: Session, n: int, seed: int) -> GeneratedDistrict:
    building_ids, resident_ids, categories = _prepare(session)
    first_month = LAST_MONTH.shifted(1 - MONTHS)
    start, _ = first_month.bounds(TIMEZONE)
    _, end = LAST_MONTH.bounds(TIMEZONE)
    generator = _Generator(
        random.Random(seed), building_ids, resident_ids, categories, start, (end - start).total_seconds(),
        (session.scalar(select(func.max(Request.id))) or 0) + 1, [], [],
    )
    grid_of = {building: grid for building, grid in session.execute(select(Building.id, Building.grid_id))}
    requests = _insert_chunks(session, Request, (with_grid(generator.request(), grid_of) for _ in range(n)))
    events = _insert_chunks(session, RequestEvent, iter(generator.events))
    ratings = _insert_chunks(session, Rating, iter(generator.ratings))
    community = session.execute(select(Community.id, Community.street_id).order_by(Community.id)).first()
    assert community is not None
    return GeneratedDistrict(requests, events, ratings, first_month, LAST_MONTH, community[1], community[0])


def generate_requests(session_or_path: Session | str | Path, n: int, seed: int = 1) -> GeneratedDistrict:
    """Add ``n`` requests (with events and ratings) spread over ``MONTHS`` months ending in ``LAST_MONTH``.

    Given a path, a fresh SQLite file is created there with the schema and committed; given a session, the
    rows are added to it (its database must have the schema) and committing is left to the caller. An
    organisation shaped like Wancheng's is created unless the database already has buildings.
    """
    if isinstance(session_or_path, Session):
        return _fill(session_or_path, n, seed)
    path = Path(session_or_path)
    path.unlink(missing_ok=True)
    engine = create_engine(f"sqlite:///{path}")
    try:
        Base.metadata.create_all(engine)
        with Session(engine) as session, session.begin():
            return _fill(session, n, seed)
    finally:
        engine.dispose()


async def time_bulletin(database: Database, area: Unit, month: Month, runs: int = 3) -> tuple[float, Bulletin]:
    """The best of ``runs`` timings of ``compute_bulletin`` (seconds) and the bulletin."""
    best, bulletin = float("inf"), None
    for _ in range(runs):
        started = time.perf_counter()
        bulletin = await database.run(lambda session: compute_bulletin(session, area, month, TIMEZONE))
        best = min(best, time.perf_counter() - started)
    assert bulletin is not None
    return best, bulletin


async def report_timings(path: Path, district: GeneratedDistrict) -> None:
    database = Database(f"sqlite+aiosqlite:///{path}")
    month = district.last_month.shifted(-6)
    areas = {
        "district": DISTRICT,
        "street": Unit(Level.STREET, district.street_id),
        "community": Unit(Level.COMMUNITY, district.community_id),
    }
    try:
        for label, area in areas.items():
            seconds, bulletin = await time_bulletin(database, area, month)
            print(f"compute_bulletin {label:<9} {month}: {seconds:6.3f} s ({bulletin.totals.counts.received} requests)")
    finally:
        await database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--db", default="bench-bulletin.db")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    started = time.perf_counter()
    district = generate_requests(args.db, args.requests, args.seed)
    print(
        f"generated {district.requests} requests, {district.events} events, {district.ratings} ratings "
        f"in {time.perf_counter() - started:.1f} s"
    )
    asyncio.run(report_timings(Path(args.db), district))


if __name__ == "__main__":
    main()
