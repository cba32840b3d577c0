"""Moves of a request through the core: handing over when a worker is removed, who hears of an escalation,
requests filed by staff, and what the "me too" offer and the views show to whom."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core import requests as core
from bot.core.clock import FrozenClock
from bot.core.requests import Transition, View
from bot.core.scheduler import JobKind, SchedulerConfig
from bot.scheduler import run_due_jobs
from storage.database import Database
from storage.models import (
    EventKind,
    Level,
    OutboxMessage,
    Person,
    Request,
    RequestEvent,
    RequestStatus,
    Role,
    StaffRole,
)
from tests.harness import CoreChat, FakePerson
from tests.org_fixture import NOW, SmallOrg, make_small_org, staff
from tests.test_card_refresh_core import deliver_cards
from tests.test_lifecycle_core import bind, data_of, file_request, last_with_button, load_request, staff_writes


async def org_with(database: Database, *people: tuple[int, str, Role, str, str]) -> SmallOrg:
    """The small organisation with staff given as (user id, name, role, unit: "grid", "community",
    "street" or "district", locale)."""

    def build(session: Session) -> SmallOrg:
        org = make_small_org(session)
        units = {"grid": org.grid, "community": org.community, "street": org.street, "district": 0}
        for user_id, name, role, unit, locale in people:
            staff(session, user_id, name, role, units[unit], locale)
        return org

    return await database.run(build)


WANG = (2001, "Wang Worker", Role.WORKER, "grid", "en")
QIAN = (2003, "钱网格员", Role.WORKER, "grid", "zh_CN")
CHEN = (3001, "陈社区", Role.COMMUNITY, "community", "en")
SUN = (4001, "Sun Street", Role.STREET, "street", "en")


async def role_id(database: Database, user_id: int) -> int:
    query = select(StaffRole.id).join(Person, Person.id == StaffRole.person_id).where(
        Person.external_id == str(user_id))
    return await database.run(lambda session: session.scalars(query).one())


async def remove_through_staff_list(chat: CoreChat, admin: FakePerson, worker_name: str) -> None:
    await chat.text(admin, "/staff")
    listing = admin.find("Staff of your area")
    await chat.press(admin, listing.button(f"Remove {worker_name}"), listing)
    await chat.press(admin, listing.button("Yes, remove"), listing)


async def accepted_request_days_ago(chat: CoreChat, clock: FrozenClock, worker: FakePerson, days: int) -> FakePerson:
    """Li files a request, ``worker`` accepts it at once, and ``days`` days pass."""
    li = chat.person(1001, "李居民", "zh-hans")
    await bind(chat, li)
    await file_request(chat, li)
    await chat.press(worker, data_of(worker.last, "rq:acc:1"))
    clock.advance(days=days)
    return li


# --- handing over when a worker is removed ------------------------------------------------------------------


# Three days: the filing's reminder and escalation times have passed. Eight: the due date has passed too.
@pytest.mark.parametrize("days", [3, 8])
async def test_removed_workers_accepted_request_goes_to_the_remaining_worker_with_fresh_timers(
    database: Database, chat: CoreChat, clock: FrozenClock, days: int
) -> None:
    await org_with(database, WANG, QIAN, CHEN)
    wang, qian = chat.person(2001, "Wang Worker", "en"), chat.person(2003, "钱网格员")
    chen = chat.person(3001, "陈社区", "en")
    li = await accepted_request_days_ago(chat, clock, wang, days=days)

    await remove_through_staff_list(chat, chen, "Wang Worker")

    request = await load_request(database)
    now = clock()
    assert (request.status, request.level, request.assignee_id) == (RequestStatus.NEW, Level.GRID, None)
    assert (request.remind_at, request.escalate_at) == (now + timedelta(hours=24), now + timedelta(hours=48))
    assert "R-000001" in qian.last.text and "Wang Worker" in qian.last.text
    assert "R-000001" in li.last.text and "建设一网格" in li.last.text

    report = await run_due_jobs(database, now + timedelta(minutes=1), SchedulerConfig())
    assert report.done[JobKind.REMIND] == 0 and report.done[JobKind.ESCALATE_UNANSWERED] == 0
    assert report.done[JobKind.ESCALATE_OVERDUE] == 0
    assert (await load_request(database)).level is Level.GRID

    # The event is stored as a message id and shown in the reader's language.
    events = await database.run(lambda s: list(s.scalars(
        select(RequestEvent).where(RequestEvent.kind == EventKind.REASSIGNED))))
    assert [(event.text, event.actor_id) for event in events] == [(core.WORKER_LEFT, None)]
    await chat.press(li, "my:open:1")
    assert "负责的网格员已离开" in li.last.text and "worker handling it left" not in li.last.text
    await chat.press(qian, "rq:tl:1")
    assert "负责的网格员已离开" in qian.last.text


async def test_removed_last_worker_hands_requests_up_to_a_staffed_unit(
    database: Database, chat: CoreChat, clock: FrozenClock
) -> None:
    """The grid's community has nobody on duty, so the request goes on up to the street."""
    org = await org_with(database, WANG, SUN)
    wang, sun = chat.person(2001, "Wang Worker", "en"), chat.person(4001, "Sun Street", "en")
    li = await accepted_request_days_ago(chat, clock, wang, days=3)

    await remove_through_staff_list(chat, sun, "Wang Worker")

    request = await load_request(database)
    assert (request.status, request.level, request.unit_id) == (RequestStatus.NEW, Level.STREET, org.street)
    assert request.remind_at == clock() + timedelta(hours=24)
    assert "1 open request now waits for you" in sun.last.text
    assert "东关街道" in li.last.text
    report = await run_due_jobs(database, clock() + timedelta(minutes=1), SchedulerConfig())
    assert report.done[JobKind.REMIND] == report.done[JobKind.ESCALATE_UNANSWERED] == 0


