"""Units of the organisation: how they nest, what lies within one, and how they are named."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.units import (
    DISTRICT,
    Unit,
    ancestor,
    area_name,
    codes_and_names,
    contains,
    holder_name,
    ids_within,
    own_name,
    parent,
    unit_by_code,
    unit_of_role,
)
from bot.i18n import translator
from storage.database import Database
from storage.models import Level, Role, StaffRole
from tests.org_fixture import make_small_org, staff


async def test_a_building_walks_up_to_the_district(database: Database) -> None:
    def walk(session: Session) -> tuple[list[Unit], list[Unit]]:
        org = make_small_org(session)
        building = Unit(Level.BUILDING, org.building)
        chain = [building]
        while (above := parent(session, chain[-1])) is not None:
            chain.append(above)
        expected = [building, Unit(Level.GRID, org.grid), Unit(Level.COMMUNITY, org.community),
                    Unit(Level.STREET, org.street), DISTRICT]
        return chain, expected

    chain, expected = await database.run(walk)
    assert chain == expected


async def test_ancestor_and_a_missing_unit(database: Database) -> None:
    def look(session: Session) -> tuple[Unit | None, Unit | None, Unit | None, Unit | None]:
        org = make_small_org(session)
        building = Unit(Level.BUILDING, org.building2)
        return (
            ancestor(session, building, Level.STREET),
            ancestor(session, building, Level.BUILDING),
            parent(session, Unit(Level.GRID, 999)),
            Unit(Level.STREET, org.street2),
        )

    street, itself, missing, west = await database.run(look)
    assert street == west
    assert itself is not None and itself.level is Level.BUILDING
    assert missing is None


async def test_within_a_unit(database: Database) -> None:
    def check(session: Session) -> dict[str, object]:
        org = make_small_org(session)
        east, jianshe = Unit(Level.STREET, org.street), Unit(Level.COMMUNITY, org.community)
        buildings_of_east = ids_within(Level.BUILDING, east)
        assert buildings_of_east is not None
        return {
            "east buildings": sorted(session.scalars(buildings_of_east)),
            "expected": sorted([org.building, org.building_in_empty_grid]),
            "street in community": ids_within(Level.STREET, jianshe),
            "grid in east": contains(session, east, Unit(Level.GRID, org.grid)),
            "grid of the west in east": contains(session, east, Unit(Level.GRID, org.grid2)),
            "district in east": contains(session, east, DISTRICT),
            "east in district": contains(session, DISTRICT, east),
            "missing grid": contains(session, DISTRICT, Unit(Level.GRID, 999)),
        }

    found = await database.run(check)
    assert found["east buildings"] == found["expected"]
    assert found["street in community"] is None
    assert (found["grid in east"], found["grid of the west in east"]) == (True, False)
    assert (found["district in east"], found["east in district"], found["missing grid"]) == (False, True, False)


async def test_names_codes_and_roles(database: Database) -> None:
    def names(session: Session) -> dict[str, object]:
        org = make_small_org(session)
        grid = Unit(Level.GRID, org.grid)
        district_staff = staff(session, 1, "区中心", Role.DISTRICT, 0)
        session.flush()
        role = session.scalars(select(StaffRole).where(StaffRole.person_id == district_staff.id)).one()
        zh, en = translator("zh_CN"), translator("en")
        return {
            "own": (own_name(session, grid), own_name(session, DISTRICT), own_name(session, Unit(Level.GRID, 999))),
            "area": (area_name(session, en, DISTRICT), area_name(session, zh, grid)),
            "holder": (holder_name(session, en, DISTRICT), holder_name(session, en, grid)),
            "by code": unit_by_code(session, Level.COMMUNITY, "XH-RM") == Unit(Level.COMMUNITY, org.community2),
            "no code": unit_by_code(session, Level.GRID, "XH-RM"),
            "labels": codes_and_names(session, [grid, DISTRICT, Unit(Level.STREET, org.street2)]),
            "expected labels": {grid: ("DG-JS-01", "建设一网格"), Unit(Level.STREET, org.street2): ("XH", "新华街道")},
            "role": unit_of_role(role),
        }

    found = await database.run(names)
    assert found["own"] == ("建设一网格", "", "?")
    assert found["area"] == ("the whole district", "建设一网格")
    assert found["holder"] == ("the district center", "建设一网格")
    assert (found["by code"], found["no code"]) == (True, None)
    assert found["labels"] == found["expected labels"]
    assert found["role"] == DISTRICT
