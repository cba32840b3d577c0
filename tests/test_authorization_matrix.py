"""Who may do what: every action of the core against every role, as one table.

Each case builds a fresh small organisation, puts a request where the role would plausibly act on it (at the
role's own level for staff, at the grid for residents), calls the core use case directly and checks that it
either changed the state or was refused without changing anything. A refusal is caught inside the same
transaction, as the handlers do before they commit, so a use case that writes before it refuses is caught too.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, time, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.core import campaigns, meetings, places, rounds, volunteers
from bot.core import requests as core
from bot.core.broadcasts import Audience, BroadcastNotAllowed, Who, create_broadcast
from bot.core.bulletin import Month
from bot.core.categories import CategoryChangeRefused, Setting, set_number
from bot.core.desk_figures import DeskRefused, evaluation_for, overview_for
from bot.core.invites import InviteError, create_invite
from bot.core.request_export import RequestFilter, export_for
from bot.core.requests import View
from bot.core.team_chats import link
from bot.core.units import Unit
from bot.i18n import translator
from storage.database import Database
from storage.models import (
    Broadcast,
    Campaign,
    CampaignTarget,
    Category,
    Community,
    Department,
    Grid,
    Level,
    Meeting,
    MeetingDecision,
    MeetingMember,
    MeetingParty,
    MeetingSchedule,
    Patrol,
    Person,
    Rating,
    Request,
    RequestEvent,
    RequestStatus,
    RequestSupporter,
    Role,
    StaffInvite,
    TeamChat,
    Visit,
)
from tests.harness import CoreChat, ShownMessage
from tests.org_fixture import NOW, SmallOrg, make_small_org, staff
from tests.place_fixture import BOUNDARY, IN_THE_BOUNDARY, set_boundary
from tests.volunteer_fixture import VolunteerWorld, volunteer_snapshot, volunteer_world

CLUTTER = 1  # the category id make_small_org creates first


class Actor(enum.StrEnum):
    FILER = "resident_filer"
    NEIGHBOUR = "resident_same_building"
    OTHER_RESIDENT = "resident_of_other_building"
    WORKER = "worker_of_grid"
    OTHER_WORKER = "worker_of_other_grid"
    COMMUNITY = "community_in_area"
    OTHER_COMMUNITY = "community_outside"
    STREET = "street_in_area"
    OTHER_STREET = "street_outside"
    DISTRICT = "district"


class Action(enum.StrEnum):
    ACCEPT = "accept"
    NOTE = "note"
    RESOLVE = "resolve"
    ESCALATE = "escalate"
    RETURN = "return_down"
    REASSIGN = "reassign"
    WITHDRAW = "withdraw"
    CHASE = "chase"
    CONFIRM = "confirm"
    RATE = "rate"
    JOIN = "join"
    BROADCAST = "broadcast"
    INVITE = "invite"
    PUBLISH_POST = "publish_post"
    APPROVE_CHECK_IN = "approve_check_in"
    CLAIM_POST = "claim_post"
    RATE_SERVICE = "rate_service"
    CATEGORIES = "change_categories"
    LINK = "link_team_chat"
    RATE_AS_RESIDENT = "rate_as_resident"
    ASK_VOLUNTEERS = "ask_volunteers"
    INVITE_PARTY = "invite_party"
    SET_MEETING_TIME = "set_meeting_time"
    RECORD_ATTENDANCE = "record_attendance"
    RECORD_DECISION = "record_decision"
    REPORT_OUTCOME = "report_outcome"


Y, N = True, False
A = Actor
# The policy at a glance: one row per action, one column per role (the order of ``COLUMNS``).
COLUMNS = (A.FILER, A.NEIGHBOUR, A.OTHER_RESIDENT, A.WORKER, A.OTHER_WORKER, A.COMMUNITY, A.OTHER_COMMUNITY,
           A.STREET, A.OTHER_STREET, A.DISTRICT)
POLICY: dict[Action, tuple[bool, ...]] = {
    #                  filer neigh other worker oworker comm ocomm street ostreet district
    Action.ACCEPT:    (N,    N,    N,    Y,     N,      Y,   N,    Y,     N,      Y),
    Action.NOTE:      (N,    N,    N,    Y,     N,      Y,   N,    Y,     N,      Y),
    Action.RESOLVE:   (N,    N,    N,    Y,     N,      Y,   N,    Y,     N,      Y),
    # Nothing is above the district.
    Action.ESCALATE:  (N,    N,    N,    Y,     N,      Y,   N,    Y,     N,      N),
    # Nothing is below a grid.
    Action.RETURN:    (N,    N,    N,    N,     N,      Y,   N,    Y,     N,      Y),
    Action.REASSIGN:  (N,    N,    N,    Y,     N,      Y,   N,    Y,     N,      Y),
    Action.WITHDRAW:  (Y,    N,    N,    N,     N,      N,   N,    N,     N,      N),
    Action.CHASE:     (Y,    N,    N,    N,     N,      N,   N,    N,     N,      N),
    Action.CONFIRM:   (Y,    N,    N,    N,     N,      N,   N,    N,     N,      N),
    Action.RATE:      (Y,    N,    N,    N,     N,      N,   N,    N,     N,      N),
    # "Me too" is for neighbours: the filer has it already, and other buildings have their own requests.
    Action.JOIN:      (N,    Y,    N,    N,     N,      N,   N,    N,     N,      N),
    # Notices and invites go to the author's own area (here the filer's grid); grid workers administer nothing.
    Action.BROADCAST: (N,    N,    N,    N,     N,      Y,   N,    Y,     N,      Y),
    Action.INVITE:    (N,    N,    N,    N,     N,      Y,   N,    Y,     N,      Y),
    # Volunteers: the filer is an approved volunteer of the community, the neighbour's check-in is pending and
    # the other building's resident volunteers in the other community. Only the community's own staff publish
    # posts, approve check-ins and rate services.
    Action.PUBLISH_POST:     (N, N, N, N, N, Y, N, N, N, N),
    Action.APPROVE_CHECK_IN: (N, N, N, N, N, Y, N, N, N, N),
    Action.CLAIM_POST:       (Y, N, N, N, N, N, N, N, N, N),
    Action.RATE_SERVICE:     (N, N, N, N, N, Y, N, N, N, N),
    # Categories and their deadlines are the district's promise to every resident.
    Action.CATEGORIES: (N,   N,    N,    N,     N,      N,   N,    N,     N,      Y),
    # A grid's team chat is its own staff's: not the community above, not the district.
    Action.LINK:      (N,    N,    N,    Y,     N,      N,   N,    N,     N,      N),
    # The post's residents rate too: its community's residents, but never a volunteer their own service.
    Action.RATE_AS_RESIDENT: (N, Y, N, N, N, N, N, N, N, N),
    # The grid worker or community staff holding a request ask its community's volunteers; the levels above
    # hold no volunteers of their own.
    Action.ASK_VOLUNTEERS:   (N, N, N, Y, N, Y, N, N, N, N),
    # The three-party meeting of the filer's community, held by then; the neighbour represents the property
    # company, which owns its decision about the filer's request. Only the community's own staff invite the
    # parties, set the time and record; the owner party (or those staff) report the outcome.
    Action.INVITE_PARTY:      (N, N, N, N, N, Y, N, N, N, N),
    Action.SET_MEETING_TIME:  (N, N, N, N, N, Y, N, N, N, N),
    Action.RECORD_ATTENDANCE: (N, N, N, N, N, Y, N, N, N, N),
    Action.RECORD_DECISION:   (N, N, N, N, N, Y, N, N, N, N),
    Action.REPORT_OUTCOME:    (N, Y, N, N, N, Y, N, N, N, N),
}
CASES = [
    pytest.param(action, actor, allowed, id=f"{action.value}-{actor.value}")
    for action, row in POLICY.items()
    for actor, allowed in zip(COLUMNS, row, strict=True)
]

# Where each role would hold a request; residents act on requests as they stand after filing.
LEVEL_OF: dict[Actor, Level] = {
    A.FILER: Level.GRID, A.NEIGHBOUR: Level.GRID, A.OTHER_RESIDENT: Level.GRID,
    A.WORKER: Level.GRID, A.OTHER_WORKER: Level.GRID,
    A.COMMUNITY: Level.COMMUNITY, A.OTHER_COMMUNITY: Level.COMMUNITY,
    A.STREET: Level.STREET, A.OTHER_STREET: Level.STREET,
    A.DISTRICT: Level.DISTRICT,
}
# Who holds the request at each level on its way up (and so escalates it or resolves it there).
HOLDER_AT: dict[Level, Actor] = {
    Level.GRID: A.WORKER, Level.COMMUNITY: A.COMMUNITY, Level.STREET: A.STREET, Level.DISTRICT: A.DISTRICT,
}
LATER = NOW + timedelta(days=30)  # past every due date, so a chase is allowed
TZ = "Asia/Shanghai"


@dataclass
class World:
    org: SmallOrg
    people: dict[Actor, int]
    # Staffed units a request may be reassigned to from the in-area unit at each level.
    sibling: dict[Level, tuple[Level, int]]
    request_id: int
    volunteers: VolunteerWorld | None = None
    meeting_id: int = 0
    decision_id: int = 0

    def person(self, session: Session, actor: Actor) -> Person:
        return session.get_one(Person, self.people[actor])


def resident(session: Session, user_id: int, name: str, building_id: int) -> Person:
    person = Person(
        channel="telegram", external_id=str(user_id), chat_id=str(user_id), display_name=name, locale="en",
        state_data={}, created_at=NOW, building_id=building_id,
    )
    session.add(person)
    session.flush()
    return person


def build_world(session: Session, level: Level, status: RequestStatus) -> World:
    """The small organisation with one person per role and a request filed by ``FILER`` at ``level`` in
    ``status`` (NEW, RESOLVED or CLOSED)."""
    org = make_small_org(session)
    people = {
        A.FILER: resident(session, 1001, "Li Filer", org.building).id,
        A.NEIGHBOUR: resident(session, 1002, "Ma Neighbour", org.building).id,
        A.OTHER_RESIDENT: resident(session, 1003, "He Elsewhere", org.building2).id,
        A.WORKER: staff(session, 2001, "Wang Worker", Role.WORKER, org.grid).id,
        A.OTHER_WORKER: staff(session, 2002, "Zhao Other", Role.WORKER, org.grid2).id,
        A.COMMUNITY: staff(session, 3001, "Chen Community", Role.COMMUNITY, org.community).id,
        A.OTHER_COMMUNITY: staff(session, 3002, "Lin Community", Role.COMMUNITY, org.community2).id,
        A.STREET: staff(session, 4001, "Sun Street", Role.STREET, org.street).id,
        A.OTHER_STREET: staff(session, 4002, "Qian Street", Role.STREET, org.street2).id,
        A.DISTRICT: staff(session, 5001, "Zhou District", Role.DISTRICT, 0).id,
    }
    # Colleagues under the same parents, so that each level has a unit a request may be reassigned to.
    staff(session, 2003, "Wu Sibling", Role.WORKER, org.empty_grid)
    sibling_community = Community(code="DG-HP", name="和平社区", street_id=org.street)
    session.add(sibling_community)
    session.flush()
    staff(session, 3003, "Xu Sibling", Role.COMMUNITY, sibling_community.id)
    sibling = {
        Level.GRID: (Level.GRID, org.empty_grid),
        Level.COMMUNITY: (Level.COMMUNITY, sibling_community.id),
        Level.STREET: (Level.STREET, org.street2),
        Level.DISTRICT: (Level.STREET, org.street2),
    }
    session.flush()
    session.expire_all()  # the staff roles were added after the people were loaded
    world = World(org, people, sibling, 0)
    filer = world.person(session, A.FILER)
    world.volunteers = volunteer_world(
        session, org, filer, world.person(session, A.OTHER_RESIDENT),
        world.person(session, A.NEIGHBOUR), world.person(session, A.COMMUNITY), NOW, LATER,
    )
    world.request_id = core.file_request(session, filer, core.Draft(CLUTTER, "楼道里堆满了纸箱"), NOW).request.id
    climbed = Level.GRID
    while climbed is not level:
        core.escalate(session, world.person(session, HOLDER_AT[climbed]), world.request_id, "需要上级协调", NOW)
        climbed = core.get_request(session, world.request_id).level
    world.meeting_id, world.decision_id = meeting_world(session, world)
    if status is not RequestStatus.NEW:
        core.resolve(session, world.person(session, HOLDER_AT[level]), world.request_id, "已清理", NOW)
    if status is RequestStatus.CLOSED:
        core.confirm(session, filer, world.request_id, core.Outcome.FIXED, NOW)
    assert core.get_request(session, world.request_id).status is status
    return world


def meeting_world(session: Session, world: World) -> tuple[int, int]:
    """A meeting of the filer's community held the day after ``NOW``, the neighbour representing the property
    company, and the meeting's open decision about the filer's request, owned by the property company."""
    community = world.org.community
    session.add(MeetingMember(community_id=community, party=MeetingParty.PROPERTY, token="matrix-property",
                              person_id=world.people[A.NEIGHBOUR], invited_by_id=world.people[A.COMMUNITY],
                              created_at=NOW, joined_at=NOW))
    meeting = Meeting(community_id=community, held_at=NOW + timedelta(days=1), agenda_sent_at=NOW, attended=[])
    session.add(meeting)
    session.flush()
    decision = MeetingDecision(meeting_id=meeting.id, request_id=world.request_id, text="物业三日内清理",
                               owner=MeetingParty.PROPERTY, deadline=NOW + timedelta(days=7),
                               remind_at=NOW + timedelta(days=6), created_by_id=world.people[A.COMMUNITY],
                               created_at=NOW + timedelta(days=1))
    session.add(decision)
    session.flush()
    return meeting.id, decision.id


def meeting_snapshot(session: Session) -> tuple[object, ...]:
    """Everything a meeting action could change, as one comparable value."""
    return (
        tuple(session.execute(select(MeetingMember.id, MeetingMember.person_id).order_by(MeetingMember.id))),
        tuple(session.execute(select(MeetingSchedule.community_id, MeetingSchedule.weekday, MeetingSchedule.at))),
        tuple(tuple(attended) for attended in session.scalars(select(Meeting.attended).order_by(Meeting.id))),
        tuple(session.execute(select(MeetingDecision.id, MeetingDecision.outcome).order_by(MeetingDecision.id))),
    )


def snapshot(session: Session, request_id: int) -> tuple[Any, ...]:
    """Everything an action could change, as one comparable value."""
    session.flush()
    request = session.get_one(Request, request_id)
    session.refresh(request)
    rating = session.get(Rating, request_id)

    def count(model: Any) -> int:
        return session.scalar(select(func.count()).select_from(model)) or 0

    return (
        request.status, request.level, request.unit_id, request.assignee_id, request.supporters,
        rating.stars if rating is not None else None, count(RequestEvent), count(RequestSupporter),
        count(Broadcast), count(StaffInvite), volunteer_snapshot(session), meeting_snapshot(session), count(TeamChat),
        tuple((c.code, c.due_days, c.active, c.sort_order, tuple(sorted(c.names.items())))
              for c in session.scalars(select(Category).order_by(Category.id))),
    )


Perform = Callable[[Session, World, Person], object]
REFUSALS = (core.RequestRefused, BroadcastNotAllowed, InviteError, volunteers.VolunteerRefused,
            meetings.MeetingRefused, CategoryChangeRefused)


def _broadcast(session: Session, world: World, actor: Person) -> object:
    audience = Audience(Unit(Level.GRID, world.org.grid), Who.EVERYONE)
    return create_broadcast(session, actor, audience, "明早停水", None, LATER)


def _reassign(session: Session, world: World, actor: Person) -> object:
    level = core.get_request(session, world.request_id).level
    return core.reassign(session, actor, world.request_id, world.sibling[level], LATER)


def _vw(world: World) -> VolunteerWorld:
    assert world.volunteers is not None
    return world.volunteers


def _publish(session: Session, world: World, actor: Person) -> object:
    slot = volunteers.SlotTimes(LATER + timedelta(days=2), LATER + timedelta(days=2, hours=2))
    return volunteers.publish_post(session, actor, world.org.community, "岗", "", "", [slot], 1, LATER,
                                   "Asia/Shanghai")


def _link(session: Session, world: World, actor: Person) -> object:
    """Link a group to the filer's grid, DG-JS-01."""
    group = Person(channel="telegram", external_id="-1009001", chat_id="-1009001", display_name="工作群",
                   locale="zh_CN", state_data={}, created_at=NOW)
    session.add(group)
    session.flush()
    return link(session, actor, group, "DG-JS-01", LATER)


