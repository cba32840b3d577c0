"""Finding a building by typing: ``find_buildings`` over 180,000 buildings (Wancheng's ~3,000 at x60).

    python -m bench.building_search [--buildings 180000] [--lookups 40] [--database-url URL]

Seeding computes each building's search key (``storage.search_keys``, pypinyin) as an import would, and reports
that time per building; each lookup is one database hop, as one typed message is. Reports the median and worst
time per lookup for queries in Chinese, full pinyin, initials and codes.
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

from bot.core.binding import find_buildings
from bot.service import prepare_database
from storage.database import Database
from storage.models import Building, Community, Grid, Street
from storage.search_keys import building_search_key

PLACES = ("外贸", "建设", "人民", "光明", "新华", "东关", "幸福", "和平", "工业", "文化", "车站", "梅溪")
KINDS = ("家属院", "小区", "花园", "大厦", "宿舍", "公寓")
ROADS = ("建设路", "人民路", "工业路", "中州路", "独山大道", "梅溪路")
QUERIES = ("外贸", "waimao", "wmjsy", "家属院", "guangming", "xhxq", "建设路", "B12345", "renminlu", "hpgy")


def building_rows(count: int, grid_id: int) -> tuple[list[dict[str, object]], float]:
    """The buildings and the seconds spent computing their search keys."""
    rng = random.Random(23)
    rows: list[dict[str, object]] = []
    keys_seconds = 0.0
    for number in range(count):
        name = f"{rng.choice(PLACES)}{rng.choice(KINDS)}{rng.randint(1, 40)}号楼"
        address = f"{rng.choice(ROADS)}{rng.randint(1, 400)}号"
        code = f"B{number}"
        started = time.perf_counter()
        key = building_search_key(code, name, address)
        keys_seconds += time.perf_counter() - started
        rows.append({"code": code, "name": name, "address": address, "grid_id": grid_id, "active": True,
                     "search_key": key})
    return rows, keys_seconds


def seed(session: Session, count: int) -> float:
    street = Street(code="S", name="街道")
    community = Community(code="C", name="社区", street=street)
    grid = Grid(code="G", name="网格", community=community)
    session.add(grid)
    session.flush()
    rows, keys_seconds = building_rows(count, grid.id)
    for start in range(0, count, 10_000):
        session.execute(insert(Building), rows[start : start + 10_000])
    return keys_seconds


async def measure(database_url: str, buildings: int, lookups: int) -> tuple[float, list[float], int]:
    database = Database(database_url)
    try:
        await prepare_database(database)
        keys_seconds = await database.run(partial(seed, count=buildings))
        seconds = []
        empty = 0
        for lookup in range(lookups):
            typed = QUERIES[lookup % len(QUERIES)]
            started = time.perf_counter()
            found = await database.run(lambda session, q=typed: find_buildings(session, q, limit=6))  # type: ignore[misc]
            seconds.append(time.perf_counter() - started)
            empty += not found
        return keys_seconds, seconds, empty
    finally:
        await database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--buildings", type=int, default=180_000)
    parser.add_argument("--lookups", type=int, default=40)
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary directory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(folder) / 'search.db'}"
        keys_seconds, seconds, empty = asyncio.run(measure(url, args.buildings, args.lookups))
    print(
        f"search keys: {keys_seconds / args.buildings * 1e6:.0f} µs a building "
        f"({keys_seconds:.1f} s for {args.buildings:,}); find_buildings, {args.lookups} lookups "
        f"({', '.join(QUERIES)}): median {statistics.median(seconds) * 1000:.1f} ms, "
        f"max {max(seconds) * 1000:.1f} ms, {empty} found nothing"
    )


if __name__ == "__main__":
    main()
