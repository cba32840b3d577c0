"""Location lookup cost: ``nearest_buildings`` with 100,000 buildings within a few kilometres of the sender.

    python -m bench.nearest [--buildings 100000] [--lookups 50] [--database-url URL]

Each lookup is one database hop, as in a location message; reports the median and worst time per lookup.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path

from sqlalchemy import insert
from sqlalchemy.orm import Session

from bot.core.binding import nearest_buildings
from bot.service import prepare_database
from storage.database import Database
from storage.models import Building, Community, Grid, Street

CENTRE = (32.9987, 112.5283)  # Wancheng District, Nanyang
SPREAD = 0.05  # every building lies within the old ±0.05° search box


def seed(session: Session, count: int) -> None:
    street = Street(code="S", name="街道")
    community = Community(code="C", name="社区", street=street)
    grid = Grid(code="G", name="网格", community=community)
    session.add(grid)
    session.flush()
    rng = random.Random(14)
    rows = [
        {
            "code": f"B{number}", "name": f"{number}号楼", "address": "", "grid_id": grid.id, "active": True,
            "latitude": CENTRE[0] + rng.uniform(-SPREAD, SPREAD),
            "longitude": CENTRE[1] + rng.uniform(-SPREAD, SPREAD),
        }
        for number in range(count)
    ]
    for start in range(0, count, 10_000):
        session.execute(insert(Building), rows[start : start + 10_000])


async def measure(database_url: str, buildings: int, lookups: int) -> list[float]:
    database = Database(database_url)
    try:
        await prepare_database(database)
        await database.run(partial(seed, count=buildings))
        rng = random.Random(15)
        seconds = []
        for _lookup in range(lookups):
            point = (CENTRE[0] + rng.uniform(-0.03, 0.03), CENTRE[1] + rng.uniform(-0.03, 0.03))
            started = time.perf_counter()
            found = await database.run(
                lambda session, p=point: nearest_buildings(session, p[0], p[1], limit=5)  # type: ignore[misc]
            )
            seconds.append(time.perf_counter() - started)
            assert len(found) == 5
        return seconds
    finally:
        await database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--buildings", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=50)
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary directory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(folder) / 'nearest.db'}"
        seconds = asyncio.run(measure(url, args.buildings, args.lookups))
    print(
        f"nearest_buildings, {args.buildings} buildings in range, {args.lookups} lookups: "
        f"median {statistics.median(seconds) * 1000:.1f} ms, max {max(seconds) * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
