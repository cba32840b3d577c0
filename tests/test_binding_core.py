from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from bot.core import binding
from bot.core.messages import Photo
from storage.database import Database
from storage.models import Building, Community, Grid, Person, Street
from tests.harness import CoreChat
from tests.org_fixture import make_small_org


async def test_deep_link_binds_resident_to_building(database: Database, chat: CoreChat) -> None:
    org = await database.run(make_small_org)
    li = chat.person(1001, "Li", "zh-hans")
    await chat.text(li, "/start b_DG-JS-01-B1")
    assert "建设路12号院1号楼" in li.last.text
    person = await database.run(lambda s: s.query(Person).filter_by(external_id="1001").one())
    assert person.building_id == org.building
    assert person.locale == "zh_CN"


async def test_unknown_building_code_gets_clear_message(database: Database, chat: CoreChat) -> None:
    await database.run(make_small_org)
    ann = chat.person(1002, "Ann", "en")
    await chat.text(ann, "/start b_NOPE")
    assert any("NOPE" in text and "do not know" in text for text in ann.texts())


async def test_guided_binding_by_street_community_building(database: Database, chat: CoreChat) -> None:
    org = await database.run(make_small_org)
    ann = chat.person(1003, "Ann", "en")
    await chat.text(ann, "/start")
    choice = ann.find("Choose your street")
    await chat.press(ann, choice.button("新华街道"), choice)
    await chat.press(ann, choice.button("人民社区"), choice)
    await chat.press(ann, choice.button("人民路8号院2号楼"), choice)
    assert "人民路8号院2号楼" in ann.last.text
    person = await database.run(lambda s: s.query(Person).filter_by(external_id="1003").one())
    assert person.building_id == org.building2


async def test_location_offers_nearest_building(database: Database, chat: CoreChat) -> None:
    org = await database.run(make_small_org)
    ann = chat.person(1004, "Ann", "en")
    await chat.text(ann, "/building")
    await chat.location(ann, 32.9986, 112.5284)
    offer = ann.find("Which of these")
    assert offer.buttons()[0][0].startswith("建设路12号院1号楼")
    await chat.press(ann, offer.buttons()[0][1], offer)
    person = await database.run(lambda s: s.query(Person).filter_by(external_id="1004").one())
    assert person.building_id == org.building


async def test_photo_during_binding_is_answered_not_crashed(database: Database, chat: CoreChat) -> None:
    await database.run(make_small_org)
    ann = chat.person(1005, "Ann", "en")
    await chat.text(ann, "/building")
    await chat.send(ann, Photo("file-1"))
    assert "choose your building" in ann.last.text.lower()


# --- the location search ---------------------------------------------------------------------------------

CENTRE = (32.9987, 112.5283)


@contextlib.contextmanager
def listening(target: Any, name: str, listener: Callable[..., None]) -> Iterator[None]:
    event.listen(target, name, listener)
    try:
        yield
    finally:
        event.remove(target, name, listener)


def scatter(session: Session, count: int, spread: float, seed: int) -> list[tuple[int, float, float]]:
    """``count`` active buildings (and a few inactive ones) scattered ±``spread``° around the centre."""
    street = Street(code="S-S", name="街道")
    grid = Grid(code="G-SCATTER", name="网格", community=Community(code="C-S", name="社区", street=street))
    session.add(grid)
    session.flush()
    rng = random.Random(seed)
    placed = []
    for number in range(count):
        latitude = CENTRE[0] + rng.uniform(-spread, spread)
        longitude = CENTRE[1] + rng.uniform(-spread, spread)
        active = number % 10 != 0
        building = Building(code=f"SC{number}", name=f"{number}号楼", latitude=latitude, longitude=longitude,
                            grid_id=grid.id, active=active)
        session.add(building)
        if active:
            placed.append((number, latitude, longitude))
    session.flush()
    return placed


@pytest.mark.parametrize(("count", "spread"), [(3000, 0.05), (40, 0.04), (12, 0.004)], ids=["city", "village", "block"])
async def test_nearest_buildings_are_the_truly_nearest_and_few_rows_are_read(
    database: Database, count: int, spread: float
) -> None:
    placed = await database.run(partial(scatter, count=count, spread=spread, seed=count))
    rng = random.Random(14)
    for _point in range(12):
        latitude, longitude = CENTRE[0] + rng.uniform(-0.03, 0.03), CENTRE[1] + rng.uniform(-0.03, 0.03)

        def lookup(session: Session, lat: float = latitude, lon: float = longitude) -> tuple[list[str], int]:
            loaded: list[Building] = []
            with listening(Building, "load", lambda building, _context: loaded.append(building)):
                found = binding.nearest_buildings(session, lat, lon, limit=5)
            return [building.code for building, _distance in found], len(loaded)

        codes, loaded = await database.run(lookup)
        within = [
            (binding.distance_m(latitude, longitude, lat, lon), f"SC{number}")
            for number, lat, lon in placed
            if abs(lat - latitude) <= 0.05
        ]
        assert codes == [code for _distance, code in sorted(within)[:5]]
        # Read through the index with a limit: a few rows per search box, not every building in range.
        assert loaded <= 3 * 5 + 3


async def test_a_location_far_from_every_building_finds_none(database: Database) -> None:
    await database.run(partial(scatter, count=20, spread=0.01, seed=1))
    found = await database.run(lambda s: binding.nearest_buildings(s, CENTRE[0] + 0.3, CENTRE[1], limit=5))
    assert found == []
