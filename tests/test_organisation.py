"""Importing the organisation, adding staff, seeding categories and loading the demo, on a real SQLite file."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TypeVar

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.core.categories import (
    DEFAULT_CATEGORIES,
    import_categories,
    list_categories,
    read_category_file,
    seed_categories,
    validate_category_rows,
)
from bot.core.demo import demo_rows, load_demo
from bot.core.organisation import (
    ORG_COLUMNS,
    FileFormatError,
    OrgRow,
    apply_rows,
    read_org_file,
    validate_rows,
)
from bot.core.requests import categories_for_filing
from bot.core.staff import StaffError, add_staff, list_staff, staff_of_unit
from bot.core.staff_admin import remove_staff_role
from storage.database import Database
from storage.models import Base, Building, Category, Community, Grid, Level, Person, Role, StaffRole, Street

T = TypeVar("T")
NOW = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
HEADER = ",".join((*ORG_COLUMNS, "latitude", "longitude"))
ROWS = [
    "HY,汉冶街道,HY-LZ,老庄社区,HY-LZ-01,老庄社区第一网格,HY-LZ-01-B1,老庄农贸市场家属院1号楼,南阳市宛城区老庄路6号,32.991,112.516",
    "HY,汉冶街道,HY-LZ,老庄社区,HY-LZ-01,老庄社区第一网格,HY-LZ-01-B2,老庄农贸市场家属院2号楼,南阳市宛城区老庄路6号,32.992,112.517",
    "HY,汉冶街道,HY-LZ,老庄社区,HY-LZ-02,老庄社区第二网格,HY-LZ-02-B1,汉冶路33号院1号楼,南阳市宛城区汉冶路33号,,",
]


@pytest.fixture
def db(database: Database) -> Database:
    return database


def write_csv(path: Path, lines: list[str], encoding: str = "utf-8") -> Path:
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


def count(model: type[Base]) -> Callable[[Session], int]:
    def counting(session: Session) -> int:
        return session.scalar(select(func.count()).select_from(model)) or 0

    return counting


def building(code: str) -> Callable[[Session], tuple[str, str, str, float | None]]:
    def finding(session: Session) -> tuple[str, str, str, float | None]:
        found = session.scalars(select(Building).where(Building.code == code)).one()
        return found.name, found.grid.code, found.grid.community.name, found.latitude

    return finding


# --- reading files ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_csv_in_every_excel_encoding_keeps_chinese_names_exactly(tmp_path: Path, encoding: str) -> None:
    path = write_csv(tmp_path / "org.csv", [HEADER, *ROWS], encoding)

    rows = read_org_file(path)

    assert [row.line for row in rows] == [2, 3, 4]
    assert rows[0].street_name == "汉冶街道"
    assert rows[0].building_name == "老庄农贸市场家属院1号楼"
    assert rows[0].address == "南阳市宛城区老庄路6号"
    assert rows[0].coordinates() == (32.991, 112.516)
    assert rows[2].coordinates() is None
    assert validate_rows(rows) == []


def test_gb18030_file_is_really_not_utf8(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "org.csv", [HEADER, *ROWS], "gb18030")

    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")
    assert read_org_file(path)[1].community_name == "老庄社区"


def test_header_is_matched_case_insensitively_in_any_order_and_coordinates_are_optional(tmp_path: Path) -> None:
    header = (
        " Building_Code , BUILDING_NAME,grid_code,grid_name,community_code,community_name,"
        "street_code,street_name,address"
    )
    line = "B-1,孔明路12号院1号楼,G-1,孔明社区第一网格,C-1,孔明社区,S-1,东关街道,孔明路12号"
    path = write_csv(tmp_path / "org.csv", [header, "", line])

    rows = read_org_file(path)

    assert rows == [
        OrgRow(
            3, "S-1", "东关街道", "C-1", "孔明社区", "G-1", "孔明社区第一网格", "B-1", "孔明路12号院1号楼", "孔明路12号"
        )
    ]


def test_xlsx_written_by_openpyxl(tmp_path: Path) -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(HEADER.split(","))
    sheet.append(
        [
            "DG",
            "东关街道",
            "DG-KM",
            "孔明社区",
            "DG-KM-01",
            "孔明社区第一网格",
            "DG-KM-01-B1",
            "外贸家属院1号楼",
            "孔明路58号",
            33.0015,
            112.5405,
        ]
    )
    sheet.append([None] * 11)
    sheet.append(
        [
            "DG",
            "东关街道",
            "DG-KM",
            "孔明社区",
            "DG-KM-01",
            "孔明社区第一网格",
            101,  # a code typed as a number
            "外贸家属院2号楼",
            "孔明路58号",
            None,
            None,
        ]
    )
    path = tmp_path / "org.xlsx"
    workbook.save(path)

    rows = read_org_file(path)

    assert [row.line for row in rows] == [2, 4]
    assert rows[0].building_name == "外贸家属院1号楼"
    assert rows[0].coordinates() == (33.0015, 112.5405)
    assert rows[1].building_code == "101"
    assert validate_rows(rows) == []


def test_missing_and_unknown_columns_are_reported(tmp_path: Path) -> None:
    missing = write_csv(tmp_path / "missing.csv", ["street_code,street_name", "S,街道"])
    misspelt = write_csv(tmp_path / "misspelt.csv", [HEADER.replace("latitude", "lattitude"), *ROWS])
    empty = write_csv(tmp_path / "empty.csv", [])

    with pytest.raises(FileFormatError, match=r"missing column.*community_code"):
        read_org_file(missing)
    with pytest.raises(FileFormatError, match="unknown column 'lattitude'"):
        read_org_file(misspelt)
    with pytest.raises(FileFormatError, match="empty"):
        read_org_file(empty)


# --- validation -------------------------------------------------------------------------------------------


def test_every_problem_is_reported_with_its_line_and_nothing_is_imported(tmp_path: Path) -> None:
    good = "S1,东关街道,C1,孔明社区,G1,第一网格,B1,1号楼,孔明路12号,33.0,112.5"
    path = write_csv(
        tmp_path / "bad.csv",
        [
            HEADER,
            good,  # 2
            "S1,东关街道,C1,孔明社区,G1,第一网格,,2号楼,,,",  # 3: no building code
            "S1,东关街道,C1,孔明社区,G1,第一网格,B 3,3号楼,,,",  # 4: space in code
            "S1,东关街道,C1,孔明社区,G1,,B4,4号楼,,,",  # 5: no grid name
            "S1,东关街道,C1,孔明社区,G2,第二网格,B1,1号楼,孔明路12号,33.0,112.5",  # 6: B1 in another grid
            "S1,东关街道,C2,校场社区,G1,第一网格,B6,6号楼,,,",  # 7: G1 in another community
            "S2,新华街道,C1,孔明社区,G3,第三网格,B7,7号楼,,,",  # 8: C1 in another street
            "S1,东关街道改,C1,孔明社区,G1,第一网格,B8,8号楼,,,",  # 9: S1 renamed
            "S1,东关街道,C1,孔明社区,G1,第一网格,B9,9号楼,,north,112.5",  # 10: latitude not a number
            "S1,东关街道,C1,孔明社区,G1,第一网格,B10,10号楼,,95,112.5",  # 11: latitude out of range
            "S1,东关街道,C1,孔明社区,G1,第一网格,B11,11号楼,,33.0,190",  # 12: longitude out of range
            "S1,东关街道,C1,孔明社区,G1,第一网格,B12,12号楼,,33.0,",  # 13: only one coordinate
            "S1,东关街道,C1,孔明社区,G1,第一网格,B1,1号楼,孔明路14号,33.0,112.5",  # 14: B1 with another address
            "S1,东关街道,C1,孔明社区,G1,第一网格," + "B" * 63 + ",长楼,,,",  # 15: too long for a deep link
            good,  # 16: an exact repeat is harmless
        ],
    )

    problems = validate_rows(read_org_file(path))

    by_line = {problem.line: problem.message for problem in problems}
    assert sorted(by_line) == list(range(3, 16))
    assert "building_code is missing" in by_line[3]
    assert "building_code 'B 3' is malformed" in by_line[4]
    assert "grid_name is missing" in by_line[5]
    assert "building B1 is in grid G2 here but in grid G1 on line 2" in by_line[6]
    assert "grid G1 is in community C2 here but in community C1 on line 2" in by_line[7]
    assert "community C1 is in street S2 here but in street S1 on line 2" in by_line[8]
    assert "street S1 is named '东关街道改' here but '东关街道' on line 2" in by_line[9]
    assert "latitude 'north' is not a number" in by_line[10]
    assert "latitude 95 is outside -90..90" in by_line[11]
    assert "longitude 190 is outside -180..180" in by_line[12]
    assert "both latitude and longitude" in by_line[13]
    assert "different address or coordinates than on line 2" in by_line[14]
    assert "1-62 characters" in by_line[15]
    assert str(problems[0]).startswith("line 3: ")


async def test_rows_with_problems_are_refused_by_apply(db: Database, tmp_path: Path) -> None:
    rows = read_org_file(write_csv(tmp_path / "org.csv", [HEADER, ROWS[0], ROWS[0].replace("HY-LZ-01,", "HY-LZ-02,")]))

    with pytest.raises(FileFormatError):
        await db.run(partial(apply_rows, rows=rows))

    assert await db.run(count(Street)) == 0
    assert await db.run(count(Building)) == 0


def test_bytes_neither_utf8_nor_gb18030_are_refused_with_their_line(tmp_path: Path) -> None:
    path = tmp_path / "noise.csv"
    path.write_bytes((HEADER + "\r\n" + ROWS[0] + "\r\n").encode() + b"HY,\xff\xfe\x80\x81,x\r\n")

    with pytest.raises(FileFormatError, match=r"^line 3: the file is neither UTF-8 nor GB18030"):
        read_org_file(path)


async def test_control_characters_in_names_are_refused_with_their_line(db: Database, tmp_path: Path) -> None:
    nul = ROWS[1].replace("老庄社区第一网格", "老庄社区\x00第一网格")
    bell = ROWS[2].replace("汉冶路33号院1号楼", "汉冶路\x0733号院")
    rows = read_org_file(write_csv(tmp_path / "org.csv", [HEADER, ROWS[0], nul, bell]))

    problems = validate_rows(rows)

    assert [(p.line, p.message) for p in problems if "control character" in p.message] == [
        (3, "grid_name contains the control character U+0000; remove it"),
        (4, "building_name contains the control character U+0007; remove it"),
    ]
    with pytest.raises(FileFormatError):
        await db.run(partial(apply_rows, rows=rows))
    assert await db.run(count(Grid)) == 0


def test_an_empty_file_is_a_problem() -> None:
    assert [problem.line for problem in validate_rows([])] == [1]


# --- applying ---------------------------------------------------------------------------------------------


async def test_import_creates_every_level(db: Database, tmp_path: Path) -> None:
    rows = read_org_file(write_csv(tmp_path / "org.csv", [HEADER, *ROWS]))

    summary = await db.run(partial(apply_rows, rows=rows))

    assert (summary.streets.created, summary.communities.created) == (1, 1)
    assert (summary.grids.created, summary.buildings.created) == (2, 3)
    assert await db.run(building("HY-LZ-02-B1")) == ("汉冶路33号院1号楼", "HY-LZ-02", "老庄社区", None)
    assert await db.run(building("HY-LZ-01-B1")) == ("老庄农贸市场家属院1号楼", "HY-LZ-01", "老庄社区", 32.991)


async def test_reimport_updates_names_and_moves_a_building_without_duplicates(db: Database, tmp_path: Path) -> None:
    first = read_org_file(write_csv(tmp_path / "first.csv", [HEADER, *ROWS]))
    await db.run(partial(apply_rows, rows=first))
    edited = [
        ROWS[0].replace("老庄社区,", "老庄新社区,"),
        # B2 moves from grid 01 to grid 02 and gets a new name.
        ROWS[1]
        .replace("老庄社区,", "老庄新社区,")
        .replace("HY-LZ-01,老庄社区第一网格", "HY-LZ-02,老庄社区第二网格")
        .replace("家属院2号楼", "家属院二号楼"),
        ROWS[2].replace("老庄社区,", "老庄新社区,"),
    ]
    second = read_org_file(write_csv(tmp_path / "second.csv", [HEADER, *edited]))

    summary = await db.run(partial(apply_rows, rows=second))

    assert (summary.communities.created, summary.communities.updated) == (0, 1)
    assert (summary.buildings.created, summary.buildings.updated) == (0, 1)
    assert await db.run(building("HY-LZ-01-B2")) == ("老庄农贸市场家属院二号楼", "HY-LZ-02", "老庄新社区", 32.992)
    assert await db.run(count(Building)) == 3
    assert await db.run(count(Community)) == 1
    again = await db.run(partial(apply_rows, rows=second))
    assert str(again) == (
        "streets: 0 created, 0 updated; communities: 0 created, 0 updated; "
        "grids: 0 created, 0 updated; buildings: 0 created, 0 updated"
    )


async def test_buildings_absent_from_a_later_file_are_left_alone(db: Database, tmp_path: Path) -> None:
    await db.run(partial(apply_rows, rows=read_org_file(write_csv(tmp_path / "a.csv", [HEADER, *ROWS]))))

    await db.run(partial(apply_rows, rows=read_org_file(write_csv(tmp_path / "b.csv", [HEADER, ROWS[0]]))))

    assert await db.run(count(Building)) == 3
    assert await db.run(building("HY-LZ-02-B1")) == ("汉冶路33号院1号楼", "HY-LZ-02", "老庄社区", None)


# --- staff ------------------------------------------------------------------------------------------------


async def test_staff_are_added_listed_and_found_by_unit(db: Database) -> None:
    await db.run(load_demo)

    def add_team(session: Session) -> None:
        add_staff(session, "1001", Role.WORKER, "DG-KM-01", "王网格", NOW)
        add_staff(session, "1002", Role.WORKER, "DG-KM-01", "李网格", NOW)
        add_staff(session, "1003", Role.COMMUNITY, "DG-KM", "张社区", NOW)
        add_staff(session, "1004", Role.STREET, "DG", "赵街道", NOW)
        add_staff(session, "1005", Role.DISTRICT, None, "区中心", NOW)
        add_staff(session, "1001", Role.WORKER, "DG-KM-01", None, NOW)  # again: nothing changes

    await db.run(add_team)

    lines = await db.run(list_staff)
    assert [(line.role, line.unit_code, line.person_name, line.telegram_id) for line in lines] == [
        (Role.DISTRICT, "", "区中心", "1005"),
        (Role.STREET, "DG", "赵街道", "1004"),
        (Role.COMMUNITY, "DG-KM", "张社区", "1003"),
        (Role.WORKER, "DG-KM-01", "李网格", "1002"),
        (Role.WORKER, "DG-KM-01", "王网格", "1001"),
    ]
    assert lines[3].unit_name == "孔明社区第一网格"
    assert await db.run(count(StaffRole)) == 5

    def staff_names(session: Session) -> dict[str, list[str]]:
        grid_id = session.scalars(select(Grid.id).where(Grid.code == "DG-KM-01")).one()
        other_grid_id = session.scalars(select(Grid.id).where(Grid.code == "DG-KM-02")).one()
        community_id = session.scalars(select(Community.id).where(Community.code == "DG-KM")).one()
        street_id = session.scalars(select(Street.id).where(Street.code == "DG")).one()
        units = {
            "grid": (Level.GRID, grid_id),
            "other grid": (Level.GRID, other_grid_id),
            "community": (Level.COMMUNITY, community_id),
            "street": (Level.STREET, street_id),
            "district": (Level.DISTRICT, 0),
        }
        return {
            key: [person.display_name for person in staff_of_unit(session, level, unit_id)]
            for key, (level, unit_id) in units.items()
        }

    assert await db.run(staff_names) == {
        "grid": ["王网格", "李网格"],
        "other grid": [],
        "community": ["张社区"],
        "street": ["赵街道"],
        "district": ["区中心"],
    }


async def test_new_staff_person_is_a_telegram_person_with_roles(db: Database) -> None:
    await db.run(load_demo)

    def add_two_roles(session: Session) -> tuple[str, str, str | None, list[tuple[Role, str, str]]]:
        add_staff(session, " 42 ", Role.COMMUNITY, "HY-LZ", "刘", NOW)
        add_staff(session, "42", Role.WORKER, "HY-LZ-02", None, NOW)
        person = session.scalars(select(Person)).one()
        roles = [(line.role, line.unit_code, line.telegram_id) for line in list_staff(session)]
        return person.channel, person.chat_id, person.locale, roles

    channel, chat_id, locale, roles = await db.run(add_two_roles)

    assert (channel, chat_id, locale) == ("telegram", "42", None)
    assert roles == [(Role.COMMUNITY, "HY-LZ", "42"), (Role.WORKER, "HY-LZ-02", "42")]


@pytest.mark.parametrize(
    ("role", "unit_code", "message"),
    [
        (Role.WORKER, "NOPE", "grid 'NOPE' does not exist"),
        (Role.WORKER, "DG-KM", "DG-KM is a community code"),
        (Role.COMMUNITY, "DG-KM-01", "DG-KM-01 is a grid code"),
        (Role.STREET, None, "needs a street code"),
        (Role.DISTRICT, "DG", "district staff belong to no unit"),
    ],
)
async def test_staff_errors_are_explained(db: Database, role: Role, unit_code: str | None, message: str) -> None:
    await db.run(load_demo)

    with pytest.raises(StaffError, match=message):
        await db.run(partial(add_staff, external_id="7", role=role, unit_code=unit_code, name=None, now=NOW))

    assert await db.run(count(Person)) == 0


async def test_telegram_id_must_be_numeric(db: Database) -> None:
    with pytest.raises(StaffError, match="not a number"):
        await db.run(partial(add_staff, external_id="@someone", role=Role.DISTRICT, unit_code=None, name=None, now=NOW))


async def test_staff_role_can_be_removed(db: Database) -> None:
    await db.run(load_demo)
    district = await db.run(lambda s: add_staff(s, "1", Role.DISTRICT, None, "区中心", NOW).person_id)
    street_role = await db.run(lambda s: add_staff(s, "9", Role.STREET, "WLB", "周", NOW).id)

    def remove(session: Session) -> bool:
        return remove_staff_role(session, session.get_one(Person, district), street_role, NOW) is not None

    assert await db.run(remove) is True
    assert await db.run(remove) is False
    assert [line.telegram_id for line in await db.run(list_staff)] == ["1"]


# --- categories -------------------------------------------------------------------------------------------


async def test_category_seeding_is_idempotent_and_keeps_admin_edits(db: Database) -> None:
    assert await db.run(seed_categories) == len(DEFAULT_CATEGORIES)

    def edit(session: Session) -> None:
        wires = session.scalars(select(Category).where(Category.code == "dangling_wires")).one()
        wires.names = {"zh_CN": "电动车飞线充电", "en": "E-bike charging cables"}
        wires.due_days = 3
        other = session.scalars(select(Category).where(Category.code == "other")).one()
        other.active = False

    await db.run(edit)

    assert await db.run(seed_categories) == 0
    categories = await db.run(categories_for_filing)
    assert [category.code for category in categories] == [c.code for c in DEFAULT_CATEGORIES if c.code != "other"]
    wires = next(category for category in categories if category.code == "dangling_wires")
    assert (wires.name("zh_CN"), wires.name("en"), wires.due_days) == ("电动车飞线充电", "E-bike charging cables", 3)
    assert categories[0].name("zh_CN") == "违章建筑"
    assert all(category.due_days == 7 for category in categories if category.code != "dangling_wires")


async def test_category_file_updates_creates_and_reorders(db: Database, tmp_path: Path) -> None:
    await db.run(seed_categories)
    path = write_csv(
        tmp_path / "categories.csv",
        [
            "code,name_zh_CN,name_en,due_days,active",
            "market_order,农贸市场秩序,Market order,5,yes",
            "sanitation,环境卫生,Cleanliness,,",
            "other,其他,Other,7,no",
        ],
        "gb18030",
    )
    rows = read_category_file(path)
    assert validate_category_rows(rows) == []

    summary = await db.run(partial(import_categories, rows=rows))

    assert (summary.created, summary.updated) == (1, 2)
    categories = await db.run(list_categories)
    assert [category.code for category in categories[:3]] == ["market_order", "sanitation", "other"]
    assert categories[0].names == {"zh_CN": "农贸市场秩序", "en": "Market order"}
    assert categories[0].due_days == 5
    assert categories[1].name("en") == "Cleanliness"
    assert "other" not in [category.code for category in await db.run(categories_for_filing)]
    assert len(categories) == len(DEFAULT_CATEGORIES) + 1


def test_category_file_problems_have_line_numbers(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "categories.csv",
        [
            "code,name_zh_CN,name_en,due_days,active",
            "ok,好,Fine,7,yes",
            "bad code,坏,,7,yes",
            "ok,又一个,,7,yes",
            "late,,,0,maybe",
        ],
    )

    problems = validate_category_rows(read_category_file(path))

    assert [str(problem) for problem in problems] == [
        "line 3: code 'bad code' is malformed: use 1-60 characters of A-Z a-z 0-9 _ -",
        "line 4: category ok is already listed on line 2",
        "line 5: name_zh_CN is missing",
        "line 5: due_days '0' must be a whole number of days from 1 to 365",
        "line 5: active 'maybe' must be yes or no",
    ]


# --- demo -------------------------------------------------------------------------------------------------


def test_demo_rows_are_valid_and_shaped_like_wancheng() -> None:
    rows = demo_rows()

    assert validate_rows(rows) == []
    assert len({row.street_code for row in rows}) == 3
    assert len({row.community_code for row in rows}) == 6
    assert len({row.grid_code for row in rows}) == 12
    assert len({row.building_code for row in rows}) == 36
    assert {"五里堡街道", "汉冶街道"} <= {row.street_name for row in rows}
    for row in rows:
        coordinates = row.coordinates()
        assert coordinates is not None
        assert abs(coordinates[0] - 32.99) < 0.05 and abs(coordinates[1] - 112.53) < 0.05
        assert row.address.startswith("南阳市宛城区")


async def test_demo_load_is_idempotent(db: Database) -> None:
    first = await db.run(load_demo)
    second = await db.run(load_demo)

    assert first.buildings.created == 36
    assert (second.buildings.created, second.buildings.updated, second.streets.updated) == (0, 0, 0)
    assert await db.run(count(Building)) == 36
    assert await db.run(count(Category)) == len(DEFAULT_CATEGORIES)
    name, grid_code, community_name, latitude = await db.run(building("DG-KM-02-B1"))
    assert (name, grid_code, community_name) == ("外贸家属院1号楼", "DG-KM-02", "孔明社区")
    assert latitude == pytest.approx(33.0045)
