"""Routing a location at x60: ``places.locate`` among 180,000 buildings and places in 3,025 grids, half of the
grids with a boundary polygon.

    python -m bench.locate [--side 55] [--lookups 200] [--database-url URL]

The grids tile a square city, ``side`` by ``side`` grids of 0.004° (about 440 m); each holds 57 buildings and 3
places. Every lookup is one database hop, as for a location message. Reports the median and worst time per
lookup, the most rows any lookup handed to Python, and (on SQLite) every full table scan in the query plans of
its SELECTs: routing must stay an index lookup, never a scan of the buildings, places or grids.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import event, insert
from sqlalchemy.orm import Session

from bot.core.geo import bounds
from bot.core.places import locate
from bot.service import prepare_database
from storage.database import Database
from storage.models import Building, Community, Grid, Place, Street

SOUTH_WEST = (32.90, 112.42)  # Wancheng District, Nanyang
GRID_SIDE = 0.004
BUILDINGS_PER_GRID = 57
PLACES_PER_GRID = 3
TARGET_MEDIAN = 0.010
TARGET_ROWS = 50


def _square(south: float, west: float) -> dict[str, Any]:
    ring = [[west, south], [west + GRID_SIDE, south], [west + GRID_SIDE, south + GRID_SIDE],
            [west, south + GRID_SIDE], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}


def _units(rng: random.Random, grid_id: int, south: float, west: float, number: int, count: int,
           prefix: str) -> list[dict[str, Any]]:
    return [
        {"code": f"{prefix}{number}-{index}", "name": f"{prefix}{number}-{index}", "address": "", "active": True,
         "grid_id": grid_id, "latitude": south + rng.uniform(0, GRID_SIDE),
         "longitude": west + rng.uniform(0, GRID_SIDE)}
        for index in range(count)
    ]


def seed(session: Session, side: int) -> int:
    """The city; returns how many buildings and places it has."""
    street = Street(code="S", name="街道")
    community = Community(code="C", name="社区", street=street)
    session.add(community)
    session.flush()
    rng = random.Random(18)
    grid_rows = []
    for number in range(side * side):
        south = SOUTH_WEST[0] + (number // side) * GRID_SIDE
        west = SOUTH_WEST[1] + (number % side) * GRID_SIDE
        row: dict[str, Any] = {"code": f"G{number}", "name": f"网格{number}", "community_id": community.id}
        if number % 2 == 0:
            boundary = _square(south, west)
            row["boundary"] = boundary
            row["min_latitude"], row["max_latitude"], row["min_longitude"], row["max_longitude"] = bounds(boundary)
        grid_rows.append(row)
    session.execute(insert(Grid), grid_rows)
    grid_ids = [grid.id for grid in session.query(Grid.id).order_by(Grid.id)]
    buildings, places = [], []
    for number, grid_id in enumerate(grid_ids):
        south = SOUTH_WEST[0] + (number // side) * GRID_SIDE
        west = SOUTH_WEST[1] + (number % side) * GRID_SIDE
        buildings += _units(rng, grid_id, south, west, number, BUILDINGS_PER_GRID, "B")
        places += [row | {"kind": "market"} for row in _units(rng, grid_id, south, west, number, PLACES_PER_GRID, "P")]
    for model, rows in ((Building, buildings), (Place, places)):
        for start in range(0, len(rows), 10_000):
            session.execute(insert(model), rows[start : start + 10_000])
    return len(buildings) + len(places)


@dataclass
class Measured:
    seconds: list[float] = field(default_factory=list)
    max_rows: int = 0
    full_scans: set[str] = field(default_factory=set)
    routed: int = 0


def _watch(database: Database, measured: Measured) -> None:
    """Count the rows each SELECT hands over and, on SQLite, note full scans in its plan."""
    engine = database.sync_engine
    assert engine is not None
    sqlite = engine.dialect.name == "sqlite"

    @event.listens_for(engine, "before_cursor_execute")
    def explain(connection: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                executemany: bool) -> None:
        if not sqlite or executemany or not statement.lstrip().upper().startswith("SELECT"):
            return
        for row in cursor.connection.execute(f"EXPLAIN QUERY PLAN {statement}", parameters).fetchall():
            detail = str(row[-1])
            if detail.startswith("SCAN ") and "USING" not in detail and "CONSTANT ROW" not in detail:
                measured.full_scans.add(f"{detail} <- {' '.join(statement.split())[:120]}")


async def measure(database_url: str, side: int, lookups: int) -> tuple[int, Measured]:
    database = Database(database_url)
    measured = Measured()
    try:
        await prepare_database(database)
        units = await database.run(partial(seed, side=side))
        await database.run(lambda session: session.connection().exec_driver_sql("ANALYZE"))
        rng = random.Random(19)
        extent = side * GRID_SIDE
        timings = []
        for _lookup in range(lookups):
            point = (SOUTH_WEST[0] + rng.uniform(0, extent), SOUTH_WEST[1] + rng.uniform(0, extent))
            started = time.perf_counter()
            spot = await database.run(lambda session, p=point: locate(session, *p))  # type: ignore[misc]
            timings.append(time.perf_counter() - started)
            measured.routed += spot is not None
        measured.seconds = timings
        # A second pass, not timed: the query plans, and how many rows each query handed to Python.
        _watch(database, measured)
        for _lookup in range(20):
            point = (SOUTH_WEST[0] + rng.uniform(0, extent), SOUTH_WEST[1] + rng.uniform(0, extent))
            measured.max_rows = max(measured.max_rows, await database.run(partial(_rows_handed_over, point=point)))
        return units, measured
    finally:
        await database.dispose()


def _rows_handed_over(session: Session, point: tuple[float, float]) -> int:
    """The rows the lookup's queries returned to Python, counted by wrapping the session's execute."""
    handed = 0
    execute = session.execute

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal handed
        frozen = execute(*args, **kwargs).freeze()
        handed += len(frozen().all())
        return frozen()

    session.execute = counting  # type: ignore[method-assign]
    session.scalars = lambda *args, **kwargs: counting(*args, **kwargs).scalars()  # type: ignore[method-assign]
    try:
        locate(session, *point)
    finally:
        del session.execute, session.scalars
    return handed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--side", type=int, default=55, help="grids along each side (55: 3,025 grids, x60)")
    parser.add_argument("--lookups", type=int, default=200)
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary directory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(folder) / 'locate.db'}"
        units, measured = asyncio.run(measure(url, args.side, args.lookups))
    seconds = measured.seconds
    print(f"locate, {units:,} buildings and places in {args.side * args.side:,} grids, {len(seconds)} lookups:"
          f" median {statistics.median(seconds) * 1000:.2f} ms, worst {max(seconds) * 1000:.2f} ms"
          f" (target median < {TARGET_MEDIAN * 1000:.0f} ms); {measured.routed} routed;"
          f" at most {measured.max_rows} rows handed to Python (target <= {TARGET_ROWS});"
          f" full table scans: {sorted(measured.full_scans) or 'none'}")


if __name__ == "__main__":
    main()
