"""Places and where a location belongs: datums, boundaries, the nearest fallback, the import and posters."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from openpyxl import Workbook
from pypdf import PdfReader
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.cli import main
from bot.core import places
from bot.core.binding import distance_m
from bot.core.geo import contains_point, gcj02_to_wgs84, wgs84_to_gcj02
from bot.core.messages import Sender
from bot.core.people import find_or_register_person
from bot.core.units import Unit, ids_within, parent
from bot.service import prepare_database
from storage.database import Database
from storage.models import Grid, Level, Person, Place
from tests.harness import CoreChat
from tests.org_fixture import NOW, make_small_org
from tests.place_fixture import BOUNDARY, IN_THE_BOUNDARY, NEAR_RENMIN, make_places_org, square

# --- datums ------------------------------------------------------------------------------------------------


def test_gcj02_is_hundreds_of_metres_off_in_nanyang_and_converts_back_to_within_a_metre() -> None:
    wgs = (32.9987, 112.5283)
    gcj = wgs84_to_gcj02(*wgs)
    assert 200 < distance_m(*wgs, *gcj) < 700
    back = gcj02_to_wgs84(*gcj)
    assert distance_m(*wgs, *back) < 0.5


def test_outside_china_the_datums_coincide() -> None:
    assert gcj02_to_wgs84(48.8584, 2.2945) == (48.8584, 2.2945)


def test_a_point_in_a_hole_is_outside_the_polygon() -> None:
    outer = square(0.0, 0.0, 10.0)["coordinates"][0]
    hole = square(4.0, 4.0, 2.0)["coordinates"][0]
    donut = {"type": "Polygon", "coordinates": [outer, hole]}
    assert contains_point(donut, 1.0, 1.0)
    assert not contains_point(donut, 5.0, 5.0)
    assert not contains_point(donut, 11.0, 1.0)
    assert contains_point({"type": "MultiPolygon", "coordinates": [[hole]]}, 5.0, 5.0)


# --- where a location belongs ---------------------------------------------------------------------------------


async def test_a_boundary_wins_over_the_nearest_building_of_another_grid(database: Database) -> None:
    setup = await database.run(make_places_org)

    def locate(session: Session) -> places.Spot | None:
        return places.locate(session, *IN_THE_BOUNDARY)

    spot = await database.run(locate)
    assert spot is not None and spot.grid_id == setup.org.grid2
    # Nothing of 人民一网格 is within 300 m: the request is about the location alone.
    assert spot.building is None and spot.place is None
    assert (spot.latitude, spot.longitude) == IN_THE_BOUNDARY


async def test_the_sender_of_an_update_is_read_without_their_grids_boundary(database: Database) -> None:
    """Every update loads its sender's building and grid; the boundary is read only where it is used."""
    setup = await database.run(make_places_org)

    def add_resident(session: Session) -> None:
        session.add(Person(channel="telegram", external_id="7001", chat_id="7001", display_name="居民",
                           locale="zh_CN", state_data={}, created_at=NOW, building_id=setup.org.building2))

    await database.run(add_resident)

    def sender_grid(session: Session) -> tuple[bool, dict[str, object] | None]:
        person = find_or_register_person(session, Sender("telegram", "7001", "7001", "居民", "zh"), "zh_CN", NOW)
        assert person.building is not None and person.building.grid_id == setup.org.grid2
        grid = person.building.grid
        return "boundary" in grid.__dict__, grid.boundary

    loaded_with_sender, boundary = await database.run(sender_grid)
    assert not loaded_with_sender
    assert boundary == BOUNDARY


async def test_without_a_boundary_the_nearest_building_or_place_decides(database: Database) -> None:
    setup = await database.run(make_places_org)

    def locate(session: Session) -> tuple[places.Spot | None, places.Spot | None, places.Spot | None]:
        return (places.locate(session, *NEAR_RENMIN), places.locate(session, 32.9996, 112.5291),
                places.locate(session, 10.0, 10.0))

    near_renmin, at_market, nowhere = await database.run(locate)
    assert near_renmin is not None and near_renmin.grid_id == setup.org.grid2
    assert near_renmin.building is not None and near_renmin.building.id == setup.org.building2
    assert at_market is not None and at_market.grid_id == setup.org.grid
    assert at_market.place is not None and at_market.place.id == setup.market
    assert nowhere is None