# Each action, and the status the request must be in for it (so that only who acts can make it fail).
ACTIONS: dict[Action, tuple[RequestStatus, Perform]] = {
    Action.ACCEPT: (RequestStatus.NEW, lambda s, w, p: core.accept(s, p, w.request_id, LATER)),
    Action.NOTE: (RequestStatus.NEW, lambda s, w, p: core.add_note(s, p, w.request_id, "已联系物业", LATER)),
    Action.RESOLVE: (RequestStatus.NEW, lambda s, w, p: core.resolve(s, p, w.request_id, "已清理", LATER)),
    Action.ESCALATE: (RequestStatus.NEW, lambda s, w, p: core.escalate(s, p, w.request_id, "需要协调", LATER)),
    Action.RETURN: (RequestStatus.NEW, lambda s, w, p: core.return_down(s, p, w.request_id, "请处理", LATER)),
    Action.REASSIGN: (RequestStatus.NEW, _reassign),
    Action.WITHDRAW: (RequestStatus.NEW, lambda s, w, p: core.withdraw(s, p, w.request_id, LATER)),
    Action.CHASE: (RequestStatus.NEW, lambda s, w, p: core.chase(s, p, w.request_id, LATER)),
    Action.CONFIRM: (
        RequestStatus.RESOLVED, lambda s, w, p: core.confirm(s, p, w.request_id, core.Outcome.FIXED, LATER)
    ),
    Action.RATE: (RequestStatus.CLOSED, lambda s, w, p: core.rate(s, p, w.request_id, 5, LATER)),
    Action.JOIN: (RequestStatus.NEW, lambda s, w, p: core.join_request(s, p, w.request_id, LATER)),
    Action.BROADCAST: (RequestStatus.NEW, _broadcast),
    Action.INVITE: (RequestStatus.NEW, lambda s, w, p: create_invite(s, p, Role.WORKER, "DG-JS-01", LATER)),
    Action.PUBLISH_POST: (RequestStatus.NEW, _publish),
    Action.APPROVE_CHECK_IN: (RequestStatus.NEW, lambda s, w, p: volunteers.decide(s, p, _vw(w).pending, True, LATER)),
    Action.CLAIM_POST: (RequestStatus.NEW, lambda s, w, p: volunteers.claim_slot(s, p, _vw(w).open_slot, LATER)),
    Action.RATE_SERVICE: (
        RequestStatus.NEW, lambda s, w, p: volunteers.rate_service(s, p, _vw(w).served_claim, 5, "好", LATER)
    ),
    Action.CATEGORIES: (
        RequestStatus.NEW, lambda s, w, p: set_number(s, p, CLUTTER, Setting.DUE_DAYS, 3, LATER)
    ),
    Action.LINK: (RequestStatus.NEW, _link),
    Action.RATE_AS_RESIDENT: (
        RequestStatus.NEW, lambda s, w, p: volunteers.rate_as_resident(s, p, _vw(w).served_claim, 4, LATER)
    ),
    Action.ASK_VOLUNTEERS: (
        RequestStatus.NEW, lambda s, w, p: core.ask_volunteers(s, p, w.request_id, "帮忙搬纸箱", LATER)
    ),
    Action.INVITE_PARTY: (
        RequestStatus.NEW, lambda s, w, p: meetings.invite(s, p, w.org.community, MeetingParty.OWNERS, LATER)
    ),
    Action.SET_MEETING_TIME: (
        RequestStatus.NEW, lambda s, w, p: meetings.set_schedule(s, p, w.org.community, 2, time(15, 0))
    ),
    Action.RECORD_ATTENDANCE: (
        RequestStatus.NEW,
        lambda s, w, p: meetings.toggle_attendance(s, p, w.meeting_id, MeetingParty.PROPERTY, LATER),
    ),
    Action.RECORD_DECISION: (
        RequestStatus.NEW,
        lambda s, w, p: meetings.add_decision(s, p, w.meeting_id, w.request_id, "业委会监督整改",
                                              MeetingParty.OWNERS, LATER + timedelta(days=7), LATER),
    ),
    Action.REPORT_OUTCOME: (
        RequestStatus.NEW, lambda s, w, p: meetings.report_outcome(s, p, w.decision_id, "纸箱已清走", LATER)
    ),
}