# --- who hears of an escalation -----------------------------------------------------------------------------


async def test_supporters_are_told_of_a_manual_escalation(database: Database, chat: CoreChat) -> None:
    await org_with(database, WANG, CHEN)
    li, ma = chat.person(1001, "李居民"), chat.person(1002, "Ma Neighbour", "en")
    wang = chat.person(2001, "Wang Worker", "en")
    await bind(chat, li)
    await bind(chat, ma)
    await file_request(chat, li)
    await chat.text(ma, "/new")
    await chat.press(ma, ma.last.button("Clutter"))
    await chat.press(ma, ma.last.button("Me too"))
    told_before = len(ma.messages)

    await staff_writes(chat, wang, "rq:esc:", "Needs the property company")

    news = ma.messages[told_before:]
    assert [m.text for m in news] == ["R-000001 was reported up to 建设社区, who will handle it now."]
    assert "建设社区" in li.last.text and "上报" in li.last.text


async def test_the_timeline_gives_the_reason_after_a_chinese_colon(database: Database, chat: CoreChat) -> None:
    await org_with(database, WANG, CHEN)
    li, wang = chat.person(1001, "李居民"), chat.person(2001, "Wang Worker", "en")
    await bind(chat, li)
    await file_request(chat, li)
    await staff_writes(chat, wang, "rq:esc:", "需要物业公司配合")

    await chat.press(li, "my:open:1")

    escalated = next(line for line in li.last.text.splitlines() if "需要物业公司配合" in line)
    assert escalated.endswith("：需要物业公司配合") and ": " not in escalated


async def test_cards_of_a_handed_over_request_follow_it(
    database: Database, chat: CoreChat, clock: FrozenClock
) -> None:
    await org_with(database, WANG, QIAN, CHEN)
    wang, chen = chat.person(2001, "Wang Worker", "en"), chat.person(3001, "陈社区", "en")
    await accepted_request_days_ago(chat, clock, wang, days=1)
    await database.run(deliver_cards)

    await remove_through_staff_list(chat, chen, "Wang Worker")

    # The removed worker's card of R-000001 is edited to say it is no longer theirs, with nothing to press.
    wang_id = await database.run(lambda s: s.scalar(select(Person.id).where(Person.external_id == "2001")))
    edits = await database.run(lambda s: [m.action for m in s.scalars(select(OutboxMessage).where(
        OutboxMessage.person_id == wang_id)) if m.action["type"] == "EditText" and m.action.get("quiet")])
    assert edits and all("rq:" not in str(edit.get("keyboard")) for edit in edits)