async def test_places_are_found_by_name_and_lie_in_their_grids_area(database: Database) -> None:
    setup = await database.run(make_places_org)

    def check(session: Session) -> None:
        assert [place.id for place in places.search_places(session, "农贸")] == [setup.market]
        assert places.search_places(session, "%") == []
        assert places.search_places(session, "   ") == []
        assert parent(session, Unit(Level.PLACE, setup.market)) == Unit(Level.GRID, setup.org.grid)
        within_street = ids_within(Level.PLACE, Unit(Level.STREET, setup.org.street))
        within_other = ids_within(Level.PLACE, Unit(Level.STREET, setup.org.street2))
        assert within_street is not None and within_other is not None
        assert list(session.scalars(within_street)) == [setup.market]
        assert list(session.scalars(within_other)) == []
        assert ids_within(Level.BUILDING, Unit(Level.PLACE, setup.market)) is None

    await database.run(check)


# --- the import ----------------------------------------------------------------------------------------------


async def prepared(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path}/places.db"
    database = Database(url)
    await prepare_database(database)
    await database.run(make_small_org)
    await database.dispose()
    return url


async def read(url: str, work: object) -> object:
    database = Database(url)
    try:
        return await database.run(work)  # type: ignore[arg-type]
    finally:
        await database.dispose()


def place_rows(session: Session) -> list[tuple[str, str, str, float | None, int]]:
    rows = session.scalars(select(Place).order_by(Place.code))
    return [(place.code, place.name, place.kind, place.latitude, place.grid_id) for place in rows]


async def test_a_place_file_is_imported_and_an_unknown_grid_imports_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = await prepared(tmp_path)
    good = tmp_path / "places.csv"
    good.write_text("place_code,place_name,kind,grid_code,latitude,longitude,address\n"
                    "MKT1,建设路农贸市场,market,DG-JS-01,32.9995,112.5290,建设路30号\n"
                    "ALLEY1,人民巷,alley,XH-RM-01,,,\n", encoding="utf-8")
    assert await asyncio.to_thread(main, ["org", "import", str(good), "--database-url", url]) == 0
    assert "2 place row(s): 2 created" in capsys.readouterr().out
    bad = tmp_path / "bad.csv"
    bad.write_text("place_code,place_name,kind,grid_code\nMKT2,新市场,market,NOPE\nMKT1,改名,market,DG-JS-01\n",
                   encoding="utf-8")
    assert await asyncio.to_thread(main, ["org", "import", str(bad), "--database-url", url]) == 1
    assert "grid_code NOPE names no grid" in capsys.readouterr().err
    rows = await read(url, place_rows)
    assert [(code, name, kind, latitude) for code, name, kind, latitude, _grid in rows] == [  # type: ignore[attr-defined]
        ("ALLEY1", "人民巷", "alley", None), ("MKT1", "建设路农贸市场", "market", 32.9995)]


async def test_a_workbooks_second_sheet_lists_places(tmp_path: Path) -> None:
    url = await prepared(tmp_path)
    workbook = Workbook()
    org = workbook.active
    assert org is not None
    org.append(["street_code", "street_name", "community_code", "community_name", "grid_code", "grid_name",
                "building_code", "building_name", "address"])
    org.append(["NEW", "新街道", "NEW-C", "新社区", "NEW-G", "新网格", "NEW-B1", "新1号楼", "新路1号"])
    sheet = workbook.create_sheet("places")
    sheet.append(["place_code", "place_name", "kind", "grid_code", "latitude", "longitude", "address"])
    sheet.append(["NEW-SQ", "新广场", "square", "NEW-G", 33.0, 112.5, "新路2号"])
    path = tmp_path / "org.xlsx"
    workbook.save(path)
    assert await asyncio.to_thread(main, ["org", "import", str(path), "--database-url", url]) == 0

    def grid_of_square(session: Session) -> str:
        place = session.scalars(select(Place).where(Place.code == "NEW-SQ")).one()
        return place.grid.code

    assert await read(url, grid_of_square) == "NEW-G"