@dataclass
class Result:
    refused: BaseException | None
    before: tuple[Any, ...]
    after: tuple[Any, ...]


def attempt(session: Session, action: Action, actor: Actor) -> Result:
    status, perform = ACTIONS[action]
    world = build_world(session, LEVEL_OF[actor], status)
    before = snapshot(session, world.request_id)
    refused: BaseException | None = None
    try:
        perform(session, world, world.person(session, actor))
    except REFUSALS as error:
        refused = error
    return Result(refused, before, snapshot(session, world.request_id))


def test_policy_covers_every_action_and_role() -> None:
    assert set(POLICY) == set(Action) == set(ACTIONS)
    assert set(COLUMNS) == set(Actor)


@pytest.mark.parametrize(("action", "actor", "allowed"), CASES)
async def test_authorization(database: Database, action: Action, actor: Actor, allowed: bool) -> None:
    result = await database.run(lambda session: attempt(session, action, actor))
    if allowed:
        assert result.refused is None, f"{actor} was refused {action}: {result.refused!r}"
        assert result.after != result.before, f"{action} by {actor} changed nothing"
    else:
        assert result.refused is not None, f"{actor} was allowed {action}"
        assert result.after == result.before, f"{action} by {actor} was refused but changed {result.before} -> "\
            f"{result.after}"


