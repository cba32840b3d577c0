"""Request lists as XLSX and CSV, and the import of historical requests from the same columns.

The requests are ``tests/test_bulletin.py``'s October 2026 (see its table); R1 is the first, filed on
2 October 2026 at 00:00 UTC (08:00 in Shanghai), closed a day later, 5 stars.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from bot.cli import main as cli_main
from bot.core.organisation import FileFormatError
from bot.core.privacy import may_see_personal_data
from bot.core.request_export import (
    ImportRefused,
    RequestFilter,
    export_for,
    export_rows,
    headers,
    import_history,
    read_import_file,
    write_csv,
    write_xlsx,
)
from bot.core.scheduler import JobKind, due_jobs
from bot.core.units import DISTRICT, Unit
from bot.i18n import translator
from storage.database import Database
from storage.models import (
    Level,
    OutboxMessage,
    Person,
    Rating,
    Request,
    RequestEvent,
    RequestStatus,
    Role,
)
from tests.org_fixture import SmallOrg, staff
from tests.test_bulletin import TZ, make_month, run_sync

NOW = datetime(2026, 11, 20, 2, tzinfo=UTC)
HISTORY = (RequestStatus.RESOLVED, RequestStatus.CLOSED, RequestStatus.WITHDRAWN)
# The columns an import carries over as they were (the code is new, "resolved" comes back "closed", the
# holder is the grid).
KEPT = ("filed_at", "category", "street", "community", "grid", "grid_code", "place", "place_code", "description",
        "resolved_at", "due_at", "on_time", "rating")
KEYS = ("code", "filed_at", "category", "status", "holder", "street", "community", "grid", "grid_code", "place",
        "place_code", "description", "resolved_at", "due_at", "on_time", "rating")


def _month_with_phone(session: Session) -> SmallOrg:
    org = make_month(session)
    resident = session.scalars(select(Person).where(Person.external_id == "900")).one()
    resident.phone = "13800000000"
    return org


@pytest.fixture
async def org(database: Database) -> SmallOrg:
    return await database.run(_month_with_phone)


def rows_of(
    session: Session, selection: RequestFilter, locale: str = "en", personal: bool = False
) -> list[dict[str, Any]]:
    keys = (*KEYS, "resident", "phone") if personal else KEYS
    rows = export_rows(session, selection, translator(locale, TZ), personal)
    return [dict(zip(keys, row, strict=True)) for row in rows]


async def test_export_columns_of_a_request(database: Database, org: SmallOrg) -> None:
    rows = await database.run(lambda session: rows_of(session, RequestFilter(DISTRICT)))
    assert len(rows) == 16
    assert rows[0] == {
        "code": "R-000001", "filed_at": datetime(2026, 10, 2, 8, 0), "category": "Clutter in common areas",
        "status": "closed", "holder": "建设一网格", "street": "东关街道", "community": "建设社区", "grid": "建设一网格",
        "grid_code": "DG-JS-01", "place": "建设路12号院1号楼", "place_code": "DG-JS-01-B1", "description": "…",
        "resolved_at": datetime(2026, 10, 3, 8, 0), "due_at": datetime(2026, 10, 9, 8, 0), "on_time": "yes",
        "rating": 5,
    }
    assert rows[1]["on_time"] == "no" and rows[4]["resolved_at"] is None and rows[4]["on_time"] is None
    t = translator("zh_CN", TZ)
    assert headers(t, False)[:4] == ["编码", "提交时间", "类别", "状态"]
    assert len(headers(t, True)) == len(headers(t, False)) + 2


async def test_personal_data_only_when_asked_and_never_for_the_anonymous(database: Database, org: SmallOrg) -> None:
    def hide_r2(session: Session) -> None:
        session.get(Request, 2).hide_identity = True  # type: ignore[union-attr]

    await database.run(hide_r2)
    without = await database.run(lambda session: rows_of(session, RequestFilter(DISTRICT)))
    assert all("13800000000" not in map(str, row.values()) and "居民" not in row.values() for row in without)
    rows = await database.run(lambda session: rows_of(session, RequestFilter(DISTRICT), personal=True))
    assert (rows[0]["resident"], rows[0]["phone"]) == ("居民", "13800000000")
    assert (rows[1]["resident"], rows[1]["phone"]) == ("", "")


async def test_who_may_see_personal_data(database: Database, org: SmallOrg) -> None:
    def people(session: Session) -> list[bool]:
        worker = staff(session, 601, "王网格", Role.WORKER, org.grid)
        community = staff(session, 602, "社区", Role.COMMUNITY, org.community)
        district = staff(session, 603, "区中心", Role.DISTRICT, 0)
        session.flush()
        resident = session.scalars(select(Person).where(Person.external_id == "900")).one()
        return [may_see_personal_data(person) for person in (worker, community, district, resident)]

    assert await database.run(people) == [False, True, True, False]


async def test_filters_narrow_the_list(database: Database, org: SmallOrg) -> None:
    def work(session: Session) -> tuple[list[str], list[str], int]:
        def codes(selection: RequestFilter) -> list[str]:
            return [f"{row['grid_code']}:{row['status']}" for row in rows_of(session, selection)]

        community = codes(RequestFilter(Unit(Level.COMMUNITY, org.community2), (RequestStatus.NEW,)))
        grid = codes(RequestFilter(Unit(Level.GRID, org.empty_grid)))
        october = RequestFilter(
            DISTRICT, (), datetime(2026, 9, 30, 16, tzinfo=UTC), datetime(2026, 10, 31, 16, tzinfo=UTC)
        )
        return community, grid, len(rows_of(session, october))

    community, grid, october = await database.run(work)
    assert community == ["XH-RM-01:new"]  # R12
    assert grid == ["DG-JS-02:closed", "DG-JS-02:withdrawn", "DG-JS-02:resolved"]  # R6 R7 R8
    assert october == 13


async def _export_history(database: Database, path: Path, write: str) -> list[dict[str, Any]]:
    """Writes the history (resolved, closed, withdrawn) to ``path`` and returns its rows."""
    def work(session: Session) -> list[dict[str, Any]]:
        t = translator("zh_CN", TZ)
        with path.open("wb") as out:
            rows = export_rows(session, RequestFilter(DISTRICT, HISTORY), t, False)
            if write == "csv":
                write_csv(out, headers(t, False), rows)
            else:
                write_xlsx(out, "请求", headers(t, False), rows)
        return rows_of(session, RequestFilter(DISTRICT, HISTORY), "zh_CN")

    return await database.run(work)


def _forget_requests(session: Session) -> None:
    for model in (RequestEvent, Rating, Request):
        session.execute(delete(model))


@pytest.mark.parametrize("kind", ["xlsx", "csv"])
async def test_round_trip_through_import(database: Database, org: SmallOrg, tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"history.{kind}"
    before = await _export_history(database, path, kind)
    assert len(before) == 11
    await database.run(_forget_requests)
    imported = await database.run(lambda session: import_history(session, read_import_file(path), TZ, NOW))
    assert imported == 11
    after = await database.run(lambda session: rows_of(session, RequestFilter(DISTRICT), "zh_CN"))
    assert [{key: row[key] for key in KEPT} for row in after] == [{key: row[key] for key in KEPT} for row in before]
    assert {row["status"] for row in after} == {"已办结", "已撤回"}

    def nothing_to_send(session: Session) -> tuple[int, list[JobKind], int]:
        outbox = session.scalar(select(func.count()).select_from(OutboxMessage)) or 0
        jobs = [job.kind for job in due_jobs(session, NOW) if job.request_id is not None]
        events = session.scalar(select(func.count()).select_from(RequestEvent)) or 0
        return outbox, jobs, events

    # Nothing written to the outbox, no request timer due; a filing and a resolution (or withdrawal) each.
    assert await database.run(nothing_to_send) == (0, [], 22)
    with pytest.raises(ImportRefused) as twice:
        await database.run(lambda session: import_history(session, read_import_file(path), TZ, NOW))
    assert len(twice.value.problems) == 11
    assert all("in the database already" in problem.message for problem in twice.value.problems)


async def test_csv_is_utf8_with_a_byte_order_mark(database: Database, org: SmallOrg, tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    await _export_history(database, path, "csv")
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0][:2] == ["编码", "提交时间"]
    assert rows[1][1] == "2026-10-02 08:00"


async def test_xlsx_holds_dates_as_dates(database: Database, org: SmallOrg, tmp_path: Path) -> None:
    path = tmp_path / "history.xlsx"
    await _export_history(database, path, "xlsx")
    sheet = load_workbook(path).active
    assert sheet is not None
    assert sheet["B2"].value == datetime(2026, 10, 2, 8, 0)


def _write_csv(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


GOOD = "2026-09-01 09:00,clutter,closed,DG-JS-01,DG-JS-01-B1,楼道堆物,2026-09-02 09:00,4"


async def test_a_bad_row_imports_nothing_and_says_where(database: Database, org: SmallOrg, tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "bad.csv", [
        "filed_at,category,status,grid_code,place_code,description,resolved_at,rating",
        GOOD,
        "2026-09-03,nonsense,closed,DG-JS-01,,x,2026-09-04,4",
        "2026-09-05 10:00,wires,accepted,NOPE,XH-RM-01-B1,x,,9",
        "yesterday,wires,closed,XH-RM-01,XH-RM-01-B1,x,2026-09-01,",
        "2027-01-01 10:00,wires,withdrawn,XH-RM-01,DG-JS-01-B1,x,,",
    ])
    counted = await database.run(lambda session: session.scalar(select(func.count()).select_from(Request)))
    with pytest.raises(ImportRefused) as refused:
        await database.run(lambda session: import_history(session, read_import_file(path), TZ, NOW))
    problems = [str(problem) for problem in refused.value.problems]
    assert problems == [
        "line 3: unknown category 'nonsense'",
        "line 4: status 'accepted' is not history: only resolved, closed or withdrawn requests are imported",
        "line 4: unknown grid code 'NOPE'",
        "line 4: rating '9' is not 1 to 5 stars",
        "line 5: filed_at 'yesterday' is not a time written YYYY-MM-DD HH:MM",
        "line 6: building or place 'DG-JS-01-B1' is not in grid 'XH-RM-01'",
        "line 6: filed_at is in the future",
    ]
    assert await database.run(lambda session: session.scalar(select(func.count()).select_from(Request))) == counted


def test_an_import_file_needs_the_columns(tmp_path: Path) -> None:
    with pytest.raises(FileFormatError, match="missing column"):
        read_import_file(_write_csv(tmp_path / "short.csv", ["filed_at,category", "2026-09-01,clutter"]))
    with pytest.raises(FileFormatError, match="unknown column"):
        read_import_file(_write_csv(tmp_path / "odd.csv", ["filed_at,colour", "2026-09-01,red"]))


# --- command line -----------------------------------------------------------------------------------------


def test_cli_exports_and_imports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/cli.db"
    assert cli_main(["db", "upgrade", "--database-url", url]) == 0
    run_sync(url, _month_with_phone)
    out = tmp_path / "xh.csv"
    assert cli_main(["requests", "export", "--area", "XH", "--status", "closed", "--format", "csv", "-o", str(out),
                     "--locale", "en", "--database-url", url]) == 0
    assert "wrote 4 request(s)" in capsys.readouterr().out  # R9 R10 R13 X3
    assert "13800000000" not in out.read_text(encoding="utf-8-sig")
    personal = tmp_path / "personal.xlsx"
    assert cli_main(["requests", "export", "--area", "district", "--since", "2026-10-01", "--until", "2026-11-01",
                     "-o", str(personal), "--with-personal-data", "--database-url", url]) == 0
    sheet = load_workbook(personal).active
    assert sheet is not None and sheet.max_row == 14 and sheet["R2"].value == "13800000000"

    # The same requests are there already: importing them again would double the history.
    assert cli_main(["requests", "import", str(out), "--database-url", url]) == 1
    assert f"{out}:2: this request is in the database already" in capsys.readouterr().err
    run_sync(url, _forget_requests)
    assert cli_main(["requests", "import", str(out), "--database-url", url]) == 0
    captured = capsys.readouterr()
    assert "imported 4 historical request(s)" in captured.out and "4/4 rows" in captured.err
    counted = run_sync(url, lambda session: session.scalar(select(func.count()).select_from(Request)))
    assert counted == 4

    bad = _write_csv(tmp_path / "bad.csv", ["filed_at,category,status,grid_code,description", GOOD.split(",")[0] +
                                            ",clutter,open,DG-JS-01,x"])
    assert cli_main(["requests", "import", str(bad), "--database-url", url]) == 1
    assert f"{bad}:2: status 'open' is not history" in capsys.readouterr().err
    assert cli_main(["requests", "export", "--area", "NOPE", "-o", str(out), "--database-url", url]) == 1
    assert "no street, community or grid has the code NOPE" in capsys.readouterr().err
    assert cli_main(["requests", "export", "--area", "DG-JS-01-B1", "-o", str(out), "--database-url", url]) == 1
    assert "no street, community or grid has the code DG-JS-01-B1" in capsys.readouterr().err  # a building
    assert cli_main(["requests", "export", "--area", "XH", "--since", "Oct", "-o", str(out),
                     "--database-url", url]) == 2


async def test_an_admin_exports_their_area_with_personal_data_when_asked(database: Database, org: SmallOrg) -> None:
    def export(session: Session) -> tuple[list[str], list[list[Any]], list[list[Any]]]:
        admin = staff(session, 700, "人民社区", Role.COMMUNITY, org.community2)
        session.flush()
        session.expire_all()
        t = translator("en", TZ)
        header, rows = export_for(session, admin, RequestFilter(Unit(Level.COMMUNITY, org.community2)), t, True)
        _, without = export_for(session, admin, RequestFilter(Unit(Level.COMMUNITY, org.community2)), t, False)
        return header, list(rows), list(without)

    header, rows, without = await database.run(export)
    assert header[-2:] == ["Resident", "Phone"]
    assert len(rows) == 6 and all(row[-2:] == ["居民", "13800000000"] for row in rows)  # R9..R13, X3
    assert all(len(row) == len(KEYS) for row in without)