async def test_boundaries_come_from_geojson_and_a_wrong_one_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = await prepared(tmp_path)

    def collection(code: str, geometry: dict[str, object]) -> Path:
        path = tmp_path / f"{code}.geojson"
        path.write_text(json.dumps({"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"grid_code": code}, "geometry": geometry}]}), encoding="utf-8")
        return path

    good = collection("XH-RM-01", BOUNDARY)
    assert await asyncio.to_thread(main, ["org", "import", str(good), "--database-url", url]) == 0
    swapped = {"type": "Polygon", "coordinates": [[[lat, lon] for lon, lat in BOUNDARY["coordinates"][0]]]}
    too_big = square(32.9, 112.4, 0.2)
    for path, message in ((collection("DG-JS-01", swapped), "[longitude, latitude]"),
                          (collection("DG-JS-02", too_big), "spans more than"),
                          (collection("NOPE", BOUNDARY), "names no grid")):
        assert await asyncio.to_thread(main, ["org", "import", str(path), "--database-url", url]) == 1
        assert message in capsys.readouterr().err

    def boxes(session: Session) -> dict[str, tuple[float | None, float | None]]:
        return {grid.code: (grid.min_latitude, grid.max_longitude and round(grid.max_longitude, 6))
                for grid in session.scalars(select(Grid))}

    assert await read(url, boxes) == {"DG-JS-01": (None, None), "DG-JS-02": (None, None),
                                      "XH-RM-01": (32.996, 112.531)}


async def test_posters_of_a_grid_include_its_places_with_their_own_link(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/posters.db"
    database = Database(url)
    await prepare_database(database)
    await database.run(make_places_org)
    await database.dispose()
    out = tmp_path / "posters.pdf"
    argv = ["posters", "--grid", "DG-JS-01", "--out", str(out), "--username", "gridbot_test", "--database-url", url]
    assert await asyncio.to_thread(main, argv) == 0
    pages = PdfReader(out).pages
    assert len(pages) == 2
    market = pages[1].extract_text()
    assert "start=p_DG-JS-01-MKT" in market and "扫码反映此处问题" in market
    argv = ["posters", "--place", "DG-JS-01-MKT", "--out", str(out), "--username", "gridbot_test",
            "--database-url", url]
    assert await asyncio.to_thread(main, argv) == 0
    assert len(PdfReader(out).pages) == 1


# --- careless and hostile input in the "where" step -----------------------------------------------------------


async def test_the_where_step_answers_forged_stale_and_unknown_input(database: Database, chat: CoreChat) -> None:
    setup = await database.run(make_places_org)
    rider = chat.person(3001, "Rider", "en")
    await chat.text(rider, "/new")
    assert "Where is the problem?" in rider.last.text
    await chat.text(rider, "农" * 500)  # overlong: searched by its first characters, answered shortly
    assert "No place is called" in rider.last.text and len(rider.last.text) < 200
    await chat.press(rider, "fl:place:999")  # a forged button: no such place
    assert "no longer available" in rider.last.text
    await chat.press(rider, "fl:mine")  # a forged "my building" from someone without one
    assert "which building you live in" in rider.last.text
    await chat.location(rider, 10.0, 10.0)  # far from every grid
    assert "none of our grids" in rider.last.text
    await chat.text(rider, "农贸")
    await chat.press(rider, rider.last.button("建设路农贸市场"))
    assert "建设路农贸市场" in rider.last.text and "What is it about?" in rider.last.text
    await chat.press(rider, f"fl:place:{setup.market}")  # the place list again, once the step is over
    assert rider.answers[-1].alert and "This step is over" in (rider.answers[-1].text or "")
    await chat.text(rider, "/start p_NO-SUCH-PLACE")
    assert "names no place we know" in rider.last.text