def resident(session: Session, user_id: int, building_id: int) -> Person:
    person = Person(channel="telegram", external_id=str(user_id), chat_id=str(user_id), display_name=f"r{user_id}",
                    building_id=building_id, state_data={}, created_at=NOW)
    session.add(person)
    session.flush()
    return person


async def test_manual_and_automatic_escalations_tell_the_same_people(database: Database) -> None:
    """The filer and the neighbour who joined hear of either; the new holders get the card."""

    def escalate_both_ways(session: Session) -> list[tuple[list[str], list[str]]]:
        org = make_small_org(session)
        worker = staff(session, 2001, "Wang", Role.WORKER, org.grid)
        staff(session, 3001, "Chen", Role.COMMUNITY, org.community)
        session.expire_all()
        told = []
        for manual in (True, False):
            filer = resident(session, 10 + manual, org.building)
            neighbour = resident(session, 20 + manual, org.building)
            request = core.file_request(session, filer, core.Draft(1, "纸箱"), NOW).request
            core.join_request(session, neighbour, request.id, NOW)
            change = (core.escalate(session, worker, request.id, "需要协调", NOW) if manual
                      else core.escalate_by_system(session, request, core.NO_RESPONSE, NOW))
            assert change is not None
            names = {filer.id: "filer", neighbour.id: "neighbour"}
            told.append(([names[person.id] for person in change.residents],
                         [person.display_name for person in change.notify]))
        return told

    manual, automatic = await database.run(escalate_both_ways)
    assert manual == automatic == (["filer", "neighbour"], ["Chen"])


# --- requests filed by staff ----------------------------------------------------------------------------------


async def test_staff_filed_request_goes_to_a_colleague_and_self_accept_is_refused(
    database: Database, chat: CoreChat
) -> None:
    await org_with(database, WANG, QIAN)
    wang, qian = chat.person(2001, "Wang Worker", "en"), chat.person(2003, "钱网格员")
    await bind(chat, wang)
    await file_request(chat, wang)

    card = last_with_button(qian, "rq:acc:1")
    assert "R-000001" in card.text
    assert not any(data.startswith("rq:") for message in wang.messages for _label, data in message.buttons())
    await chat.press(wang, "rq:acc:1")
    assert "You filed R-000001 yourself" in wang.answers[-1].text
    await chat.press(wang, "rq:res:1")
    assert "You filed R-000001 yourself" in wang.answers[-1].text
    assert (await load_request(database)).status is RequestStatus.NEW
    await chat.press(wang, "rq:open:1")
    assert "Accept" not in str(wang.last.buttons()) and "Resolve" not in str(wang.last.buttons())


async def test_staff_filed_request_without_colleague_goes_to_the_level_above(database: Database) -> None:
    def file_as_the_only_worker(session: Session) -> tuple[Level, int, list[int], SmallOrg]:
        org = make_small_org(session)
        wang = staff(session, 2001, "Wang", Role.WORKER, org.grid)
        chen = staff(session, 3001, "Chen", Role.COMMUNITY, org.community)
        wang.building_id = org.building
        session.flush()
        session.expire_all()
        change = core.file_request(session, wang, core.Draft(1, "纸箱"), NOW)
        request = change.request
        assert Transition.ACCEPT not in core.available_transitions(request, wang)
        assert Transition.ACCEPT in core.available_transitions(request, chen)
        return request.level, request.unit_id, [person.id for person in change.notify], org

    level, unit_id, notified, org = await database.run(file_as_the_only_worker)
    assert (level, unit_id) == (Level.COMMUNITY, org.community)
    assert len(notified) == 1  # the community's staff, not the filer


# --- what the "me too" offer and the views show --------------------------------------------------------------