@pytest.mark.parametrize("actor", [A.WORKER, A.COMMUNITY], ids=lambda actor: actor.value)
async def test_reassign_only_to_units_under_the_same_parent(database: Database, actor: Actor) -> None:
    """The keyboard offers only sibling units; a forged button to a unit elsewhere is refused in the core."""

    def forge(session: Session) -> Result:
        world = build_world(session, LEVEL_OF[actor], RequestStatus.NEW)
        elsewhere = {
            Level.GRID: (Level.GRID, world.org.grid2), Level.COMMUNITY: (Level.COMMUNITY, world.org.community2),
        }
        before = snapshot(session, world.request_id)
        try:
            core.reassign(session, world.person(session, actor), world.request_id, elsewhere[LEVEL_OF[actor]], LATER)
        except core.RequestRefused as error:
            return Result(error, before, snapshot(session, world.request_id))
        return Result(None, before, snapshot(session, world.request_id))

    result = await database.run(forge)
    assert result.refused is not None
    assert result.after == result.before


async def test_district_may_reassign_anywhere(database: Database) -> None:
    """District staff may send a request held at a grid to a grid in another community."""

    def move(session: Session) -> tuple[tuple[Level, int], tuple[Level, int]]:
        world = build_world(session, Level.GRID, RequestStatus.NEW)
        target = (Level.GRID, world.org.grid2)
        core.reassign(session, world.person(session, A.DISTRICT), world.request_id, target, LATER)
        request = core.get_request(session, world.request_id)
        return (request.level, request.unit_id), target

    now_at, target = await database.run(move)
    assert now_at == target


