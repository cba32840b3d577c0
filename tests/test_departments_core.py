"""Departments (分流): importing them, staff of a department, handing a request to one and getting it back, the
reminder of a late department, and who may see and act on department work."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from bot.cli import main
from bot.core import invites, requests
from bot.core.bulletin import compute_bulletin
from bot.core.bulletin_render import render_summary, render_workbook
from bot.core.requests import RequestRefused, Transition
from bot.core.scheduler import JobKind, SchedulerConfig, due_requests
from bot.core.units import DISTRICT, Unit
from bot.i18n import translator
from bot.scheduler import run_request_job
from storage.database import Database
from storage.models import Category, EventKind, Level, OutboxMessage, Person, Request, RequestEvent, RequestStatus, Role
from tests.department_fixture import LI, POWER, QIAN, SUN, DepartmentsOrg, make_departments_org
from tests.org_fixture import NOW, staff
from tests.test_cli import ORG_CSV, sqlite_file  # noqa: F401  (the fixture)

LATER = NOW + timedelta(hours=1)


def person(session: Session, telegram_id: int) -> Person:
    return session.scalars(select(Person).where(Person.external_id == str(telegram_id))).one()


def dispatched(session: Session, setup: DepartmentsOrg) -> Request:
    requests.dispatch(session, person(session, SUN), setup.request, setup.squad, "Clear the stalls", LATER)
    return session.get_one(Request, setup.request)


# --- the import and staff ---------------------------------------------------------------------------------------


def test_org_import_reads_departments_and_staff_add_gives_a_department_role(
    sqlite_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    org = tmp_path / "org.csv"
    org.write_text(ORG_CSV, encoding="utf-8")
    assert main(["org", "import", str(org)]) == 0
    departments = tmp_path / "departments.csv"
    departments.write_text("department_code,department_name,street_code\nDG-CG,东关城管中队,DG\n"
                           "QU-GD,区供电公司,\n", encoding="utf-8")
    assert main(["org", "import", str(departments)]) == 0
    assert "2 created" in capsys.readouterr().out
    assert main(["staff", "add", "--telegram-id", "778", "--role", "department", "--unit", "DG-CG"]) == 0
    assert main(["staff", "add", "--telegram-id", "779", "--role", "department", "--unit", "DG"]) == 1
    assert "DG is a street code" in capsys.readouterr().err
    assert main(["staff", "list"]) == 0
    assert "DG-CG" in capsys.readouterr().out

    bad = tmp_path / "bad.csv"
    bad.write_text("department_code,department_name,street_code\nX-1,某部门,NOPE\n", encoding="utf-8")
    assert main(["org", "import", str(bad)]) == 1
    assert "street_code NOPE names no street" in capsys.readouterr().err
    engine = create_engine(f"sqlite:///{sqlite_file}")
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "select d.code, s.code from departments d left join streets s on s.id = d.street_id order by d.code").all()
        roles = connection.exec_driver_sql("select role from staff_roles").all()
    engine.dispose()
    assert rows == [("DG-CG", "DG"), ("QU-GD", None)]
    assert roles == [("DEPARTMENT",)]


# --- the moves ------------------------------------------------------------------------------------------------


async def test_the_street_dispatches_the_department_resolves_and_it_comes_back_to_the_street(
    database: Database,
) -> None:
    setup = await database.run(make_departments_org)

    def dispatch_and_finish(session: Session) -> tuple[Request, list[Person]]:
        request = session.get_one(Request, setup.request)
        assert (request.level, request.unit_id) == (Level.STREET, setup.org.street)
        offered = [department for department, _name in requests.dispatch_targets(session, request)]
        # The street's own squad and the district-wide company; not the west street's office, nor one unstaffed.
        assert offered == [setup.squad, setup.power]
        change = requests.dispatch(session, person(session, SUN), setup.request, setup.squad, "Clear the stalls",
                                   LATER)
        assert [p.external_id for p in change.notify] == [str(QIAN)]
        request = change.request
        assert (request.level, request.unit_id, request.status) == (Level.DEPARTMENT, setup.squad, RequestStatus.NEW)
        assert request.department_due_at is not None and request.department_due_at > LATER
        assert request.escalate_at is None  # a department is not escalated
        qian = person(session, QIAN)
        assert requests.available_transitions(request, qian) == [
            Transition.ACCEPT, Transition.NOTE, Transition.DEPARTMENT_DONE, Transition.HAND_BACK]
        requests.accept(session, qian, setup.request, LATER)
        requests.add_note(session, qian, setup.request, "On our way", LATER)
        back = requests.department_done(session, qian, setup.request, "Stalls cleared", LATER, "photo-1")
        return back.request, back.notify

    request, notify = await database.run(dispatch_and_finish)
    assert (request.level, request.unit_id, request.status) == (Level.STREET, setup.org.street, RequestStatus.NEW)
    assert (request.dispatched_level, request.department_due_at) == (None, None)
    assert [p.external_id for p in notify] == [str(SUN)]

    def street_confirms(session: Session) -> Request:
        requests.resolve(session, person(session, SUN), setup.request, "The squad cleared the stalls", LATER)
        return session.get_one(Request, setup.request)

    assert (await database.run(street_confirms)).status is RequestStatus.RESOLVED
    kinds = await database.run(lambda s: [e.kind for e in s.scalars(
        select(RequestEvent).where(RequestEvent.request_id == setup.request).order_by(RequestEvent.id))])
    assert kinds == [EventKind.FILED, EventKind.DISPATCHED, EventKind.ACCEPTED, EventKind.NOTE,
                     EventKind.DEPARTMENT_DONE, EventKind.RESOLVED]


async def test_a_department_that_gives_it_back_returns_it_to_the_street_with_the_reason(database: Database) -> None:
    setup = await database.run(make_departments_org)

    def hand_back(session: Session) -> tuple[Request, RequestEvent]:
        dispatched(session, setup)
        change = requests.hand_back(session, person(session, QIAN), setup.request, "A housing matter", LATER)
        event = session.scalars(select(RequestEvent).where(RequestEvent.kind == EventKind.HANDED_BACK)).one()
        return change.request, event

    request, event = await database.run(hand_back)
    assert (request.level, request.unit_id) == (Level.STREET, setup.org.street)
    assert (event.text, event.level, event.unit_id) == ("A housing matter", Level.STREET, setup.org.street)


async def test_the_district_sees_all_department_work_and_a_street_what_it_handed_over(database: Database) -> None:
    setup = await database.run(make_departments_org)

    def work(session: Session) -> dict[str, list[int]]:
        dispatched(session, setup)
        district = staff(session, 7201, "Zhou District", Role.DISTRICT, 0)
        other_street = staff(session, 7202, "Qian West", Role.STREET, setup.org.street2)
        session.flush()
        session.expire_all()
        return {name: [r.id for r in requests.department_work(session, someone)] for name, someone in (
            ("street", person(session, SUN)), ("district", district), ("other street", other_street),
            ("department", person(session, QIAN)))}

    assert await database.run(work) == {"street": [setup.request], "district": [setup.request], "other street": [],
                                        "department": []}


async def test_a_street_invites_staff_to_its_own_departments_only(database: Database) -> None:
    setup = await database.run(make_departments_org)

    def invite(session: Session) -> tuple[list[int], str]:
        sun = person(session, SUN)
        units = [unit.id for unit in invites.invitable_units(session, sun, Role.DEPARTMENT)]
        assert Role.DEPARTMENT in invites.invitable_roles(session, sun)
        created = invites.create_invite(session, sun, Role.DEPARTMENT, "DG-CG", LATER)
        assert (created.role, created.unit_id) == (Role.DEPARTMENT, setup.squad)
        with pytest.raises(invites.InviteError) as outside:
            invites.create_invite(session, sun, Role.DEPARTMENT, "XH-SJ", LATER)
        return units, outside.value.problem.value

    assert await database.run(invite) == ([setup.squad], "outside_area")


# --- who may act ---------------------------------------------------------------------------------------------


def refusal(session: Session, action: object) -> str:
    with pytest.raises(RequestRefused) as error:
        action()  # type: ignore[operator]
    return error.value.reason


async def test_only_the_holder_dispatches_and_only_the_department_it_went_to_acts_on_it(database: Database) -> None:
    setup = await database.run(make_departments_org)

    def check(session: Session) -> None:
        sun, qian, zhou = person(session, SUN), person(session, QIAN), person(session, POWER)
        # A department cannot dispatch, nor act on a request still with the street.
        assert "not held by your unit" in refusal(session, lambda: requests.dispatch(
            session, qian, setup.request, setup.power, "x", LATER))
        assert "not held by your unit" in refusal(session, lambda: requests.hand_back(
            session, qian, setup.request, "x", LATER))
        # The street cannot hand it to another street's department (a forged button).
        assert "another department" in refusal(session, lambda: requests.dispatch(
            session, sun, setup.request, setup.market_office, "x", LATER))
        request = dispatched(session, setup)
        # Another department neither sees nor acts on it; the street sees it but no longer acts.
        assert requests.view_of(session, zhou, request) is None
        assert "not held by your unit" in refusal(session, lambda: requests.department_done(
            session, zhou, setup.request, "x", LATER))
        assert requests.view_of(session, sun, request) is requests.View.STAFF
        assert requests.staff_actions(request, sun) == []
        assert "not held by your unit" in refusal(session, lambda: requests.dispatch(
            session, sun, setup.request, setup.power, "x", LATER))
        assert requests.view_of(session, qian, request) is requests.View.STAFF
        assert [r.id for r in requests.held_requests(session, qian)] == [setup.request]
        assert requests.held_requests(session, zhou) == []

    await database.run(check)


# --- the late department ------------------------------------------------------------------------------------------


async def test_a_late_department_is_reminded_once_and_the_street_is_told(database: Database) -> None:
    setup = await database.run(make_departments_org)
    request = await database.run(lambda s: dispatched(s, setup))
    assert request.department_due_at is not None
    late = request.department_due_at + timedelta(minutes=1)
    config = SchedulerConfig()

    def run(session: Session) -> object:
        assert [job.request_id for job in due_requests(session, JobKind.DEPARTMENT_OVERDUE, late)] == [setup.request]
        # The request's own due date passed too, but a department is not escalated for it.
        assert due_requests(session, JobKind.ESCALATE_OVERDUE, late + timedelta(days=30)) == []
        return run_request_job(session, JobKind.DEPARTMENT_OVERDUE, setup.request, late, config)

    assert await database.run(run) is not None
    assert await database.run(lambda s: run_request_job(s, JobKind.DEPARTMENT_OVERDUE, setup.request, late,
                                                        config)) is None

    def texts(session: Session) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for message in session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)):
            owner = session.get_one(Person, message.person_id)
            found.setdefault(owner.external_id, []).append(str(message.action.get("text", "")))
        return found

    sent = await database.run(texts)
    assert any("was due back from your department" in text for text in sent[str(QIAN)])
    assert any("东关城管中队 has not finished R-000001" in text for text in sent[str(SUN)])
    request = await database.run(lambda s: s.get_one(Request, setup.request))
    assert (request.level, request.unit_id) == (Level.DEPARTMENT, setup.squad)


# --- the bulletin -----------------------------------------------------------------------------------------------


async def test_the_bulletin_counts_each_departments_work_with_the_deadline_it_was_given(database: Database) -> None:
    setup = await database.run(make_departments_org)

    def three_dispatches(session: Session) -> None:
        li = person(session, LI)
        sun, qian, zhou = person(session, SUN), person(session, QIAN), person(session, POWER)
        category = session.scalars(select(Category).where(Category.code == "clutter")).one()
        late_one, given_back = (
            requests.file_request(session, li, requests.Draft(category.id, text), NOW).request.id
            for text in ("Bikes block the stairs", "A lamp post leans over the road")
        )
        requests.dispatch(session, sun, setup.request, setup.squad, "Clear the stalls", LATER)
        requests.department_done(session, qian, setup.request, "Cleared", LATER + timedelta(days=1))
        # Given one working day on a Sunday: due at the close of Monday, finished on Tuesday.
        requests.dispatch(session, sun, late_one, setup.squad, "Move the bikes", LATER, working_days=1)
        requests.department_done(session, qian, late_one, "Moved", LATER + timedelta(days=2))
        requests.dispatch(session, sun, given_back, setup.power, "Straighten it", LATER)
        requests.hand_back(session, zhou, given_back, "Not our lamp post", LATER + timedelta(hours=3))

    await database.run(three_dispatches)
    bulletin = await database.run(lambda s: compute_bulletin(s, DISTRICT, "2026-11", "Asia/Shanghai"))
    squad, power = bulletin.by_department
    assert (squad.code, squad.received, squad.resolved, squad.resolved_on_time, squad.handed_back) == (
        "DG-CG", 2, 2, 1, 0)
    assert squad.days_to_resolve == pytest.approx(1.5)
    assert (power.code, power.received, power.resolved, power.handed_back, power.days_to_resolve) == (
        "QU-GD", 1, 0, 1, None)
    street = await database.run(lambda s: compute_bulletin(s, Unit(Level.STREET, setup.org.street), "2026-11",
                                                           "Asia/Shanghai"))
    assert [line.code for line in street.by_department] == ["DG-CG", "QU-GD"]
    other_street = await database.run(lambda s: compute_bulletin(s, Unit(Level.STREET, setup.org.street2),
                                                                 "2026-11", "Asia/Shanghai"))
    assert other_street.by_department == ()
    next_month = await database.run(lambda s: compute_bulletin(s, DISTRICT, "2026-12", "Asia/Shanghai"))
    assert next_month.by_department == ()

    summary = render_summary(translator("en"), bulletin)
    assert "东关城管中队: 2 handed over, 2 done, 50% on time" in summary
    sheet = load_workbook(io.BytesIO(render_workbook(translator("zh_CN"), bulletin)))["按部门"]
    rows = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert rows[1][:7] == ["DG-CG", "东关城管中队", 2, 2, 1, 0.5, 0]
    assert rows[2][:7] == ["QU-GD", "区供电公司", 1, 0, 0, None, 1]
