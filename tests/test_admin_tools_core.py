"""Admin tools through the core: broadcasts, invites, the staff list and the audit log."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.core.broadcasts import Audience, BroadcastNotAllowed, Who, create_broadcast
from bot.core.clock import FrozenClock
from bot.core.units import Unit
from storage.database import Database
from storage.models import (
    AuditLog,
    Broadcast,
    BroadcastRecipient,
    Category,
    EventKind,
    Level,
    Person,
    Request,
    RequestEvent,
    RequestStatus,
    Role,
    StaffInvite,
    StaffRole,
)
from tests.harness import CoreChat, FakePerson
from tests.org_fixture import NOW, SmallOrg, make_small_org, staff


def add_residents(session: Session, building_id: int, first_id: int, count: int) -> None:
    session.add_all(
        Person(
            channel="telegram", external_id=str(user_id), chat_id=str(user_id), display_name=f"r{user_id}",
            locale="zh_CN", building_id=building_id, state_data={}, created_at=NOW,
        )
        for user_id in range(first_id, first_id + count)
    )


async def org_with_admins(database: Database) -> SmallOrg:
    def build(session: Session) -> SmallOrg:
        org = make_small_org(session)
        staff(session, 500, "Admin Wang", Role.COMMUNITY, org.community, locale="en")
        staff(session, 501, "Worker Zhao", Role.WORKER, org.grid)
        staff(session, 502, "Street Sun", Role.STREET, org.street, locale="en")
        add_residents(session, org.building, 10_000, 7)  # in the admin's community
        add_residents(session, org.building2, 20_000, 5)  # in another street's community
        return org

    return await database.run(build)


async def count(database: Database, model: type[object]) -> int:
    def rows(session: Session) -> int:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)

    return await database.run(rows)


async def test_community_admin_broadcasts_to_residents_after_preview(database: Database, chat: CoreChat) -> None:
    await org_with_admins(database)
    admin = chat.person(500, "Admin Wang", "en")
    await chat.text(admin, "/broadcast")
    choice = admin.find("Who should receive")
    await chat.press(admin, choice.button("Everyone in 建设社区"), choice)
    await chat.press(admin, admin.last.button("Residents"), admin.last)
    await chat.text(admin, "Water is off tomorrow 9:00-12:00.")
    question = admin.find("Send it now?")
    assert "7 people" in question.text and "residents of 建设社区" in question.text
    preview = "📢 Notice from 建设社区\n\nWater is off tomorrow 9:00-12:00."
    assert any(text == preview for text in admin.texts())  # the preview itself, with who sends it
    assert await count(database, Broadcast) == 0  # nothing before confirming

    await chat.press(admin, question.button("Send"), question)
    assert "queued for 7 people" in question.text
    broadcast = await database.run(lambda s: s.scalars(select(Broadcast)).one())
    assert (broadcast.total, broadcast.progress_message_id) == (7, question.message_id)
    assert await count(database, BroadcastRecipient) == 7

    await chat.press(admin, "bc:go", question)  # a second press creates nothing
    assert await count(database, Broadcast) == 1


async def test_broadcast_to_one_grid_staff_only(database: Database, chat: CoreChat) -> None:
    org = await org_with_admins(database)
    admin = chat.person(500, "Admin Wang", "en")
    await chat.text(admin, "/broadcast")
    choice = admin.find("Who should receive")
    await chat.press(admin, choice.button("A grid in 建设社区"), choice)
    await chat.press(admin, choice.button("建设一网格"), choice)
    assert choice.buttons()  # the who-question replaced the list
    await chat.press(admin, f"bc:w:{Who.STAFF}", choice)
    await chat.text(admin, "Staff meeting at 3.")
    question = admin.find("Send it now?")
    assert "1 person" in question.text
    await chat.press(admin, question.button("Send"), question)
    broadcast = await database.run(lambda s: s.scalars(select(Broadcast)).one())
    assert broadcast.audience == {"scope": "g", "unit_id": org.grid, "who": "s"}


async def test_forged_callback_for_another_community_is_refused(database: Database, chat: CoreChat) -> None:
    org = await org_with_admins(database)
    admin = chat.person(500, "Admin Wang", "en")
    await chat.text(admin, "/broadcast")
    choice = admin.find("Who should receive")
    for forged in (f"bc:u:c:{org.community2}", f"bc:u:s:{org.street}", "bc:u:d:0", f"bc:l:s:{org.street}:c:0"):
        await chat.press(admin, forged, choice)
        assert admin.answers[-1].alert and "your own area" in admin.answers[-1].text
    await chat.press(admin, "bc:w:a", choice)
    await chat.text(admin, "Forged notice")
    await chat.press(admin, "bc:go", choice)
    assert await count(database, Broadcast) == 0
    assert await count(database, BroadcastRecipient) == 0


async def test_core_refuses_audience_outside_the_area(database: Database) -> None:
    org = await org_with_admins(database)

    def forge(session: Session) -> None:
        admin = session.scalars(select(Person).where(Person.external_id == "500")).one()
        audience = Audience(Unit(Level.COMMUNITY, org.community2), Who.EVERYONE)
        create_broadcast(session, admin, audience, "hello", None, NOW)

    with pytest.raises(BroadcastNotAllowed):
        await database.run(forge)
    assert await count(database, Broadcast) == 0


async def test_worker_cannot_broadcast(database: Database, chat: CoreChat) -> None:
    await org_with_admins(database)
    worker = chat.person(501, "Worker Zhao")  # staff added with the Chinese locale
    await chat.text(worker, "/broadcast")
    assert "只有社区、街道和区级工作人员可以发送通知" in worker.last.text
    assert chat.people["501"].last.keyboard is None


# --- invites --------------------------------------------------------------------------------------------


def link_token(admin: FakePerson) -> str:
    message = admin.find("?start=inv_")
    return message.text.split("?start=inv_", 1)[1].split()[0]


async def test_invite_link_makes_staff_once(database: Database, chat: CoreChat) -> None:
    org = await org_with_admins(database)
    admin = chat.person(500, "Admin Wang", "en")
    await chat.text(admin, "/invite worker DG-JS-02")
    token = link_token(admin)
    assert len(token) <= 60 and "https://t.me/gridbot_test?start=inv_" in admin.find("?start=inv_").text
    assert any(m.document and m.document.endswith(".png") for m in admin.messages)

    newcomer = chat.person(600, "Newcomer Liu", "en")
    await chat.text(newcomer, f"/start inv_{token}")
    assert "Your role from now on: grid worker of 建设二网格" in newcomer.find("Welcome aboard").text
    assert "Newcomer Liu accepted your invitation" in admin.last.text
    newcomer_roles = select(StaffRole).join(Person).where(Person.external_id == "600")
    roles = await database.run(lambda s: [(r.role, r.unit_id) for r in s.scalars(newcomer_roles)])
    assert roles == [(Role.WORKER, org.empty_grid)]

    other = chat.person(601, "Other", "en")
    await chat.text(other, f"/start inv_{token}")
    assert "already been used" in other.last.text
    assert await database.run(lambda s: s.scalar(select(func.count()).select_from(StaffRole).join(Person).where(
        Person.external_id == "601"))) == 0


async def test_expired_invite_is_refused(database: Database, chat: CoreChat, clock: FrozenClock) -> None:
    await org_with_admins(database)
    admin = chat.person(500, "Admin Wang", "en")
    await chat.text(admin, "/invite community DG-JS")
    token = link_token(admin)
    clock.advance(days=7, seconds=1)
    late = chat.person(602, "Late", "en")
    await chat.text(late, f"/start inv_{token}")
    assert "expired" in late.last.text
    assert await database.run(lambda s: s.scalars(select(StaffInvite)).one().used_at) is None


async def test_out_of_area_invites_are_refused(database: Database, chat: CoreChat) -> None:
    await org_with_admins(database)
    admin = chat.person(500, "Admin Wang", "en")
    for command in ("/invite worker XH-RM-01", "/invite community XH-RM", "/invite street DG"):
        await chat.text(admin, command)
        assert "within your own area" in admin.last.text
    await chat.text(admin, "/invite worker NOPE")
    assert "no unit with the code “NOPE”" in admin.last.text
    street_admin = chat.person(502, "Street Sun", "en")
    await chat.text(street_admin, "/invite worker DG-JS-01")
    assert "?start=inv_" in street_admin.find("Invitation").text
    await chat.text(street_admin, "/invite community XH-RM")
    assert "within your own area" in street_admin.last.text
    assert await count(database, StaffInvite) == 1


async def test_unknown_invite_token_is_refused(database: Database, chat: CoreChat) -> None:
    await org_with_admins(database)
    stranger = chat.person(603, "Stranger", "en")
    await chat.text(stranger, "/start inv_AAAAAAAAAAAAAAAAAAAAAAAA")
    assert "not valid" in stranger.last.text


# --- the staff list -------------------------------------------------------------------------------------


def file_request(session: Session, org: SmallOrg, assignee_id: int | None, status: RequestStatus) -> int:
    resident = session.scalars(select(Person).where(Person.external_id == "10000")).one()
    category = session.scalars(select(Category)).first()
    assert category is not None
    request = Request(
        resident_id=resident.id, building_id=org.building, grid_id=org.grid, category_id=category.id,
        description="clutter",
        status=status, level=Level.GRID, unit_id=org.grid, assignee_id=assignee_id, created_at=NOW,
        due_at=NOW + timedelta(days=7), accepted_at=NOW if assignee_id else None,
    )
    session.add(request)
    session.flush()
    return request.id


async def test_removing_last_worker_moves_open_requests_up_to_the_community(
    database: Database, chat: CoreChat
) -> None:
    org = await org_with_admins(database)

    def requests(session: Session) -> tuple[int, int, int]:
        zhao = session.scalars(select(Person).where(Person.external_id == "501")).one()
        return (
            file_request(session, org, zhao.id, RequestStatus.ACCEPTED),
            file_request(session, org, None, RequestStatus.NEW),
            file_request(session, org, zhao.id, RequestStatus.CLOSED),
        )

    accepted, waiting, closed = await database.run(requests)
    admin = chat.person(500, "Admin Wang", "en")
    zhao = chat.person(501, "Worker Zhao", "zh-hans")
    resident = chat.person(10_000, "r10000", "zh-hans")
    await chat.text(admin, "/staff")
    listing = admin.find("Staff of your area")
    assert "Worker Zhao" in listing.text and "Street Sun" not in listing.text
    await chat.press(admin, listing.button("Remove Worker Zhao"), listing)
    assert "Remove Worker Zhao as grid worker of 建设一网格?" in listing.text
    assert "Their 1 open request" in listing.text
    await chat.press(admin, listing.button("Yes, remove"), listing)
    assert "Worker Zhao's role as grid worker of 建设一网格 has ended" in listing.text

    def state(session: Session) -> dict[int, tuple[RequestStatus, Level, int, int | None]]:
        rows = session.scalars(select(Request).where(Request.id.in_([accepted, waiting, closed])))
        return {r.id: (r.status, r.level, r.unit_id, r.assignee_id) for r in rows}

    after = await database.run(state)
    assert after[accepted] == (RequestStatus.NEW, Level.COMMUNITY, org.community, None)
    assert after[waiting] == (RequestStatus.NEW, Level.COMMUNITY, org.community, None)
    assert after[closed][0] is RequestStatus.CLOSED and after[closed][1] is Level.GRID
    events = await database.run(
        lambda s: [(e.request_id, e.kind) for e in s.scalars(select(RequestEvent).where(
            RequestEvent.kind == EventKind.REASSIGNED))]
    )
    assert sorted(events) == [(accepted, EventKind.REASSIGNED), (waiting, EventKind.REASSIGNED)]
    assert zhao.messages and "建设一网格" in zhao.last.text
    assert "waits for you" in admin.last.text or "wait for you" in admin.last.text  # the community staff: admin
    assert len(resident.messages) == 2


async def test_removing_a_worker_leaves_requests_with_the_remaining_worker(database: Database, chat: CoreChat) -> None:
    org = await org_with_admins(database)

    def setup(session: Session) -> int:
        staff(session, 503, "Worker Qian", Role.WORKER, org.grid, locale="en")
        zhao = session.scalars(select(Person).where(Person.external_id == "501")).one()
        return file_request(session, org, zhao.id, RequestStatus.ACCEPTED)

    request_id = await database.run(setup)
    admin = chat.person(500, "Admin Wang", "en")
    qian = chat.person(503, "Worker Qian", "en")
    await chat.text(admin, "/staff")
    listing = admin.find("Staff of your area")
    await chat.press(admin, listing.button("Remove Worker Zhao"), listing)
    await chat.press(admin, listing.button("Yes, remove"), listing)
    moved = await database.run(lambda s: s.get_one(Request, request_id))
    assert (moved.status, moved.level, moved.unit_id) == (RequestStatus.NEW, Level.GRID, org.grid)
    assert moved.assignee_id is None
    assert "1 open request now waits for you" in qian.last.text


async def test_forged_removal_outside_the_area_is_refused(database: Database, chat: CoreChat) -> None:
    await org_with_admins(database)
    street_role = await database.run(
        lambda s: s.scalars(select(StaffRole.id).where(StaffRole.role == Role.STREET)).one()
    )
    admin = chat.person(500, "Admin Wang", "en")
    await chat.text(admin, "/staff")
    await chat.press(admin, f"st:ok:{street_role}", admin.last)
    assert "within your own area" in admin.answers[-1].text
    assert await count(database, StaffRole) == 3


# --- audit ----------------------------------------------------------------------------------------------


async def test_admin_actions_are_audited(database: Database, chat: CoreChat) -> None:
    await org_with_admins(database)
    admin = chat.person(500, "Admin Wang", "en")
    await chat.text(admin, "/broadcast")
    choice = admin.find("Who should receive")
    await chat.press(admin, choice.button("Everyone in 建设社区"), choice)
    await chat.press(admin, admin.last.button("Residents and staff"), admin.last)
    await chat.text(admin, "Notice")
    question = admin.find("Send it now?")
    await chat.press(admin, question.button("Send"), question)
    await chat.press(admin, question.button("Cancel sending"), question)
    await chat.text(admin, "/invite worker DG-JS-01")
    await chat.text(chat.person(604, "New", "en"), f"/start inv_{link_token(admin)}")
    await chat.text(admin, "/staff")
    listing = admin.find("Staff of your area")
    await chat.press(admin, listing.button("Remove Worker Zhao"), listing)
    await chat.press(admin, listing.button("Yes, remove"), listing)

    entries = await database.run(
        lambda s: [(e.action, e.actor.external_id if e.actor else None) for e in s.scalars(
            select(AuditLog).order_by(AuditLog.id))]
    )
    assert entries == [
        ("broadcast.created", "500"),
        ("broadcast.cancelled", "500"),
        ("invite.created", "500"),
        ("invite.used", "604"),
        ("staff.removed", "500"),
    ]