# --- views: what the staff "open" and "timeline" callbacks show to whom -----------------------------------------

# The request waits at the filer's grid and the neighbour has joined it ("me too").
VIEWS: dict[Actor, View | None] = {
    A.FILER: View.RESIDENT, A.NEIGHBOUR: View.RESIDENT, A.OTHER_RESIDENT: None,
    A.WORKER: View.STAFF, A.OTHER_WORKER: None, A.COMMUNITY: View.STAFF, A.OTHER_COMMUNITY: None,
    A.STREET: View.STAFF, A.OTHER_STREET: None, A.DISTRICT: View.STAFF,
}


def world_with_supporter_and_note(session: Session) -> World:
    world = build_world(session, Level.GRID, RequestStatus.NEW)
    core.join_request(session, world.person(session, A.NEIGHBOUR), world.request_id, NOW)
    core.add_note(session, world.person(session, A.WORKER), world.request_id, "居民情绪激动，注意沟通", NOW)
    return world


async def test_views_policy_covers_every_role() -> None:
    assert set(VIEWS) == set(Actor)


@pytest.mark.parametrize(("actor", "view"), VIEWS.items(), ids=lambda value: str(value))
async def test_view_of_each_role(database: Database, actor: Actor, view: View | None) -> None:
    def seen(session: Session) -> View | None:
        world = world_with_supporter_and_note(session)
        return core.view_of(session, world.person(session, actor), core.get_request(session, world.request_id))

    assert await database.run(seen) == view


@pytest.mark.parametrize("actor", [A.FILER, A.NEIGHBOUR], ids=lambda actor: actor.value)
async def test_forged_staff_view_callbacks_give_residents_the_resident_view(
    database: Database, chat: CoreChat, actor: Actor
) -> None:
    world = await database.run(world_with_supporter_and_note)
    presser = chat.person(1001 if actor is A.FILER else 1002, "presser", "en")

    await chat.press(presser, f"rq:open:{world.request_id}", ShownMessage(1, ""))
    opened = presser.last.text
    await chat.press(presser, f"rq:tl:{world.request_id}", ShownMessage(1, ""))
    timeline = presser.last.text

    assert "Status:" in opened and "Timeline of" in timeline
    for shown in (opened, timeline):
        assert "居民情绪激动" not in shown  # the staff note
        assert "Resident:" not in shown  # the card's resident line
    if actor is A.NEIGHBOUR:
        assert "Li Filer" not in opened + timeline and "纸箱" not in opened + timeline


async def test_forged_staff_view_callback_by_an_outsider_shows_nothing(database: Database, chat: CoreChat) -> None:
    world = await database.run(world_with_supporter_and_note)
    outsider = chat.person(1003, "He Elsewhere", "en")

    await chat.press(outsider, f"rq:open:{world.request_id}", ShownMessage(1, ""))

    # A newcomer's first contact brings the privacy notice; nothing else may reach them.
    about_the_request = [message for message in outsider.messages if not message.text.startswith("🔒")]
    assert about_the_request == [] and "There is no request" in outsider.answers[-1].text


# --- grid workers' rounds: leads and visits only for the buildings of one's own grid ----------------------------


class RoundsAction(enum.StrEnum):
    LEAD = "file_lead"
    VISIT = "record_visit"
    SOLVE_ON_SPOT = "solve_lead_on_the_spot"
    PATROL = "start_patrol"


ROUNDS_POLICY: dict[RoundsAction, tuple[bool, ...]] = {
    #                         filer neigh other worker oworker comm ocomm street ostreet district
    RoundsAction.LEAD:          (N,    N,    N,    Y,     N,      N,   N,    N,     N,      N),
    RoundsAction.VISIT:         (N,    N,    N,    Y,     N,      N,   N,    N,     N,      N),
    # Only the worker who found the lead closes it there and then; everyone else handles it as a request.
    RoundsAction.SOLVE_ON_SPOT: (N,    N,    N,    Y,     N,      N,   N,    N,     N,      N),
    # Patrols are for grid workers (the other worker patrols their own grid).
    RoundsAction.PATROL:        (N,    N,    N,    Y,     Y,      N,   N,    N,     N,      N),
}


def _lead_by_worker(session: Session, world: World) -> int:
    worker = world.person(session, A.WORKER)
    draft = rounds.LeadDraft(world.org.building, CLUTTER, "楼顶私搭乱建")
    return rounds.file_lead(session, worker, draft, rounds.LeadOutcome.TAKE, "", NOW).request.id


def _rounds_counts(session: Session) -> tuple[Any, ...]:
    session.flush()

    def count(model: Any) -> int:
        return session.scalar(select(func.count()).select_from(model)) or 0

    closed = session.scalar(select(func.count()).where(Request.status == RequestStatus.CLOSED)) or 0
    return count(Request), count(Visit), count(Patrol), count(RequestEvent), closed


def attempt_rounds(session: Session, action: RoundsAction, actor: Actor) -> Result:
    world = build_world(session, Level.GRID, RequestStatus.NEW)
    lead_id = _lead_by_worker(session, world)
    person = world.person(session, actor)
    perform: dict[RoundsAction, Callable[[], object]] = {
        RoundsAction.LEAD: lambda: rounds.file_lead(
            session, person, rounds.LeadDraft(world.org.building, CLUTTER, "飞线充电"), rounds.LeadOutcome.SPOT,
            "已劝导拆除", LATER),
        RoundsAction.VISIT: lambda: rounds.record_visit(
            session, person, rounds.VisitDraft(world.org.building, "2-301", "张阿姨", "身体好"), LATER),
        RoundsAction.SOLVE_ON_SPOT: lambda: core.solve_on_spot(session, person, lead_id, "已清理", LATER),
        RoundsAction.PATROL: lambda: rounds.start_patrol(session, person, LATER),
    }
    before = _rounds_counts(session)
    refused: BaseException | None = None
    try:
        perform[action]()
    except core.RequestRefused as error:
        refused = error
    return Result(refused, before, _rounds_counts(session))