async def test_me_too_offer_shows_no_other_residents_words_or_name(database: Database, chat: CoreChat) -> None:
    await org_with(database, WANG)
    ann, visitor = chat.person(1002, "Ann Private", "en"), chat.person(1009, "Visitor", "en")
    await bind(chat, ann)
    await file_request(chat, ann, description="My neighbour in 302 keeps junk here")
    await bind(chat, visitor)  # /start b_<code> of a building the visitor does not live in

    await chat.text(visitor, "/new")
    await chat.press(visitor, visitor.last.button("Clutter"))

    offer = visitor.last
    assert "R-000001" in offer.text and "Clutter in common areas" in offer.text and "0 neighbours joined" in offer.text
    assert "302" not in offer.text and "junk" not in offer.text and "Ann" not in offer.text


@pytest.mark.parametrize("presser", ["filer", "supporter"])
async def test_forged_staff_views_give_residents_the_resident_view(
    database: Database, chat: CoreChat, presser: str
) -> None:
    await org_with(database, WANG)
    ann, bob, wang = chat.person(1002, "Ann Hidden", "en"), chat.person(1003, "Bob", "en"), chat.person(2001, "Wang")
    await bind(chat, ann)
    await bind(chat, bob)
    await file_request(chat, ann, hide=True)
    await chat.text(bob, "/new")
    await chat.press(bob, bob.last.button("Clutter"))
    await chat.press(bob, bob.last.button("Me too"))
    await staff_writes(chat, wang, "rq:note:", "Staff only: the resident is difficult")
    person = ann if presser == "filer" else bob

    await chat.press(person, "rq:open:1")
    opened = person.last
    await chat.press(person, "rq:tl:1")
    timeline = person.last

    for shown in (opened, timeline):
        assert "R-000001" in shown.text and "Staff only" not in shown.text and "difficult" not in shown.text
        assert not any(data.startswith("rq:acc") for _label, data in shown.buttons())
    assert "Resident:" not in opened.text and "Status:" in opened.text
    seen = opened.text + timeline.text
    assert presser == "filer" or ("Ann Hidden" not in seen and "Boxes" not in seen and "纸箱" not in seen)


async def test_views_follow_the_core(database: Database) -> None:
    def views(session: Session) -> dict[str, View | None]:
        org = make_small_org(session)
        worker = staff(session, 2001, "Wang", Role.WORKER, org.grid)
        other = staff(session, 2002, "Zhao", Role.WORKER, org.grid2)
        community = staff(session, 3001, "Chen", Role.COMMUNITY, org.community)
        filer = resident(session, 1, org.building)
        session.expire_all()
        request = core.file_request(session, filer, core.Draft(1, "纸箱"), NOW).request
        core.escalate(session, worker, request.id, "需要协调", NOW)
        return {name: core.view_of(session, person, request) for name, person in
                (("filer", filer), ("worker", worker), ("other", other), ("community", community))}

    assert await database.run(views) == {
        "filer": View.RESIDENT, "worker": View.STAFF, "other": None, "community": View.STAFF,
    }


async def test_resident_actions_are_offered_by_the_core(database: Database) -> None:
    def offered(session: Session) -> list[list[Transition]]:
        org = make_small_org(session)
        worker = staff(session, 2001, "Wang", Role.WORKER, org.grid)
        filer = resident(session, 1, org.building)
        session.expire_all()
        now = NOW
        request = core.file_request(session, filer, core.Draft(1, "纸箱"), now).request
        late = request.due_at + timedelta(days=1)
        seen = [core.resident_actions(request, filer, now), core.resident_actions(request, filer, late),
                core.resident_actions(request, worker, late)]
        core.resolve(session, worker, request.id, "已清理", now)
        core.confirm(session, filer, request.id, core.Outcome.FIXED, now)
        seen.append(core.resident_actions(session.get_one(Request, request.id), filer, late))
        return seen

    assert await database.run(offered) == [
        [Transition.WITHDRAW], [Transition.WITHDRAW, Transition.CHASE], [], [],
    ]
