"""The desk's downloads of the filtered list, its import of historical requests and finding a building for the
list, through aiohttp's test client against the desk's app (``bot.desk.export_pages``)."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from openpyxl import load_workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.core import requests as core
from bot.core.audit import AuditAction
from bot.core.clock import FrozenClock
from bot.core.desk_access import DeskRefused
from bot.core.desk_requests import Filters, find_spots
from bot.core.request_export import desk_export, import_for
from bot.desk import export_pages
from bot.i18n import translator
from storage.database import Database
from storage.models import AuditLog, Building, Person, Request
from tests.test_desk import DESK_URL, Org, build_org, client, code, desk_client, new_link, resident, signed_in

__all__ = ["client"]  # the test client fixture, shared with tests/test_desk.py

HEADER = "Filed at,Category,Status,Grid code,Description,Resolved at\n"
GOOD_ROWS = ("2026-03-02 09:00,clutter,closed,DG-JS-01,Bikes in the hallway,2026-03-04 10:00\n"
             "2026-03-05 14:30,wires,withdrawn,DG-JS-01,Wire from a window,\n")


@pytest.fixture
async def org(database: Database, clock: FrozenClock) -> Org:
    """The desk's two requests (Ann's, in Jianshe and in Renmin) and a third in Jianshe by Bea, who asked to
    stay hidden; Ann has a phone number."""

    def build(session: Session) -> Org:
        found = build_org(session, clock())
        ann = session.get(Person, session.get(Request, found.jianshe_request).resident_id)  # type: ignore[union-attr]
        assert ann is not None
        ann.phone = "13800000000"
        bea = resident(session, 1002, "Bea", clock())
        bea.phone = "13900000000"
        building = session.scalars(select(Building).where(Building.code == "DG-JS-01-B1")).one()
        draft = core.Draft(1, "Bea's hidden report", hide_identity=True)
        core.file_request(session, bea, draft, clock(), building=building)
        return found

    return await database.run(build)


def csv_rows(body: bytes) -> list[dict[str, str]]:
    assert body.startswith("\ufeff".encode())
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))


async def download(client: TestClient[Any, Any], query: str) -> Any:
    return await client.get(f"/requests/export?{query}")


async def test_a_community_admins_export_holds_only_the_communitys_requests(
    client: TestClient[Any, Any], database: Database, clock: FrozenClock, org: Org
) -> None:
    await signed_in(client, database, clock, org.jianshe_admin)
    response = await download(client, "format=csv")
    assert response.status == 200
    assert response.headers["Content-Disposition"] == 'attachment; filename="requests-DG-JS-2026-11-25.csv"'
    rows = csv_rows(await response.read())
    assert {row["Community"] for row in rows} == {"建设社区"}
    assert code(org.jianshe_request) in {row["Code"] for row in rows}
    assert code(org.renmin_request) not in {row["Code"] for row in rows}
    # Another community's requests asked for by URL: refused, not an empty file.
    refused = await download(client, f"format=csv&unit=community:{org.renmin}")
    assert refused.status == 403 and "outside your area" in await refused.text()


async def test_the_district_gets_the_filtered_list_as_a_workbook(
    client: TestClient[Any, Any], database: Database, clock: FrozenClock, org: Org
) -> None:
    await signed_in(client, database, clock, org.district)
    everything = await download(client, "format=xlsx")
    assert everything.status == 200
    assert everything.headers["Content-Disposition"] == 'attachment; filename="requests-district-2026-11-25.xlsx"'
    sheet = load_workbook(io.BytesIO(await everything.read()), read_only=True).active
    assert sheet is not None
    table = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert table[0][0] == "Code" and "Resident" not in table[0]
    assert sorted(row[0] for row in table[1:]) == sorted([code(org.jianshe_request), code(org.renmin_request),
                                                          code(org.renmin_request + 1)])
    # The list's filters, the whole list (not its page): the text search narrows it to one.
    searched = csv_rows(await (await download(client, "format=csv&q=Wires")).read())
    assert [row["Code"] for row in searched] == [code(org.renmin_request)]
    assert (await download(client, "format=pdf")).status == 404
    assert (await download(client, "format=csv&status=lost")).status == 400


async def test_a_list_read_in_many_batches_is_written_whole(
    client: TestClient[Any, Any], database: Database, clock: FrozenClock, org: Org,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(export_pages, "EXPORT_BATCH", 1)
    await signed_in(client, database, clock, org.district)
    for kind in ("csv", "xlsx"):
        response = await download(client, f"format={kind}")
        assert response.status == 200
        body = await response.read()
        if kind == "csv":
            codes = [row["Code"] for row in csv_rows(body)]
        else:
            sheet = load_workbook(io.BytesIO(body), read_only=True).active
            assert sheet is not None
            codes = [str(row[0]) for row in sheet.iter_rows(min_row=2, values_only=True)]
        assert codes == [code(org.jianshe_request), code(org.renmin_request), code(org.renmin_request + 1)]


async def test_personal_columns_follow_the_rule_and_hidden_residents_stay_hidden(
    client: TestClient[Any, Any], database: Database, clock: FrozenClock, org: Org
) -> None:
    await signed_in(client, database, clock, org.jianshe_admin)
    page = await client.get("/requests")
    assert "With residents&#x27; names and phones" in await page.text()
    rows = {row["Code"]: row for row in csv_rows(await (await download(client, "format=csv&personal=1")).read())}
    assert (rows[code(org.jianshe_request)]["Resident"], rows[code(org.jianshe_request)]["Phone"]) == (
        "Ann", "13800000000")
    hidden = rows[code(org.renmin_request + 1)]
    assert (hidden["Resident"], hidden["Phone"]) == ("", "")
    plain = csv_rows(await (await download(client, "format=csv")).read())
    assert "Resident" not in plain[0] and "Phone" not in plain[0]
    await download(client, "format=xlsx&personal=1&q=Wires")

    def audited(session: Session) -> list[tuple[str, int | None, dict[str, str]]]:
        entries = session.scalars(select(AuditLog).where(AuditLog.action == "requests.exported_personal")
                                  .order_by(AuditLog.id))
        return [(entry.action, entry.actor_id, entry.details) for entry in entries]

    # Each download with names and phones once, with what narrowed it; the plain one not at all.
    assert await database.run(audited) == [
        ("requests.exported_personal", org.jianshe_admin, {"filters": {"sort": "newest"}}),
        ("requests.exported_personal", org.jianshe_admin, {"filters": {"sort": "newest", "text": "Wires"}}),
    ]


async def test_the_core_refuses_an_export_or_import_to_those_without_the_right(
    database: Database, clock: FrozenClock, org: Org
) -> None:
    t = translator("en")

    def attempt(session: Session) -> list[str]:
        worker, admin = session.get(Person, org.worker), session.get(Person, org.jianshe_admin)
        assert worker is not None and admin is not None
        refused = []
        for person, work in ((worker, lambda p: desk_export(session, p, Filters(), clock(), t, True)),
                             (admin, lambda p: import_for(session, p, [], "Asia/Shanghai", clock(), "x.csv"))):
            try:
                work(person)
            except DeskRefused as error:
                refused.append(error.reason)
        return refused

    assert len(await database.run(attempt)) == 2


async def test_without_a_session_nothing_is_exported(
    client: TestClient[Any, Any], database: Database, clock: FrozenClock, org: Org
) -> None:
    response = await download(client, "format=csv")
    assert response.status == 401 and "/desk" in await response.text()


async def test_an_export_over_the_limit_is_refused_with_a_message(
    client: TestClient[Any, Any], database: Database, clock: FrozenClock, org: Org,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(export_pages, "EXPORT_LIMIT", 2)
    await signed_in(client, database, clock, org.district)
    response = await download(client, "format=xlsx")
    assert response.status == 413 and "More than 2 requests match" in await response.text()
    assert (await download(client, "format=xlsx&q=Wires")).status == 200


# --- the import -----------------------------------------------------------------------------------------------


def upload_form(csrf: str | None, content: str, name: str = "history.csv") -> FormData:
    form = FormData()
    if csrf is not None:
        form.add_field("csrf", csrf)
    form.add_field("file", content.encode(), filename=name, content_type="text/csv")
    return form


async def count_requests(database: Database) -> int:
    return await database.run(lambda session: session.scalar(select(func.count(Request.id))) or 0)


async def test_the_district_imports_history_after_confirming(
    client: TestClient[Any, Any], database: Database, clock: FrozenClock, org: Org
) -> None:
    csrf = await signed_in(client, database, clock, org.district)
    before = await count_requests(database)
    form_page = await client.get("/import")
    assert form_page.status == 200 and 'enctype="multipart/form-data"' in await form_page.text()
    checked = await client.post("/import", data=upload_form(csrf, HEADER + GOOD_ROWS), headers={"Origin": DESK_URL})
    text = await checked.text()
    assert checked.status == 200, text
    assert "2 historical requests from history.csv will be imported. Nothing has been written yet." in text
    assert await count_requests(database) == before
    upload = text.split('name="upload" value="')[1].split('"')[0]
    done = await client.post("/import/confirm", data={"csrf": csrf, "upload": upload}, headers={"Origin": DESK_URL})
    assert done.status == 200 and "2 historical requests imported." in await done.text()
    assert await count_requests(database) == before + 2
    audited = await database.run(lambda session: session.scalars(
        select(AuditLog).where(AuditLog.action == AuditAction.REQUESTS_IMPORTED.value)).one().details)
    assert audited == {"rows": 2, "file": "history.csv"}
    again = await client.post("/import/confirm", data={"csrf": csrf, "upload": upload}, headers={"Origin": DESK_URL})
    assert again.status == 409 and await count_requests(database) == before + 2


async def test_a_file_with_a_bad_row_imports_nothing_and_lists_the_lines(
    client: TestClient[Any, Any], database: Database, clock: FrozenClock, org: Org
) -> None:
    csrf = await signed_in(client, database, clock, org.district)
    before = await count_requests(database)
    bad = HEADER + GOOD_ROWS + "2026-03-06 08:00,clutter,closed,NO-SUCH-GRID,Boxes,2026-03-07 08:00\n"
    checked = await client.post("/import", data=upload_form(csrf, bad), headers={"Origin": DESK_URL})
    text = await checked.text()
    assert checked.status == 400
    assert "Nothing was imported" in text and "line 4: unknown grid code &#x27;NO-SUCH-GRID&#x27;" in text
    unreadable = await client.post("/import", data=upload_form(csrf, "Colour\nred\n"), headers={"Origin": DESK_URL})
    assert unreadable.status == 400 and "unknown column" in await unreadable.text()
    not_a_table = await client.post("/import", data=upload_form(csrf, "hello", name="notes.txt"),
                                    headers={"Origin": DESK_URL})
    assert not_a_table.status == 400 and "Choose an XLSX or CSV file" in await not_a_table.text()
    assert await count_requests(database) == before


async def test_an_oversized_upload_is_refused(
    client: TestClient[Any, Any], database: Database, clock: FrozenClock, org: Org,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(export_pages, "MAX_UPLOAD_BYTES", 100)
    csrf = await signed_in(client, database, clock, org.district)
    big = HEADER + GOOD_ROWS * 5
    response = await client.post("/import", data=upload_form(csrf, big), headers={"Origin": DESK_URL})
    assert response.status == 413 and "larger than" in await response.text()
    assert list(client.app[export_pages.PENDING_KEY].folder().iterdir()) == []  # the part received is gone


async def test_an_upload_without_the_csrf_token_or_by_a_community_admin_is_refused(
    client: TestClient[Any, Any], database: Database, clock: FrozenClock, org: Org
) -> None:
    csrf = await signed_in(client, database, clock, org.district)
    missing = await client.post("/import", data=upload_form(None, HEADER + GOOD_ROWS), headers={"Origin": DESK_URL})
    assert missing.status == 403 and "不是从您当前登录的工作台页面提交的" in await missing.text()
    not_multipart = await client.post("/import", data={"csrf": csrf}, headers={"Origin": DESK_URL})
    assert not_multipart.status == 403
    forged = await client.post("/import/confirm", data={"upload": "x"}, headers={"Origin": DESK_URL})
    assert forged.status == 403
    unknown = await client.post("/import/confirm", data={"csrf": csrf, "upload": "x"}, headers={"Origin": DESK_URL})
    assert unknown.status == 409

    other = desk_client(database, clock)
    await other.start_server()
    try:
        admin_csrf = await signed_in(other, database, clock, org.jianshe_admin)
        assert ">Import<" not in await (await other.get("/requests")).text()
        assert (await other.get("/import")).status == 403
        posted = await other.post("/import", data=upload_form(admin_csrf, HEADER + GOOD_ROWS),
                                  headers={"Origin": DESK_URL})
        assert posted.status == 403 and "Only the district center" in await posted.text()
    finally:
        await other.close()
    assert await count_requests(database) == 3


# --- finding a building ---------------------------------------------------------------------------------------


async def test_a_building_is_found_by_pinyin_initials_or_code_within_the_viewers_area(
    database: Database, clock: FrozenClock, org: Org
) -> None:
    async def found(person_id: int, text: str) -> list[str]:
        def look(session: Session) -> list[str]:
            person = session.get(Person, person_id)
            assert person is not None
            return [spot.code for spot in find_spots(session, person, text)]

        return await database.run(look)

    assert await found(org.jianshe_admin, "jianshelu") == ["DG-JS-01-B1", "DG-JS-02-B1"]
    assert await found(org.jianshe_admin, "jsl12") == ["DG-JS-01-B1"]
    assert await found(org.jianshe_admin, "XH-RM-01-B1") == []  # another community's building
    assert await found(org.district, "XH-RM-01-B1") == ["XH-RM-01-B1"]
    assert await found(org.district, "人民路") == ["XH-RM-01-B1"]


async def test_the_list_offers_matching_buildings_and_narrows_to_the_one_chosen(
    client: TestClient[Any, Any], database: Database, clock: FrozenClock, org: Org
) -> None:
    await signed_in(client, database, clock, org.jianshe_admin)
    offered = await (await client.get("/requests?place=jianshe")).text()
    assert "建设路12号院1号楼" in offered and "spot=building%3A" in offered
    building = await database.run(lambda session: session.scalars(
        select(Building.id).where(Building.code == "DG-JS-01-B1")).one())
    narrowed = await client.get(f"/requests?spot=building:{building}")
    text = await narrowed.text()
    assert "Only requests about 建设路12号院1号楼" in text and code(org.jianshe_request) in text
    # The download keeps the building.
    assert f'name="spot" value="building:{building}"' in text
    suggestions = await (await client.get("/spots?q=renmin")).json()
    assert suggestions == {"results": []}
    mine = await (await client.get("/spots?q=jsl12")).json()
    assert [spot["code"] for spot in mine["results"]] == ["DG-JS-01-B1"]
    assert (await client.get("/requests?spot=tower:1")).status == 400


async def test_suggestions_need_a_session(
    client: TestClient[Any, Any], database: Database, clock: FrozenClock, org: Org
) -> None:
    response = await client.get("/spots?q=jianshe")
    assert response.status == 401


async def test_a_worker_or_resident_gets_no_desk_session(database: Database, clock: FrozenClock, org: Org) -> None:
    ann = await database.run(lambda session: session.get(Request, org.jianshe_request).resident_id)  # type: ignore[union-attr]
    for person_id in (org.worker, ann):
        with pytest.raises(DeskRefused):
            await new_link(database, clock, person_id)


async def test_the_problems_are_listed_in_the_readers_language(
    client: TestClient[Any, Any], database: Database, clock: FrozenClock, org: Org
) -> None:
    def speak_chinese(session: Session) -> None:
        person = session.get(Person, org.district)
        assert person is not None
        person.locale = "zh_CN"

    csrf = await signed_in(client, database, clock, org.district)
    await database.run(speak_chinese)
    bad = HEADER + "2026-03-06 08:00,clutter,closed,NO-SUCH-GRID,Boxes,\n"
    text = await (await client.post("/import", data=upload_form(csrf, bad), headers={"Origin": DESK_URL})).text()
    assert "第2行：未知的网格编码&#x27;NO-SUCH-GRID&#x27;" in text
    assert "第2行：已办理或已办结的诉求需要填写“办结时间”" in text
    unreadable = await client.post("/import", data=upload_form(csrf, "Colour\nred\n"), headers={"Origin": DESK_URL})
    assert "第1行：无法识别的列&#x27;Colour&#x27;" in await unreadable.text()


async def test_an_upload_waits_half_an_hour_for_its_confirmation(
    client: TestClient[Any, Any], database: Database, clock: FrozenClock, org: Org
) -> None:
    csrf = await signed_in(client, database, clock, org.district)
    before = await count_requests(database)
    checked = await (await client.post("/import", data=upload_form(csrf, HEADER + GOOD_ROWS),
                                       headers={"Origin": DESK_URL})).text()
    upload = checked.split('name="upload" value="')[1].split('"')[0]
    clock.advance(minutes=31)
    late = await client.post("/import/confirm", data={"csrf": csrf, "upload": upload}, headers={"Origin": DESK_URL})
    assert late.status == 409 and "older than 30 minutes" in await late.text()
    assert await count_requests(database) == before