@pytest.mark.parametrize(("action", "actor", "allowed"), [
    pytest.param(action, actor, allowed, id=f"{action.value}-{actor.value}")
    for action, row in ROUNDS_POLICY.items() for actor, allowed in zip(COLUMNS, row, strict=True)
])
async def test_rounds_authorization(database: Database, action: RoundsAction, actor: Actor, allowed: bool) -> None:
    result = await database.run(lambda session: attempt_rounds(session, action, actor))
    if allowed:
        assert result.refused is None, f"{actor} was refused {action}: {result.refused!r}"
        assert result.after != result.before, f"{action} by {actor} changed nothing"
    else:
        assert result.refused is not None, f"{actor} was allowed {action}"
        assert result.after == result.before, f"{action} by {actor} was refused but changed something"


async def test_a_residents_request_cannot_be_closed_as_solved_on_the_spot(database: Database) -> None:
    def forge(session: Session) -> Result:
        world = build_world(session, Level.GRID, RequestStatus.NEW)
        before = _rounds_counts(session)
        try:
            core.solve_on_spot(session, world.person(session, A.WORKER), world.request_id, "已清理", LATER)
        except core.RequestRefused as error:
            return Result(error, before, _rounds_counts(session))
        return Result(None, before, _rounds_counts(session))

    result = await database.run(forge)
    assert result.refused is not None and result.after == result.before


# --- a request about somewhere else: who holds it is the grid of the place, not of the filer's building -------

# A resident of 建设一网格 reports a location inside 人民一网格's boundary (nearer a building of their own grid):
# only 人民一网格's side may act on it and see it as staff.
ELSEWHERE_POLICY: dict[Actor, tuple[bool, View | None]] = {
    #                  accept  view
    A.FILER: (False, View.RESIDENT),
    A.NEIGHBOUR: (False, None),
    A.OTHER_RESIDENT: (False, None),
    A.WORKER: (False, None),
    A.OTHER_WORKER: (True, View.STAFF),
    A.COMMUNITY: (False, None),
    A.OTHER_COMMUNITY: (False, View.STAFF),
    A.STREET: (False, None),
    A.OTHER_STREET: (False, View.STAFF),
    A.DISTRICT: (True, View.STAFF),
}


def _filed_elsewhere(session: Session) -> World:
    world = build_world(session, Level.GRID, RequestStatus.NEW)
    grid2 = session.get_one(Grid, world.org.grid2)
    set_boundary(grid2, BOUNDARY)
    spot = places.locate(session, *IN_THE_BOUNDARY)
    assert spot is not None
    filer = world.person(session, A.FILER)
    filed = core.file_request(session, filer, core.Draft(CLUTTER, "巷子里违章搭建"), NOW, spot=spot)
    world.request_id = filed.request.id
    return world


def test_elsewhere_policy_covers_every_role() -> None:
    assert set(ELSEWHERE_POLICY) == set(Actor)


@pytest.mark.parametrize(("actor", "expected"), ELSEWHERE_POLICY.items(), ids=[a.value for a in ELSEWHERE_POLICY])
async def test_a_request_about_another_grid_is_that_grids(
    database: Database, actor: Actor, expected: tuple[bool, View | None]
) -> None:
    may_accept, view = expected

    def attempt_accept(session: Session) -> tuple[View | None, Result]:
        world = _filed_elsewhere(session)
        person = world.person(session, actor)
        seen = core.view_of(session, person, core.get_request(session, world.request_id))
        before = snapshot(session, world.request_id)
        refused: BaseException | None = None
        try:
            core.accept(session, person, world.request_id, NOW)
        except REFUSALS as error:
            refused = error
        return seen, Result(refused, before, snapshot(session, world.request_id))

    seen, result = await database.run(attempt_accept)
    assert seen is view
    if may_accept:
        assert result.refused is None and result.after != result.before
    else:
        assert result.refused is not None and result.after == result.before


# --- focused campaigns: opened by staff for their area, targets recorded only by the grid's own worker ------------


class CampaignAction(enum.StrEnum):
    OPEN = "open_campaign_for_own_area"
    ADD_TARGET = "add_target_to_the_communitys_campaign"
    RECORD = "record_target_of_the_grid"


CAMPAIGN_POLICY: dict[CampaignAction, tuple[bool, ...]] = {
    #                           filer neigh other worker oworker comm ocomm street ostreet district
    CampaignAction.OPEN:       (N,    N,    N,    N,     N,      Y,   Y,    Y,     Y,      Y),
    # The community's campaign: its owner, and the street and district above it.
    CampaignAction.ADD_TARGET: (N,    N,    N,    N,     N,      Y,   N,    Y,     N,      Y),
    CampaignAction.RECORD:     (N,    N,    N,    Y,     N,      N,   N,    N,     N,      N),
}


def _campaign_counts(session: Session) -> tuple[Any, ...]:
    session.flush()
    recorded = session.scalar(select(func.count()).where(CampaignTarget.recorded_at.is_not(None))) or 0
    campaigns_count = session.scalar(select(func.count()).select_from(Campaign)) or 0
    targets = session.scalar(select(func.count()).select_from(CampaignTarget)) or 0
    return campaigns_count, targets, recorded


