"""A small organisation for tests: two streets, their communities, grids and buildings, and staff."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from storage.models import Building, Category, Community, Grid, Person, Role, StaffRole, Street

NOW = datetime(2026, 11, 1, tzinfo=UTC)


@dataclass
class SmallOrg:
    """Ids of what ``make_small_org`` created, for tests to refer to."""

    street: int
    street2: int
    community: int
    community2: int
    grid: int
    grid2: int
    empty_grid: int
    building: int
    building2: int
    building_in_empty_grid: int


def staff(session: Session, user_id: int, name: str, role: Role, unit_id: int, locale: str = "zh_CN") -> Person:
    person = Person(
        channel="telegram", external_id=str(user_id), chat_id=str(user_id), display_name=name, locale=locale,
        state_data={}, created_at=NOW,
    )
    session.add(person)
    session.flush()
    session.add(StaffRole(person_id=person.id, role=role, unit_id=unit_id))
    return person


def make_small_org(session: Session) -> SmallOrg:
    east = Street(code="DG", name="东关街道")
    west = Street(code="XH", name="新华街道")
    session.add_all([east, west])
    session.flush()
    jianshe = Community(code="DG-JS", name="建设社区", street_id=east.id)
    renmin = Community(code="XH-RM", name="人民社区", street_id=west.id)
    session.add_all([jianshe, renmin])
    session.flush()
    grid = Grid(code="DG-JS-01", name="建设一网格", community_id=jianshe.id)
    empty = Grid(code="DG-JS-02", name="建设二网格", community_id=jianshe.id)
    grid2 = Grid(code="XH-RM-01", name="人民一网格", community_id=renmin.id)
    session.add_all([grid, empty, grid2])
    session.flush()
    b1 = Building(code="DG-JS-01-B1", name="建设路12号院1号楼", address="建设路12号", latitude=32.9987,
                  longitude=112.5283, grid_id=grid.id)
    b2 = Building(code="XH-RM-01-B1", name="人民路8号院2号楼", address="人民路8号", latitude=32.9901,
                  longitude=112.5402, grid_id=grid2.id)
    b3 = Building(code="DG-JS-02-B1", name="建设路20号院3号楼", address="建设路20号", grid_id=empty.id)
    session.add_all([b1, b2, b3])
    session.add(
        Category(code="clutter", names={"zh_CN": "楼道杂物堆积", "en": "Clutter in common areas"}, due_days=7,
                 sort_order=1)
    )
    session.add(
        Category(code="wires", names={"zh_CN": "飞线充电", "en": "Dangling wires"}, due_days=3, sort_order=2)
    )
    session.flush()
    return SmallOrg(east.id, west.id, jianshe.id, renmin.id, grid.id, grid2.id, empty.id, b1.id, b2.id, b3.id)