def attempt_campaign(session: Session, action: CampaignAction, actor: Actor) -> Result:
    world = build_world(session, Level.GRID, RequestStatus.NEW)
    owner = world.person(session, A.COMMUNITY)
    end = date(2026, 12, 15)
    campaign = campaigns.open_campaign(session, owner, "飞线充电整治", CLUTTER, end, LATER, TZ)
    target_in_grid = campaigns.add_targets(session, owner, campaign.id, ["DG-JS-01-B1"])
    assert target_in_grid.added == 1
    target = session.scalars(select(CampaignTarget)).one()
    person = world.person(session, actor)
    perform: dict[CampaignAction, Callable[[], object]] = {
        CampaignAction.OPEN: lambda: campaigns.open_campaign(session, person, "占道经营整治", CLUTTER, end, LATER, TZ),
        CampaignAction.ADD_TARGET: lambda: campaigns.add_targets(session, person, campaign.id, ["DG-JS-02-B1"]),
        CampaignAction.RECORD: lambda: campaigns.record_target(session, person, target.id, True, "photo-1", "", LATER),
    }
    before = _campaign_counts(session)
    refused: BaseException | None = None
    try:
        perform[action]()
    except core.RequestRefused as error:
        refused = error
    return Result(refused, before, _campaign_counts(session))


@pytest.mark.parametrize(("action", "actor", "allowed"), [
    pytest.param(action, actor, allowed, id=f"{action.value}-{actor.value}")
    for action, row in CAMPAIGN_POLICY.items() for actor, allowed in zip(COLUMNS, row, strict=True)
])
async def test_campaign_authorization(database: Database, action: CampaignAction, actor: Actor,
                                      allowed: bool) -> None:
    result = await database.run(lambda session: attempt_campaign(session, action, actor))
    if allowed:
        assert result.refused is None, f"{actor} was refused {action}: {result.refused!r}"
        assert result.after != result.before, f"{action} by {actor} changed nothing"
    else:
        assert result.refused is not None, f"{actor} was allowed {action}"
        assert result.after == result.before, f"{action} by {actor} was refused but changed something"


async def test_a_forged_target_button_by_a_worker_of_another_grid_changes_nothing(database: Database,
                                                                                  chat: CoreChat) -> None:
    def forge(session: Session) -> int:
        world = build_world(session, Level.GRID, RequestStatus.NEW)
        owner = world.person(session, A.COMMUNITY)
        campaign = campaigns.open_campaign(session, owner, "飞线充电整治", CLUTTER, date(2026, 12, 15), LATER, TZ)
        campaigns.add_targets(session, owner, campaign.id, ["DG-JS-01-B1"])
        return session.scalars(select(CampaignTarget.id)).one()

    target_id = await database.run(forge)
    before = await database.run(_campaign_counts)
    other_worker = chat.person(2002, "Zhao Other")
    await chat.press(other_worker, f"ca:y:{target_id}", ShownMessage(1, ""))
    refusal = translator("zh_CN", TZ)._("This target is not in your grid.")
    assert refusal != "This target is not in your grid."
    assert other_worker.answers[-1].text == refusal and other_worker.answers[-1].alert
    assert await database.run(_campaign_counts) == before


# --- departments (分流): the holder dispatches, only the department it went to acts --------------------------------


class DeptActor(enum.StrEnum):
    DEPARTMENT = "department_dispatched_to"
    OTHER_DEPARTMENT = "department_other"


DEPARTMENT_ACTORS = (*COLUMNS, *DeptActor)


class DeptAction(enum.StrEnum):
    DISPATCH = "dispatch"  # the request is held by the street
    DISPATCH_NOT_HELD = "dispatch_held_by_community"  # still at the community: nobody above it may dispatch
    ACCEPT = "department_accept"  # the request is with the department from here on
    NOTE = "department_note"
    DONE = "department_done"
    HAND_BACK = "hand_back"


DEPARTMENT_POLICY: dict[DeptAction, tuple[bool, ...]] = {
    #                           filer neigh other worker oworker comm ocomm street ostreet district dept odept
    DeptAction.DISPATCH:          (N,   N,    N,    N,     N,      N,   N,    Y,     N,      Y,       N,   N),
    DeptAction.DISPATCH_NOT_HELD: (N,   N,    N,    N,     N,      N,   N,    N,     N,      N,       N,   N),
    DeptAction.ACCEPT:            (N,   N,    N,    N,     N,      N,   N,    N,     N,      N,       Y,   N),
    DeptAction.NOTE:              (N,   N,    N,    N,     N,      N,   N,    N,     N,      N,       Y,   N),
    DeptAction.DONE:              (N,   N,    N,    N,     N,      N,   N,    N,     N,      N,       Y,   N),
    DeptAction.HAND_BACK:         (N,   N,    N,    N,     N,      N,   N,    N,     N,      N,       Y,   N),
}
# Who sees a request while a department holds it: the department, and the street and district above the grid.
DEPARTMENT_VIEWS: dict[Actor | DeptActor, View | None] = {
    A.FILER: View.RESIDENT, A.NEIGHBOUR: None, A.OTHER_RESIDENT: None, A.WORKER: View.STAFF,
    A.OTHER_WORKER: None, A.COMMUNITY: View.STAFF, A.OTHER_COMMUNITY: None, A.STREET: View.STAFF,
    A.OTHER_STREET: None, A.DISTRICT: View.STAFF, DeptActor.DEPARTMENT: View.STAFF, DeptActor.OTHER_DEPARTMENT: None,
}
DEPARTMENT_CASES = [
    pytest.param(action, actor, allowed, id=f"{action.value}-{actor.value}")
    for action, row in DEPARTMENT_POLICY.items()
    for actor, allowed in zip(DEPARTMENT_ACTORS, row, strict=True)
]


@dataclass
class DepartmentWorld:
    world: World
    department: int
    people: dict[Actor | DeptActor, int]

    def person(self, session: Session, actor: Actor | DeptActor) -> Person:
        return session.get_one(Person, self.people[actor])


def department_world(session: Session, held_at: Level, dispatched: bool) -> DepartmentWorld:
    world = build_world(session, held_at, RequestStatus.NEW)
    own = Department(code="DG-CG", name="东关城管中队", street_id=world.org.street, active=True)
    other = Department(code="QU-GD", name="区供电公司", street_id=None, active=True)
    session.add_all([own, other])
    session.flush()
    people: dict[Actor | DeptActor, int] = {
        **world.people,
        DeptActor.DEPARTMENT: staff(session, 6001, "Qian Squad", Role.DEPARTMENT, own.id).id,
        DeptActor.OTHER_DEPARTMENT: staff(session, 6002, "Zhou Power", Role.DEPARTMENT, other.id).id,
    }
    session.flush()
    session.expire_all()
    if dispatched:
        core.dispatch(session, world.person(session, A.STREET), world.request_id, own.id, "请清理占道摊位", NOW)
    return DepartmentWorld(world, own.id, people)


DEPARTMENT_ACTIONS: dict[DeptAction, tuple[Level, bool, Callable[[Session, DepartmentWorld, Person], object]]] = {
    DeptAction.DISPATCH: (Level.STREET, False, lambda s, w, p: core.dispatch(
        s, p, w.world.request_id, w.department, "请清理", LATER)),
    DeptAction.DISPATCH_NOT_HELD: (Level.COMMUNITY, False, lambda s, w, p: core.dispatch(
        s, p, w.world.request_id, w.department, "请清理", LATER)),
    DeptAction.ACCEPT: (Level.STREET, True, lambda s, w, p: core.accept(s, p, w.world.request_id, LATER)),
    DeptAction.NOTE: (Level.STREET, True, lambda s, w, p: core.add_note(s, p, w.world.request_id, "已到场", LATER)),
    DeptAction.DONE: (Level.STREET, True, lambda s, w, p: core.department_done(
        s, p, w.world.request_id, "已清理", LATER)),
    DeptAction.HAND_BACK: (Level.STREET, True, lambda s, w, p: core.hand_back(
        s, p, w.world.request_id, "不属于本部门", LATER)),
}


def test_department_policy_covers_every_action_and_role() -> None:
    assert set(DEPARTMENT_POLICY) == set(DeptAction) == set(DEPARTMENT_ACTIONS)
    assert set(DEPARTMENT_VIEWS) == set(DEPARTMENT_ACTORS)


@pytest.mark.parametrize(("action", "actor", "allowed"), DEPARTMENT_CASES)
async def test_department_authorization(
    database: Database, action: DeptAction, actor: Actor | DeptActor, allowed: bool
) -> None:
    held_at, dispatched, perform = DEPARTMENT_ACTIONS[action]

    def run(session: Session) -> Result:
        world = department_world(session, held_at, dispatched)
        before = snapshot(session, world.world.request_id)
        refused: BaseException | None = None
        try:
            perform(session, world, world.person(session, actor))
        except REFUSALS as error:
            refused = error
        return Result(refused, before, snapshot(session, world.world.request_id))

    result = await database.run(run)
    if allowed:
        assert result.refused is None and result.after != result.before
    else:
        assert result.refused is not None and result.after == result.before


@pytest.mark.parametrize(("actor", "view"), DEPARTMENT_VIEWS.items(), ids=[a.value for a in DEPARTMENT_VIEWS])
async def test_who_sees_department_work(database: Database, actor: Actor | DeptActor, view: View | None) -> None:
    def seen(session: Session) -> View | None:
        world = department_world(session, Level.STREET, dispatched=True)
        request = core.get_request(session, world.world.request_id)
        assert request.level is Level.DEPARTMENT
        return core.view_of(session, world.person(session, actor), request)

    assert await database.run(seen) is view


# --- the desk's figures and request lists: admins whose area holds the one asked for ------------------------


class DeskAction(enum.StrEnum):
    OVERVIEW = "overview_of_the_community"
    EVALUATION = "evaluation_of_the_street"
    EXPORT = "export_of_the_community"
    DISTRICT_OVERVIEW = "overview_of_the_district"


DESK_POLICY: dict[DeskAction, tuple[bool, ...]] = {
    #                               filer neigh other worker oworker comm ocomm street ostreet district
    DeskAction.OVERVIEW:           (N,    N,    N,    N,     N,      Y,   N,    Y,     N,      Y),
    DeskAction.EVALUATION:         (N,    N,    N,    N,     N,      N,   N,    Y,     N,      Y),
    DeskAction.EXPORT:             (N,    N,    N,    N,     N,      Y,   N,    Y,     N,      Y),
    DeskAction.DISTRICT_OVERVIEW:  (N,    N,    N,    N,     N,      N,   N,    N,     N,      Y),
}


def attempt_desk(session: Session, action: DeskAction, actor: Actor) -> DeskRefused | None:
    world = build_world(session, Level.GRID, RequestStatus.NEW)
    person = world.person(session, actor)
    community, street = Unit(Level.COMMUNITY, world.org.community), Unit(Level.STREET, world.org.street)
    t = translator("en", TZ)
    perform: dict[DeskAction, Callable[[], object]] = {
        DeskAction.OVERVIEW: lambda: overview_for(session, person, community, LATER, TZ),
        DeskAction.EVALUATION: lambda: evaluation_for(session, person, street, Month(2026, 10), TZ),
        DeskAction.EXPORT: lambda: list(export_for(session, person, RequestFilter(community), t, True)[1]),
        DeskAction.DISTRICT_OVERVIEW: lambda: overview_for(session, person, Unit(Level.DISTRICT, 0), LATER, TZ),
    }
    try:
        perform[action]()
    except DeskRefused as error:
        return error
    return None


@pytest.mark.parametrize(("action", "actor", "allowed"), [
    pytest.param(action, actor, allowed, id=f"{action.value}-{actor.value}")
    for action, row in DESK_POLICY.items() for actor, allowed in zip(COLUMNS, row, strict=True)
])
async def test_desk_authorization(database: Database, action: DeskAction, actor: Actor, allowed: bool) -> None:
    refused = await database.run(lambda session: attempt_desk(session, action, actor))
    assert (refused is None) is allowed, f"{action} by {actor}: {refused!r}"
    if refused is not None:
        assert translator("zh_CN", TZ)._(refused.message) != refused.message  # a refusal in the reader's language
