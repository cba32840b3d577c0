"""The life of a micro-request: filing, handling up and down the ladder, and the resident's verdict.

Every use case takes the session, the acting person and ``now``, changes the request only along a transition
allowed by ``TRANSITIONS``, writes a ``RequestEvent`` for it, and returns a ``Change`` naming who hears of it.
When the change is not allowed nothing is written and ``RequestRefused`` says why, as an English message id
that the caller translates and fills with ``params``.

Every move of a request to another unit (escalating, returning, reassigning, reopening, handing over when a
worker leaves) goes through ``_move``, which alone decides the new holder, the fresh timers, the event and who
is told, so a move added later behaves like the others.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Select, and_, bindparam, exists, func, insert, or_, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session, lazyload

from bot.core.categories import DEFAULT_ESCALATE_AFTER_HOURS, DEFAULT_REMIND_AFTER_HOURS, active_categories
from bot.core.ladder import Holder as Unit
from bot.core.ladder import (
    has_staff,
    level_below,
    request_unit,
    sibling_units,
    staffed_unit_from,
    unit_above,
    unit_exists,
)
from bot.core.places import Spot, spot_of_building
from bot.core.roles import is_district_staff
from bot.core.staff import staff_of_unit
from bot.core.units import DISTRICT, LEVEL_OF_ROLE, ROLE_OF_LEVEL
from bot.core.units import LEVEL_MODEL as UNIT_MODEL
from bot.core.volunteers import approved_volunteers, volunteer_of
from bot.core.workdays import calendar_of
from bot.i18n import N_
from storage.models import (
    OPEN_STATUSES,
    Building,
    Category,
    Department,
    EventKind,
    Level,
    OutboxMessage,
    OutboxStatus,
    Person,
    Place,
    Rating,
    Request,
    RequestEvent,
    RequestPhoto,
    RequestStatus,
    RequestSupporter,
    StaffRole,
    Volunteer,
    VolunteerStatus,
    table_of,
)

MAX_DESCRIPTION = 2000
MAX_PHOTOS = 3
MAX_STAFF_TEXT = 1000
DEFAULT_DUE_DAYS = 7
# The longest deadline a street or the district may give a department, in working days.
MAX_DEPARTMENT_DAYS = 30
DUPLICATE_WINDOW = timedelta(days=7)
# A resident may chase a request once a day; more would only train staff to ignore it.
CHASE_INTERVAL = timedelta(hours=24)
CODE_PATTERN = re.compile(r"^\s*R-?0*(\d{1,9})\s*$", re.IGNORECASE)


class Outcome(enum.StrEnum):
    """The resident's verdict on a resolution."""

    FIXED = "fixed"
    PARTLY = "partly"
    NOT_FIXED = "not_fixed"


class Transition(enum.StrEnum):
    ACCEPT = "accept"
    NOTE = "note"
    RESOLVE = "resolve"
    ESCALATE = "escalate"
    RETURN = "return"
    REASSIGN = "reassign"
    WITHDRAW = "withdraw"
    CHASE = "chase"
    JOIN = "join"
    CONFIRM = "confirm"
    REOPEN = "reopen"
    RATE = "rate"
    EXPIRE = "expire"  # the system closes a resolution the resident never answered
    HAND_OVER = "hand_over"  # the worker holding it left: it goes to whoever remains
    SOLVE_ON_SPOT = "solve_on_spot"  # the worker who found a lead solved it there and then
    ASK_HELP = "ask_help"  # its holder asks the community's volunteers to help
    HELP = "help"  # a volunteer says they will help
    MEETING = "meeting"  # the three-party meeting decided on it, or its decision's outcome came in
    DISPATCH = "dispatch"  # 分流: the street or district hands it to a department, with an instruction
    DEPARTMENT_DONE = "department_done"  # the department did the work: back to the dispatcher to confirm
    HAND_BACK = "hand_back"  # the department gives it back, with a reason


@dataclass(frozen=True)
class Rule:
    allowed_from: frozenset[RequestStatus]
    to: RequestStatus | None  # None: the status stays as it is


STAFF_TRANSITIONS = (
    Transition.ACCEPT, Transition.RESOLVE, Transition.ESCALATE, Transition.RETURN, Transition.NOTE,
    Transition.REASSIGN, Transition.DISPATCH, Transition.DEPARTMENT_DONE, Transition.HAND_BACK,
)
# The levels that hand requests to departments, and what a department may do with one it holds.
DISPATCHING_LEVELS = frozenset({Level.STREET, Level.DISTRICT})
DEPARTMENT_TRANSITIONS = frozenset({Transition.ACCEPT, Transition.NOTE, Transition.DEPARTMENT_DONE,
                                    Transition.HAND_BACK})
_OPEN = frozenset(OPEN_STATUSES)
# The state machine: every status change of a request goes through this table and nowhere else.
TRANSITIONS: dict[Transition, Rule] = {
    Transition.ACCEPT: Rule(frozenset({RequestStatus.NEW}), RequestStatus.ACCEPTED),
    Transition.NOTE: Rule(_OPEN, None),
    Transition.RESOLVE: Rule(_OPEN, RequestStatus.RESOLVED),
    Transition.ESCALATE: Rule(_OPEN, RequestStatus.NEW),
    Transition.RETURN: Rule(_OPEN, RequestStatus.NEW),
    Transition.REASSIGN: Rule(_OPEN, RequestStatus.NEW),
    Transition.WITHDRAW: Rule(frozenset({RequestStatus.NEW}), RequestStatus.WITHDRAWN),
    Transition.CHASE: Rule(_OPEN, None),
    Transition.JOIN: Rule(_OPEN, None),
    Transition.CONFIRM: Rule(frozenset({RequestStatus.RESOLVED}), RequestStatus.CLOSED),
    Transition.REOPEN: Rule(frozenset({RequestStatus.RESOLVED}), RequestStatus.NEW),
    Transition.RATE: Rule(frozenset({RequestStatus.CLOSED}), None),
    Transition.EXPIRE: Rule(frozenset({RequestStatus.RESOLVED}), RequestStatus.CLOSED),
    Transition.HAND_OVER: Rule(_OPEN, RequestStatus.NEW),
    Transition.SOLVE_ON_SPOT: Rule(_OPEN, RequestStatus.CLOSED),
    Transition.ASK_HELP: Rule(_OPEN, None),
    Transition.HELP: Rule(_OPEN, None),
    Transition.MEETING: Rule(_OPEN | {RequestStatus.RESOLVED, RequestStatus.CLOSED}, None),
    Transition.DISPATCH: Rule(_OPEN, RequestStatus.NEW),
    Transition.DEPARTMENT_DONE: Rule(_OPEN, RequestStatus.NEW),
    Transition.HAND_BACK: Rule(_OPEN, RequestStatus.NEW),
}
# What the resident who filed a request may do with it, offered on their view of it.
RESIDENT_TRANSITIONS = (Transition.WITHDRAW, Transition.CHASE)
# Staff who filed a request do not handle it themselves: a colleague or the level above does.
NOT_BY_FILER = frozenset({Transition.ACCEPT, Transition.RESOLVE, Transition.DEPARTMENT_DONE})
# Moves the filer and the neighbours who joined hear of; a sideways reassignment is staff's own routing and a
# reopening is the filer's own doing.
MOVES_TOLD_TO_RESIDENTS = frozenset({Transition.ESCALATE, Transition.RETURN, Transition.HAND_OVER})
# Why the system moved or closed a request: stored as message ids on the event, shown in the reader's language.
NO_RESPONSE = N_("no response")
OVERDUE = N_("overdue")
NO_ANSWER = N_("no answer")
WORKER_LEFT = N_("the worker handling it left")
SOLVED_ON_SPOT = N_("solved on the spot")

# Why a transition is refused in a status: specific cases first, then one reason per status.
_REFUSED_IN: dict[tuple[Transition, RequestStatus], str] = {
    (Transition.ACCEPT, RequestStatus.ACCEPTED): N_("{code} was already accepted by {worker}."),
    (Transition.WITHDRAW, RequestStatus.ACCEPTED): N_(
        "{code} is already being handled and can no longer be withdrawn."
    ),
    (Transition.CONFIRM, RequestStatus.NEW): N_("{code} has not been resolved yet."),
    (Transition.CONFIRM, RequestStatus.ACCEPTED): N_("{code} has not been resolved yet."),
    (Transition.CONFIRM, RequestStatus.CLOSED): N_("You already answered for {code}. Thank you."),
    (Transition.REOPEN, RequestStatus.CLOSED): N_("You already answered for {code}. Thank you."),
    (Transition.RATE, RequestStatus.RESOLVED): N_("Please first tell us whether {code} is fixed."),
}
_REFUSED_STATUS: dict[RequestStatus, str] = {
    RequestStatus.NEW: N_("{code} is still waiting to be accepted."),
    RequestStatus.ACCEPTED: N_("{code} is still being handled."),
    RequestStatus.RESOLVED: N_("{code} is already resolved and waits for the resident's answer."),
    RequestStatus.CLOSED: N_("{code} is closed."),
    RequestStatus.WITHDRAWN: N_("{code} was withdrawn by the resident."),
}


class RequestRefused(Exception):
    """A use case that may not happen; ``reason`` is an English message id, ``params`` fill it in.

    Datetime params are meant to be shown as dates in the reader's language.
    """

    def __init__(self, reason: str, **params: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.params = params


@dataclass(frozen=True)
class Draft:
    """What a resident entered while filing, before it becomes a request."""

    category_id: int
    description: str
    photo_ids: tuple[str, ...] = ()
    latitude: float | None = None
    longitude: float | None = None
    hide_identity: bool = False


class View(enum.StrEnum):
    """Which view of a request someone may see."""

    STAFF = "staff"  # the card: the resident's name unless hidden, staff notes
    RESIDENT = "resident"  # status, holder and the timeline without staff notes


@dataclass
class Change:
    """What a use case did: the request as it is now, the staff who should hear of it (``notify``), and the
    residents to tell (``residents``: the filer and the neighbours who joined, for moves they hear of)."""

    request: Request
    notify: list[Person] = field(default_factory=list)
    residents: list[Person] = field(default_factory=list)
    # Staff who no longer hold it but should hear how it went: the worker whose resolution was not accepted.
    informed: list[Person] = field(default_factory=list)


@dataclass(frozen=True)
class ShownRequest:
    """A delivered message that shows a request: whose chat holds it, its id, whether its words are a caption."""

    person: Person
    message_id: int
    media: bool


# --- finding requests -------------------------------------------------------------------------------------


def parse_code(text: str) -> int | None:
    """``R-000123`` (or ``r123``) -> 123; None for anything else."""
    match = CODE_PATTERN.match(text)
    return int(match.group(1)) if match else None


def get_request(session: Session, request_id: int) -> Request:
    request = session.get(Request, request_id)
    if request is None:
        raise RequestRefused(N_("There is no request {code}."), code=f"R-{request_id:06d}")
    return request


def timeline(session: Session, request: Request) -> list[RequestEvent]:
    """The request's events, oldest first."""
    query = select(RequestEvent).where(RequestEvent.request_id == request.id)
    return list(session.scalars(query.order_by(RequestEvent.at, RequestEvent.id)))


def requests_of_resident(session: Session, person: Person, limit: int = 20) -> list[Request]:
    """Requests the person filed or joined, newest first."""
    joined = select(RequestSupporter.request_id).where(RequestSupporter.person_id == person.id)
    query = select(Request).where(or_(Request.resident_id == person.id, Request.id.in_(joined)))
    return list(session.scalars(query.order_by(Request.created_at.desc(), Request.id.desc()).limit(limit)))


def messages_showing(session: Session, request: Request) -> list[ShownRequest]:
    """Every delivered message (card, resident's view) that shows the request, oldest first, each once."""
    rows = session.execute(
        select(Person, OutboxMessage.message_id, OutboxMessage.action)
        .join(Person, Person.id == OutboxMessage.person_id)
        .where(OutboxMessage.request_id == request.id, OutboxMessage.status == OutboxStatus.SENT,
               OutboxMessage.message_id.is_not(None))
        .order_by(OutboxMessage.id)
    ).all()
    shown: dict[tuple[int, int], ShownRequest] = {}
    for person, message_id, action in rows:
        shown.setdefault((person.id, message_id), ShownRequest(person, message_id, action.get("type") == "SendPhoto"))
    return list(shown.values())


def last_resolution(session: Session, request: Request) -> RequestEvent | None:
    """The latest resolution on the timeline: who resolved the request and what they said was done."""
    query = select(RequestEvent).where(RequestEvent.request_id == request.id, RequestEvent.kind == EventKind.RESOLVED)
    return session.scalars(query.order_by(RequestEvent.at.desc(), RequestEvent.id.desc()).limit(1)).first()


def held_requests(session: Session, person: Person, limit: int = 30) -> list[Request]:
    """Open requests the person's units hold, the most overdue first.

    District staff also see requests stuck at a unit where nobody is on duty any more.
    """
    held = held_by(person)
    if held is None:
        return []
    query = select(Request).where(Request.status.in_(OPEN_STATUSES), held)
    return list(session.scalars(query.order_by(Request.due_at, Request.id).limit(limit)))


def department_work(session: Session, person: Person, limit: int = 30) -> list[Request]:
    """Open requests departments hold that the person follows: every one for district staff, those their
    street handed over for street staff; the latest deadline last."""
    if is_district_staff(person):
        followed: Any = Request.dispatched_level.is_not(None)
    else:
        dispatched = [and_(Request.dispatched_level == LEVEL_OF_ROLE[role.role],
                           Request.dispatched_unit_id == role.unit_id)
                      for role in person.roles if LEVEL_OF_ROLE[role.role] in DISPATCHING_LEVELS]
        if not dispatched:
            return []
        followed = or_(*dispatched)
    query = select(Request).where(Request.level == Level.DEPARTMENT, Request.status.in_(OPEN_STATUSES), followed)
    return list(session.scalars(query.order_by(Request.department_due_at, Request.id).limit(limit)))


def held_by(person: Person) -> Any:
    """The condition on ``Request`` for requests the person's units hold (see ``held_requests``); None for
    someone who is not staff."""
    held = [
        and_(Request.level == LEVEL_OF_ROLE[role.role], Request.unit_id == role.unit_id) for role in person.roles
    ]
    if not held:
        return None
    if is_district_staff(person):
        held.append(_unit_without_staff())
    return or_(*held)


def _unit_without_staff() -> Any:
    # The units nobody is on duty for are few: finding them first lets the (level, unit_id, status) index pick
    # their requests, where a NOT EXISTS per request would read every open request in the district.
    held_without_staff = []
    for level in (Level.GRID, Level.COMMUNITY, Level.STREET):
        unit = UNIT_MODEL[level]
        unstaffed = select(unit.id).where(
            ~exists().where(StaffRole.role == ROLE_OF_LEVEL[level], StaffRole.unit_id == unit.id)
        )
        held_without_staff.append(and_(Request.level == level, Request.unit_id.in_(unstaffed)))
    return or_(*held_without_staff)


def find_duplicates(session: Session, about: Building | Place, category_id: int, now: datetime) -> list[Request]:
    """Open requests about the same building or place and category filed in the last week, newest first.

    Their category is loaded with them; anything else a request refers to (resident, building, place, grid,
    assignee, photos) is read only if asked for."""
    query = _DUPLICATES_AT_BUILDING if isinstance(about, Building) else _DUPLICATES_AT_PLACE
    return list(session.scalars(
        query, {"spot_id": about.id, "category_id": category_id, "since": now - DUPLICATE_WINDOW}
    ))


def _duplicates_at(spot: InstrumentedAttribute[int | None]) -> Select[Request]:
    # Built once: a filing step runs it, and the filing step shows only each duplicate's code, category, date
    # and supporters, so the joins and the photos' SELECT a request brings along by default are left out.
    return (
        select(Request)
        .where(
            spot == bindparam("spot_id"),
            Request.category_id == bindparam("category_id"),
            Request.status.in_(OPEN_STATUSES),
            Request.created_at >= bindparam("since"),
        )
        .order_by(Request.created_at.desc())
        .options(*(lazyload(relation) for relation in (
            Request.resident, Request.building, Request.place, Request.grid, Request.assignee, Request.photos,
        )))
    )


_DUPLICATES_AT_BUILDING = _duplicates_at(Request.building_id)
_DUPLICATES_AT_PLACE = _duplicates_at(Request.place_id)


def categories_for_filing(session: Session) -> list[Category]:
    return active_categories(session)


def holder_staff(session: Session, request: Request) -> list[Person]:
    return staff_of_unit(session, request.level, request.unit_id)


def supporters_of(session: Session, request: Request) -> list[Person]:
    query = select(Person).join(RequestSupporter, RequestSupporter.person_id == Person.id)
    return list(session.scalars(query.where(RequestSupporter.request_id == request.id).order_by(Person.id)))


def allows(transition: Transition, request: Request) -> bool:
    """Whether the request's status lets ``transition`` happen (who may do it is checked separately)."""
    return request.status in TRANSITIONS[transition].allowed_from


def available_transitions(request: Request, person: Person | None = None) -> list[Transition]:
    """What staff (``person``, when known) could do next with the request where it stands."""
    # Nothing is above the district, nothing below a grid; a department does its work or gives it back.
    impossible = {Level.DISTRICT: {Transition.ESCALATE}, Level.GRID: {Transition.RETURN}}.get(request.level, set())
    if request.level is Level.DEPARTMENT:
        impossible = set(STAFF_TRANSITIONS) - DEPARTMENT_TRANSITIONS
    else:
        impossible |= {Transition.DEPARTMENT_DONE, Transition.HAND_BACK}
    if request.level not in DISPATCHING_LEVELS:
        impossible.add(Transition.DISPATCH)
    filer = person is not None and is_own_request(person, request)
    return [
        transition for transition in STAFF_TRANSITIONS
        if allows(transition, request) and transition not in impossible
        and not (filer and transition in NOT_BY_FILER)
    ]


def staff_actions(request: Request, person: Person) -> list[Transition]:
    """What ``person`` may do with the request now: nothing unless their unit holds it; once a colleague has
    accepted it, only notes (district staff may still take over)."""
    if not may_handle(person, request):
        return []
    taken = request.assignee_id not in (None, person.id) and not is_district_staff(person)
    return [transition for transition in available_transitions(request, person)
            if not taken or transition is Transition.NOTE]


def resident_actions(request: Request, person: Person, now: datetime) -> list[Transition]:
    """What ``person`` may do with the request as the resident who filed it: withdraw it while nobody has
    accepted it, chase it once it is overdue; nothing for anyone else or once it is resolved or closed."""
    if person.id != request.resident_id:
        return []
    offered = [transition for transition in RESIDENT_TRANSITIONS if allows(transition, request)]
    return [transition for transition in offered if transition is not Transition.CHASE or is_overdue(request, now)]


def ensure_staff_can(session: Session, worker: Person, request_id: int, transition: Transition) -> Request:
    """Check, without changing anything, that ``worker`` may do ``transition`` now; before asking them for
    a text, so a stale button is refused at once rather than after typing."""
    request = get_request(session, request_id)
    _require_handler(worker, request)
    if transition in NOT_BY_FILER:
        _require_not_filer(worker, request)
    if transition is Transition.ASK_HELP:
        _require_volunteer_asker(worker, request)
    elif transition is not Transition.ACCEPT and transition is not Transition.NOTE:
        _require_assignee_or_free(worker, request)
    _require_allowed(transition, request)
    if transition is Transition.DISPATCH:
        _require_dispatcher(request)
    elif transition in (Transition.DEPARTMENT_DONE, Transition.HAND_BACK):
        _require_department(request)
    return request


def is_overdue(request: Request, now: datetime) -> bool:
    return request.status in OPEN_STATUSES and now > request.due_at


def reassign_targets(session: Session, request: Request) -> list[tuple[Unit, str]]:
    """Units a request may be handed to, with their names: its level's siblings, or the streets when the
    district holds it."""
    level = Level.STREET if request.level is Level.DISTRICT else request.level
    siblings = sibling_units(session, level, request.unit_id if level is request.level else -1)
    return [((level, unit_id), name) for unit_id, name in siblings if has_staff(session, level, unit_id)]


def rating_of(session: Session, request: Request) -> Rating | None:
    return session.get(Rating, request.id)


# --- who may act ------------------------------------------------------------------------------------------


def may_handle(person: Person, request: Request) -> bool:
    """Staff of the holding unit may act on a request; district staff may act on any but one a department
    holds, whose work is the department's own until it comes back."""
    wanted = ROLE_OF_LEVEL[request.level]
    own = any(role.role is wanted and role.unit_id == request.unit_id for role in person.roles)
    return own or (request.level is not Level.DEPARTMENT and is_district_staff(person))


def covers(person: Person, request: Request) -> bool:
    """Whether one of the person's staff roles covers the request: its unit holds it, or the request's
    building lies in the role's unit (a grid worker's grid, a community, a street, the whole district)."""
    return may_handle(person, request) or any(
        request_unit(request, LEVEL_OF_ROLE[role.role]) == role.unit_id for role in person.roles
    )


def view_of(session: Session, person: Person, request: Request) -> View | None:
    """The view of the request the person may see: the staff view for staff who cover it, the resident view
    for the filer and the neighbours who joined; None for anyone else (to whom the request does not exist)."""
    if covers(person, request):
        return View.STAFF
    if person.id == request.resident_id or session.get(RequestSupporter, (request.id, person.id)) is not None:
        return View.RESIDENT
    return None


def _require_handler(person: Person, request: Request) -> None:
    if not may_handle(person, request):
        raise RequestRefused(
            N_("{code} is not held by your unit (any more), so you cannot act on it."), code=request.code
        )


def _require_assignee_or_free(person: Person, request: Request) -> None:
    # Once somebody accepted a request, it is theirs: colleagues are told who has it instead of competing.
    assignee = request.assignee
    if assignee is not None and assignee.id != person.id and not is_district_staff(person):
        raise RequestRefused(N_("{code} was accepted by {worker}; they handle it."), code=request.code,
                             worker=assignee.display_name)


def is_own_request(person: Person, request: Request) -> bool:
    """Whether ``person`` filed the request as a resident, and so may not handle it; the worker who filed a
    lead found on their rounds handles it like any other request of their grid."""
    return person.id == request.resident_id and person.id != request.lead_by_id


def _require_not_filer(person: Person, request: Request) -> None:
    if is_own_request(person, request):
        raise RequestRefused(N_("You filed {code} yourself, so a colleague handles it."), code=request.code)


def _require_resident(person: Person, request: Request) -> None:
    if person.id != request.resident_id:
        raise RequestRefused(N_("Only the resident who filed {code} can do this."), code=request.code)


def _require_allowed(transition: Transition, request: Request) -> None:
    if request.status in TRANSITIONS[transition].allowed_from:
        return
    reason = _REFUSED_IN.get((transition, request.status), _REFUSED_STATUS[request.status])
    worker = request.assignee.display_name if request.assignee is not None else ""
    raise RequestRefused(reason, code=request.code, worker=worker)


# --- changing requests ------------------------------------------------------------------------------------


def _apply(session: Session, request: Request, transition: Transition, **values: Any) -> None:
    """Move the request along ``transition``, setting ``values`` as well.

    The update only applies if the request is still where the caller saw it (same status and holder), so of
    two people pressing at once the first wins and the second is told the request has moved on.
    """
    _require_allowed(transition, request)
    target = TRANSITIONS[transition].to
    if target is not None:
        values["status"] = target
    if not values:
        return
    statement = (
        update(Request)
        .where(
            Request.id == request.id,
            Request.status == request.status,
            Request.level == request.level,
            Request.unit_id == request.unit_id,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    result = cast(CursorResult[Any], session.execute(statement))
    session.refresh(request)
    if result.rowcount == 0:
        _require_allowed(transition, request)
        raise RequestRefused(N_("{code} changed meanwhile. Please look at it again."), code=request.code)


def _record(
    session: Session, request: Request, kind: EventKind, actor: Person | None, now: datetime, text: str = ""
) -> int:
    """Add a step to the request's timeline; returns the new event's id."""
    # A plain INSERT on the session's connection: nothing in the session holds a request's events, so there is
    # no ORM object to keep, and a flush of one new row costs several times the statement.
    event_id: int = session.connection().execute(_INSERT_EVENT, {
        "request_id": request.id, "at": now, "actor_id": actor.id if actor else None, "kind": kind, "text": text,
        "level": request.level, "unit_id": request.unit_id,
        "due_at": request.department_due_at if kind is EventKind.DISPATCHED else None,
    }).scalar_one()
    return event_id


_EVENTS = table_of(RequestEvent)
_INSERT_EVENT = insert(_EVENTS).returning(_EVENTS.c.id)


def _checked_text(text: str, limit: int, empty_reason: str) -> str:
    text = (text or "").strip()
    if not text:
        raise RequestRefused(empty_reason)
    if len(text) > limit:
        raise RequestRefused(N_("This is too long: {length} characters, at most {limit}."), length=len(text),
                             limit=limit)
    return text


def check_description(text: str) -> str:
    """The description as it will be stored; refuses empty or over-long text."""
    return _checked_text(text, MAX_DESCRIPTION, N_("Please describe the problem in a few words."))


def _due(session: Session, now: datetime, category: Category) -> datetime:
    """The close of office on the category's last working day (see ``bot.core.workdays``)."""
    return calendar_of(session).due(now, category.due_days or DEFAULT_DUE_DAYS)


def waiting_timers(session: Session, category: Category, level: Level, now: datetime) -> dict[str, datetime | None]:
    """When the scheduler reminds a new holder who has not accepted the request, and when it escalates it
    (never above the district); counted in office hours from ``now``, when the holder got it."""
    calendar = calendar_of(session)
    remind = calendar.after_hours(now, category.remind_after_hours or DEFAULT_REMIND_AFTER_HOURS)
    escalate = _escalated_at(session, category, now)
    # A department is not escalated: it answers to its dispatcher, who is told when it is late.
    unescalated = level in (Level.DISTRICT, Level.DEPARTMENT)
    return {"remind_at": remind, "escalate_at": None if unescalated else escalate}


def _escalated_at(session: Session, category: Category, now: datetime) -> datetime:
    return calendar_of(session).after_hours(now, category.escalate_after_hours or DEFAULT_ESCALATE_AFTER_HOURS)


def holder_unit(session: Session, toward: Unit, request: Request) -> Unit:
    """The unit that takes a request sent ``toward`` a unit: that unit if somebody other than the filer works
    there, else the first such unit above it; the district center as the last resort."""
    return holder_and_staff(session, toward, request)[0]


def holder_and_staff(session: Session, toward: Unit, request: Request) -> tuple[Unit, list[Person]]:
    """``holder_unit`` and the staff of that unit, each unit's staff read once."""
    staff: dict[Unit, list[Person]] = {}

    def staff_at(unit: Unit) -> list[Person]:
        if unit not in staff:
            staff[unit] = staff_of_unit(session, *unit)
        return staff[unit]

    def takes(unit: Unit) -> bool:
        return any(not is_own_request(person, request) for person in staff_at(unit))

    # Most requests stay where they are sent: that unit's staff say at once that it is staffed and takes them.
    if toward[0] is not Level.DISTRICT and toward[0] in ROLE_OF_LEVEL and takes(toward):
        return toward, staff_at(toward)
    unit = staffed_unit_from(session, *toward)
    while unit != DISTRICT and not takes(unit):
        above = unit_above(session, *unit)
        unit = staffed_unit_from(session, *above) if above is not None else DISTRICT
    return unit, staff_at(unit)


def file_request(
    session: Session, resident: Person, draft: Draft, now: datetime, daily_limit: int | None = None,
    building: Building | None = None, lead_by: Person | None = None, spot: Spot | None = None,
) -> Change:
    """File a request about ``spot`` (a place, a location), or else ``building`` or the resident's building;
    it goes to that grid (or the first staffed unit above it) with a due date of ``now`` + the category's days.

    A lead (``lead_by``: the grid worker who found it, see ``bot.core.rounds``) is filed the same way; the
    worker is the actor of its filing and is not told of it as one of its holders."""
    spot = check_spot(spot) if spot is not None else _spot_of_building(building or resident.building)
    category = session.get(Category, draft.category_id)
    if category is None or not category.active:
        raise RequestRefused(N_("This category is no longer available. Please start again with /new."))
    if len(draft.photo_ids) > MAX_PHOTOS:
        raise RequestRefused(N_("At most {limit} photos, please."), limit=MAX_PHOTOS)
    _check_daily_limit(session, resident, now, daily_limit)
    due_at = _due(session, now, category)
    latitude, longitude = (draft.latitude, draft.longitude) if draft.latitude is not None else (
        spot.latitude, spot.longitude)
    request = Request(
        resident_id=resident.id, building_id=spot.building.id if spot.building else None,
        place_id=spot.place.id if spot.place else None, grid_id=spot.grid_id, category_id=category.id,
        description=check_description(draft.description), latitude=latitude, longitude=longitude,
        hide_identity=draft.hide_identity, status=RequestStatus.NEW, level=Level.GRID, unit_id=spot.grid_id,
        created_at=now, due_at=due_at, overdue_check_at=due_at, supporters=0,
        lead_by_id=lead_by.id if lead_by is not None else None,
    )
    request.photos = [RequestPhoto(file_id=file_id) for file_id in draft.photo_ids]
    request.category = category
    # Routed and timed before it is first written, so the row is inserted whole rather than updated after.
    (request.level, request.unit_id), staff = holder_and_staff(session, (Level.GRID, request.grid_id), request)
    timers = waiting_timers(session, category, request.level, now)
    request.remind_at, request.escalate_at = timers["remind_at"], timers["escalate_at"]
    session.add(request)
    session.flush()
    _record(session, request, EventKind.FILED, lead_by or resident, now)
    return Change(request, _but_filers(request, staff))


def where_name(request: Request) -> str:
    """What the request is about, named: its building, its place, or else the grid its location lies in."""
    if request.building is not None:
        return request.building.name
    if request.place is not None:
        return request.place.name
    return request.grid.name


def _spot_of_building(building: Building | None) -> Spot:
    if building is None or not building.active:
        raise RequestRefused(N_("Please choose your building first with /building."))
    return spot_of_building(building)


def check_spot(spot: Spot) -> Spot:
    """Refuse a place or building taken out of service while the resident was filing."""
    for unit in (spot.place, spot.building):
        if unit is not None and not unit.active:
            raise RequestRefused(N_("This place is no longer available. Please start again with /new."))
    return spot


def _holders_but_filer(session: Session, request: Request) -> list[Person]:
    return _but_filers(request, holder_staff(session, request))


def _but_filers(request: Request, staff: list[Person]) -> list[Person]:
    filers = {request.resident_id, request.lead_by_id}
    return [person for person in staff if person.id not in filers]


def _check_daily_limit(session: Session, resident: Person, now: datetime, daily_limit: int | None) -> None:
    if daily_limit is None:
        return
    filed = session.scalar(_FILED_SINCE, {"resident_id": resident.id, "since": now - timedelta(days=1)})
    if (filed or 0) >= daily_limit:
        raise RequestRefused(N_("You filed {limit} requests today. Please try again tomorrow."), limit=daily_limit)


# Built once: every request a resident files is counted against the daily limit with it.
_FILED_SINCE = select(func.count(Request.id)).where(
    Request.resident_id == bindparam("resident_id"), Request.created_at > bindparam("since")
)


def join_request(session: Session, resident: Person, request_id: int, now: datetime) -> Change:
    """"Me too": the resident supports an open request instead of filing a duplicate."""
    request = get_request(session, request_id)
    _require_allowed(Transition.JOIN, request)
    if request.resident_id == resident.id:
        raise RequestRefused(N_("You filed {code} yourself."), code=request.code)
    # Neighbours are offered "me too" for their own building only; a forged button from anyone else would
    # inflate the count and make them a supporter, who may view the request. A place (a market, an alley) is
    # public: anyone there may join a request about it.
    if request.place_id is None and (request.building_id is None or resident.building_id != request.building_id):
        raise RequestRefused(N_("Only residents of the building of {code} can join it."), code=request.code)
    if session.get(RequestSupporter, (request.id, resident.id)) is not None:
        raise RequestRefused(N_("You already joined {code}."), code=request.code)
    session.add(RequestSupporter(request_id=request.id, person_id=resident.id, created_at=now))
    request.supporters += 1
    _record(session, request, EventKind.JOINED, resident, now)
    return Change(request, holder_staff(session, request))


def withdraw(session: Session, resident: Person, request_id: int, now: datetime) -> Change:
    """The resident takes back a request nobody has accepted yet."""
    request = get_request(session, request_id)
    _require_resident(resident, request)
    _apply(session, request, Transition.WITHDRAW, closed_at=now)
    _record(session, request, EventKind.WITHDRAWN, resident, now)
    return Change(request, holder_staff(session, request))


def chase(session: Session, resident: Person, request_id: int, now: datetime) -> Change:
    """催办: the resident reminds the holding unit and the level above it of an overdue request."""
    request = get_request(session, request_id)
    _require_resident(resident, request)
    _require_allowed(Transition.CHASE, request)
    if not is_overdue(request, now):
        raise RequestRefused(N_("{code} is not overdue: the answer is due by {due}."), code=request.code,
                             due=request.due_at)
    if _chased_since(session, request, now - CHASE_INTERVAL):
        raise RequestRefused(N_("You already chased {code} today. Staff have been reminded."), code=request.code)
    _record(session, request, EventKind.CHASED, resident, now)
    superior = unit_above(session, request.level, request.unit_id)
    notify = holder_staff(session, request)
    if superior is not None:
        notify += [person for person in staff_of_unit(session, *superior) if person not in notify]
    return Change(request, notify)


def _chased_since(session: Session, request: Request, since: datetime) -> bool:
    query = select(RequestEvent.id).where(
        RequestEvent.request_id == request.id, RequestEvent.kind == EventKind.CHASED, RequestEvent.at > since
    )
    return session.scalar(query.limit(1)) is not None


def accept(session: Session, worker: Person, request_id: int, now: datetime) -> Change:
    """The first staff member of the holding unit to accept a new request takes it on."""
    request = get_request(session, request_id)
    _require_handler(worker, request)
    _require_not_filer(worker, request)
    _apply(session, request, Transition.ACCEPT, assignee_id=worker.id, accepted_at=now)
    _record(session, request, EventKind.ACCEPTED, worker, now)
    return Change(request)


def add_note(session: Session, worker: Person, request_id: int, note: str, now: datetime) -> Change:
    """A working note on the timeline, for staff."""
    request = get_request(session, request_id)
    _require_handler(worker, request)
    _require_allowed(Transition.NOTE, request)
    text = _checked_text(note, MAX_STAFF_TEXT, N_("Please write the note as text."))
    _record(session, request, EventKind.NOTE, worker, now, text)
    return Change(request)


def resolve(
    session: Session, worker: Person, request_id: int, note: str, now: datetime, photo_id: str | None = None
) -> Change:
    """The handler says it is done (solving on the spot accepts it too); the resident is asked next."""
    request = get_request(session, request_id)
    _require_handler(worker, request)
    _require_not_filer(worker, request)
    _require_assignee_or_free(worker, request)
    text = _checked_text(note, MAX_STAFF_TEXT, N_("Please say in a few words what was done."))
    _apply(
        session, request, Transition.RESOLVE, assignee_id=worker.id, accepted_at=request.accepted_at or now,
        resolved_at=now, resolved_level=request.level,
    )
    _add_work_photo(session, request, _record(session, request, EventKind.RESOLVED, worker, now, text), photo_id)
    return Change(request)


def solve_on_spot(
    session: Session, worker: Person, request_id: int, note: str, now: datetime, photo_id: str | None = None
) -> Change:
    """就地解决: the worker who filed a lead solved it there and then; it is closed at once, nobody is asked.
    The resident concerned, if one was named, hears of it."""
    request = get_request(session, request_id)
    _require_handler(worker, request)
    _require_assignee_or_free(worker, request)
    if request.lead_by_id != worker.id:
        raise RequestRefused(N_("Only the worker who found {code} can close it as solved on the spot."),
                             code=request.code)
    text = _checked_text(note, MAX_STAFF_TEXT, N_("Please say in a few words what was done."))
    _apply(
        session, request, Transition.SOLVE_ON_SPOT, assignee_id=worker.id, accepted_at=request.accepted_at or now,
        resolved_at=now, resolved_level=request.level, closed_at=now, on_the_spot=True, remind_at=None,
        escalate_at=None, overdue_check_at=None,
    )
    _add_work_photo(session, request, _record(session, request, EventKind.RESOLVED, worker, now, text), photo_id)
    _record(session, request, EventKind.CLOSED, worker, now, SOLVED_ON_SPOT)
    residents = [request.resident] if request.resident_id != worker.id else []
    return Change(request, residents=residents)


def escalate(session: Session, worker: Person, request_id: int, reason: str, now: datetime) -> Change:
    """Report a request one level up (skipping levels where nobody is on duty)."""
    request = get_request(session, request_id)
    _require_handler(worker, request)
    _require_assignee_or_free(worker, request)
    above = unit_above(session, request.level, request.unit_id)
    if above is None:
        raise RequestRefused(N_("The district center is the top level; {code} cannot go higher."),
                             code=request.code)
    text = _checked_text(reason, MAX_STAFF_TEXT, N_("Please say why it needs the level above."))
    return _move(session, request, Transition.ESCALATE, EventKind.ESCALATED, above, worker, now, text)


def return_down(session: Session, worker: Person, request_id: int, instruction: str, now: datetime) -> Change:
    """Send a request back one level, to the unit of the request's building, with an instruction."""
    request = get_request(session, request_id)
    _require_handler(worker, request)
    _require_assignee_or_free(worker, request)
    below = level_below(request.level)
    if below is None:
        raise RequestRefused(N_("{code} is at a grid already; there is no level below."), code=request.code)
    target = (below, request_unit(request, below))
    if not has_staff(session, *target):
        raise RequestRefused(N_("Nobody is on duty at the level below to take {code} back."), code=request.code)
    text = _checked_text(instruction, MAX_STAFF_TEXT, N_("Please give an instruction for the level below."))
    return _move(session, request, Transition.RETURN, EventKind.RETURNED, target, worker, now, text)


def reassign(session: Session, worker: Person, request_id: int, target: Unit, now: datetime) -> Change:
    """Hand a request to another unit of the same level; district staff may hand it to any unit."""
    request = get_request(session, request_id)
    _require_handler(worker, request)
    _require_assignee_or_free(worker, request)
    level, unit_id = target
    if level is not request.level and not is_district_staff(worker):
        raise RequestRefused(N_("{code} can only go to another unit of the same level."), code=request.code)
    # Below the district a request moves only between units under one parent, as the keyboard offers
    # (``reassign_targets``); moving it to another parent's unit is for the level above, not a forged button.
    siblings = {sibling for sibling, _name in sibling_units(session, request.level, request.unit_id)}
    if not is_district_staff(worker) and unit_id not in siblings:
        raise RequestRefused(N_("Please choose another unit for {code}."), code=request.code)
    if target == (request.level, request.unit_id) or not unit_exists(session, level, unit_id):
        raise RequestRefused(N_("Please choose another unit for {code}."), code=request.code)
    if not has_staff(session, level, unit_id) and target != DISTRICT:
        raise RequestRefused(N_("Nobody is on duty there to take {code}."), code=request.code)
    return _move(session, request, Transition.REASSIGN, EventKind.REASSIGNED, target, worker, now)


def dispatch_targets(session: Session, request: Request) -> list[tuple[int, str]]:
    """The departments, with staff, that the request's holder may hand it to: a street's own and the
    district-wide ones; every one for the district."""
    query = select(Department.id, Department.name).where(Department.active.is_(True))
    if request.level is Level.STREET:
        query = query.where(or_(Department.street_id.is_(None), Department.street_id == request.unit_id))
    elif request.level is not Level.DISTRICT:
        return []
    rows = session.execute(query.order_by(Department.code)).all()
    return [(department_id, name) for department_id, name in rows
            if has_staff(session, Level.DEPARTMENT, department_id)]


def department_days(request: Request, working_days: int | None = None) -> int:
    """The working days a department is given: the dispatcher's choice, else the category's."""
    if working_days is None:
        return request.category.due_days or DEFAULT_DUE_DAYS
    if not 1 <= working_days <= MAX_DEPARTMENT_DAYS:
        raise RequestRefused(N_("A department can be given 1 to {limit} working days."), limit=MAX_DEPARTMENT_DAYS)
    return working_days


def department_due(session: Session, request: Request, now: datetime, working_days: int | None = None) -> datetime:
    """The department's deadline: the close of office ``working_days`` (else the category's) from now."""
    return calendar_of(session).due(now, department_days(request, working_days))


def dispatch(
    session: Session, worker: Person, request_id: int, department_id: int, instruction: str, now: datetime,
    working_days: int | None = None,
) -> Change:
    """分流: the street or district that holds a request hands it to a department with an instruction and a
    deadline (``working_days``, else the category's); it comes back to that street or district when the
    department is done or gives it back."""
    request = get_request(session, request_id)
    _require_handler(worker, request)
    _require_assignee_or_free(worker, request)
    _require_allowed(Transition.DISPATCH, request)
    _require_dispatcher(request)
    if department_id not in {target for target, _name in dispatch_targets(session, request)}:
        raise RequestRefused(N_("Please choose another department for {code}."), code=request.code)
    text = _checked_text(instruction, MAX_STAFF_TEXT, N_("Please say what the department should do."))
    due = department_due(session, request, now, working_days)
    dispatcher = (request.level, request.unit_id)
    change = _move(session, request, Transition.DISPATCH, EventKind.DISPATCHED, (Level.DEPARTMENT, department_id),
                   worker, now, text, dispatched_level=dispatcher[0], dispatched_unit_id=dispatcher[1],
                   department_due_at=due, department_check_at=due)
    return change


def department_done(
    session: Session, worker: Person, request_id: int, note: str, now: datetime, photo_id: str | None = None
) -> Change:
    """The department did the work (with a photo, if any): the request goes back to the street or district that
    dispatched it, who confirms the result to the resident."""
    request = _department_request(session, worker, request_id)
    _require_not_filer(worker, request)
    text = _checked_text(note, MAX_STAFF_TEXT, N_("Please say in a few words what was done."))
    change = _back_to_dispatcher(session, request, Transition.DEPARTMENT_DONE, EventKind.DEPARTMENT_DONE, worker,
                                 now, text)
    _add_work_photo(session, request, _last_event(session, request).id, photo_id)
    return change


def _add_work_photo(session: Session, request: Request, event_id: int, photo_id: str | None) -> None:
    """A staff member's photo of the work, kept with the step of the timeline it came with."""
    if photo_id:
        session.add(RequestPhoto(request_id=request.id, file_id=photo_id, from_handler=True, event_id=event_id))


def _last_event(session: Session, request: Request) -> RequestEvent:
    return session.scalars(
        select(RequestEvent).where(RequestEvent.request_id == request.id).order_by(RequestEvent.id.desc()).limit(1)
    ).one()


def department_photo(session: Session, request: Request) -> str | None:
    """The photo a department sent with its work, while that work is the last word on the request: the
    dispatcher's resolution shows it to the resident unless the dispatcher sends one of their own."""
    last = session.scalars(
        select(RequestEvent)
        .where(RequestEvent.request_id == request.id,
               RequestEvent.kind.in_((EventKind.DISPATCHED, EventKind.DEPARTMENT_DONE, EventKind.RESOLVED)))
        .order_by(RequestEvent.id.desc()).limit(1)
    ).first()
    if last is None or last.kind is not EventKind.DEPARTMENT_DONE:
        return None
    return session.scalar(select(RequestPhoto.file_id).where(RequestPhoto.event_id == last.id).limit(1))


def hand_back(session: Session, worker: Person, request_id: int, reason: str, now: datetime) -> Change:
    """The department gives the request back to its dispatcher without doing it, saying why."""
    request = _department_request(session, worker, request_id)
    text = _checked_text(reason, MAX_STAFF_TEXT, N_("Please say why the department gives it back."))
    return _back_to_dispatcher(session, request, Transition.HAND_BACK, EventKind.HANDED_BACK, worker, now, text)


def _department_request(session: Session, worker: Person, request_id: int) -> Request:
    request = get_request(session, request_id)
    _require_handler(worker, request)
    _require_assignee_or_free(worker, request)
    _require_department(request)
    return request


def _require_dispatcher(request: Request) -> None:
    if request.level not in DISPATCHING_LEVELS:
        raise RequestRefused(N_("Only the street or the district center can hand {code} to a department."),
                             code=request.code)


def _require_department(request: Request) -> None:
    if request.level is not Level.DEPARTMENT or request.dispatched_level is None:
        raise RequestRefused(N_("{code} is not with a department."), code=request.code)


def _back_to_dispatcher(
    session: Session, request: Request, transition: Transition, kind: EventKind, worker: Person, now: datetime,
    text: str,
) -> Change:
    assert request.dispatched_level is not None and request.dispatched_unit_id is not None
    dispatcher = (request.dispatched_level, request.dispatched_unit_id)
    return _move(session, request, transition, kind, dispatcher, worker, now, text, dispatched_level=None,
                 dispatched_unit_id=None, department_due_at=None, department_check_at=None)


def _move(
    session: Session, request: Request, transition: Transition, kind: EventKind, toward: Unit, actor: Person | None,
    now: datetime, text: str = "", **values: Any,
) -> Change:
    """Move the request to the unit that takes it from ``toward`` (see ``holder_unit``), waiting to be accepted
    there as a newly arrived request does, and say who hears of it: the new holders, and for the moves in
    ``MOVES_TOLD_TO_RESIDENTS`` the filer and the neighbours who joined."""
    level, unit_id = holder_unit(session, toward, request)
    timers: dict[str, Any] = {**waiting_timers(session, request.category, level, now)}
    if request.overdue_check_at is not None:
        # A holder who just got the request is not escalated for being late before they could answer at all.
        timers["overdue_check_at"] = max(request.overdue_check_at, _escalated_at(session, request.category, now))
    _apply(session, request, transition, level=level, unit_id=unit_id, assignee_id=None, accepted_at=None,
           **{**timers, **values})
    _record(session, request, kind, actor, now, text)
    residents = [request.resident, *supporters_of(session, request)] if transition in MOVES_TOLD_TO_RESIDENTS else []
    return Change(request, _holders_but_filer(session, request), residents)


def confirm(session: Session, resident: Person, request_id: int, outcome: Outcome, now: datetime) -> Change:
    """The resident's verdict: fixed or partly fixed closes it; not fixed reopens it one level higher
    than the level that resolved it."""
    request = get_request(session, request_id)
    _require_resident(resident, request)
    if outcome is Outcome.NOT_FIXED:
        return _reopen(session, request, resident, now)
    _apply(session, request, Transition.CONFIRM, closed_at=now)
    session.merge(Rating(request_id=request.id, outcome=outcome.value, stars=None, comment=None, at=now))
    _record(session, request, EventKind.CONFIRMED, resident, now, outcome.value)
    return Change(request, [request.assignee] if request.assignee is not None else [])


def _reopen(session: Session, request: Request, resident: Person, now: datetime) -> Change:
    # A resolved request still sits at the unit that resolved it (``resolved_level``), so one level higher is
    # that unit's parent; the district has none and takes it again itself.
    above = unit_above(session, request.level, request.unit_id) or DISTRICT
    due_at = _due(session, now, request.category)
    resolver = request.assignee
    change = _move(session, request, Transition.REOPEN, EventKind.REOPENED, above, resident, now,
                   Outcome.NOT_FIXED.value, resolved_at=None, due_at=due_at, overdue_check_at=due_at)
    if resolver is not None and resolver not in change.notify:
        change.informed = [resolver]
    return change


def rate(session: Session, resident: Person, request_id: int, stars: int, now: datetime,
         comment: str | None = None) -> Change:
    """1-5 stars for a closed request, once."""
    request = get_request(session, request_id)
    _require_resident(resident, request)
    _require_allowed(Transition.RATE, request)
    rating = rating_of(session, request)
    if rating is None or rating.stars is not None:
        raise RequestRefused(N_("You already rated {code}. Thank you."), code=request.code)
    if not 1 <= stars <= 5:
        raise RequestRefused(N_("Please choose from 1 to 5 stars."))
    rating.stars, rating.at = stars, now
    if comment:
        rating.comment = _checked_text(comment, MAX_STAFF_TEXT, "")
    return Change(request, [request.assignee] if request.assignee is not None else [])


def comment_rating(session: Session, resident: Person, request_id: int, comment: str, now: datetime) -> Change:
    """An optional comment after the stars, once."""
    request = get_request(session, request_id)
    _require_resident(resident, request)
    _require_allowed(Transition.RATE, request)
    rating = rating_of(session, request)
    if rating is None or rating.comment:
        raise RequestRefused(N_("You already rated {code}. Thank you."), code=request.code)
    rating.comment = _checked_text(comment, MAX_STAFF_TEXT, N_("Please write your comment as text."))
    rating.at = now
    return Change(request, [request.assignee] if request.assignee is not None else [])


# --- what the system does by itself (bot.scheduler); the actor of these events is nobody -------------------


def remind_by_system(session: Session, request: Request, now: datetime) -> Change:
    """Record that the holders (returned to be told) were reminded of a request waiting for them."""
    _record(session, request, EventKind.REMINDED, None, now)
    return Change(request, holder_staff(session, request))


def remind_department(session: Session, request: Request, now: datetime) -> Change:
    """A department's deadline passed: record the reminder; the department (``notify``) is reminded and the
    street or district that dispatched the request (``informed``) is told."""
    _record(session, request, EventKind.REMINDED, None, now, OVERDUE)
    informed: list[Person] = []
    if request.dispatched_level is not None and request.dispatched_unit_id is not None:
        informed = staff_of_unit(session, request.dispatched_level, request.dispatched_unit_id)
    return Change(request, holder_staff(session, request), informed=informed)


def escalate_by_system(session: Session, request: Request, reason: str, now: datetime) -> Change | None:
    """Report a request one level up because a deadline passed; None when the district holds it already."""
    above = unit_above(session, request.level, request.unit_id)
    if above is None:
        return None
    return _move(session, request, Transition.ESCALATE, EventKind.ESCALATED, above, None, now, reason)


def hand_over(session: Session, request: Request, now: datetime) -> Change:
    """A worker of the request's grid left: the request waits at the grid for the workers who remain, or goes
    up to the first unit where somebody works. The system moves it; the admin's removal is in the audit log."""
    return _move(session, request, Transition.HAND_OVER, EventKind.REASSIGNED, (request.level, request.unit_id),
                 None, now, WORKER_LEFT)


def close_unanswered(session: Session, request: Request, now: datetime) -> Change:
    """Close a resolution the resident never confirmed; the handler who resolved it is told."""
    _apply(session, request, Transition.EXPIRE, closed_at=now)
    _record(session, request, EventKind.CLOSED, None, now, NO_ANSWER)
    return Change(request, [request.assignee] if request.assignee is not None else [])


# --- volunteers on a request: asking them is an event on the timeline, as is each one who comes ------------

# Volunteers are asked by the grid worker or the community staff holding the request: the units whose
# volunteers live around the building.
VOLUNTEER_LEVELS = frozenset({Level.GRID, Level.COMMUNITY})


@dataclass
class HelpAsked:
    """Volunteers were asked to help with ``request``: ``volunteers`` are the ones to tell."""

    request: Request
    volunteers: list[Volunteer]
    need: str


def community_of(request: Request) -> int:
    return request.grid.community_id


def may_ask_volunteers(person: Person, request: Request) -> bool:
    """The grid worker or community staff whose unit holds the open request may ask its volunteers."""
    return (
        allows(Transition.ASK_HELP, request) and request.level in VOLUNTEER_LEVELS
        and any(role.role is ROLE_OF_LEVEL[request.level] and role.unit_id == request.unit_id for role in person.roles)
    )


def _require_volunteer_asker(person: Person, request: Request) -> None:
    if request.level not in VOLUNTEER_LEVELS or not may_handle(person, request) or not any(
        role.role is ROLE_OF_LEVEL[request.level] and role.unit_id == request.unit_id for role in person.roles
    ):
        raise RequestRefused(
            N_("Only the grid worker or community staff holding {code} may ask volunteers to help."),
            code=request.code,
        )


def ask_volunteers(session: Session, worker: Person, request_id: int, need: str, now: datetime) -> HelpAsked:
    """Ask the approved volunteers of the request's community to help, saying what is needed."""
    request = get_request(session, request_id)
    _require_volunteer_asker(worker, request)
    _require_allowed(Transition.ASK_HELP, request)
    text = _checked_text(need, MAX_STAFF_TEXT, N_("Please say what help is needed."))
    told = [volunteer for volunteer in approved_volunteers(session, community_of(request))
            if volunteer.person_id != request.resident_id]
    if not told:
        raise RequestRefused(N_("No approved volunteers in this community can be asked about {code} yet."),
                             code=request.code)
    _record(session, request, EventKind.HELP_ASKED, worker, now, text)
    return HelpAsked(request, told, text)


def help_with(session: Session, person: Person, request_id: int, now: datetime) -> Change:
    """An approved volunteer of the request's community, who was asked, comes to help; its holders hear."""
    request = get_request(session, request_id)
    volunteer = volunteer_of(session, person, community_of(request))
    if person.id == request.resident_id:
        raise RequestRefused(N_("You filed {code} yourself."), code=request.code)
    if volunteer is None or volunteer.status is not VolunteerStatus.APPROVED or not _has_event(
        session, request, EventKind.HELP_ASKED
    ):
        raise RequestRefused(N_("Only volunteers of this community asked to help with {code} can answer."),
                             code=request.code)
    _require_allowed(Transition.HELP, request)
    if _has_event(session, request, EventKind.HELPED, person):
        raise RequestRefused(N_("You already said you would help with {code}. Thank you."), code=request.code)
    _record(session, request, EventKind.HELPED, person, now, volunteer.name)
    return Change(request, holder_staff(session, request))


def helpers_of(session: Session, request: Request) -> list[str]:
    """The names of the volunteers who came to help, in the order they answered."""
    query = select(RequestEvent.text).where(RequestEvent.request_id == request.id,
                                            RequestEvent.kind == EventKind.HELPED)
    return list(session.scalars(query.order_by(RequestEvent.at, RequestEvent.id)))


def _has_event(session: Session, request: Request, kind: EventKind, actor: Person | None = None) -> bool:
    query = select(RequestEvent.id).where(RequestEvent.request_id == request.id, RequestEvent.kind == kind)
    if actor is not None:
        query = query.where(RequestEvent.actor_id == actor.id)
    return session.scalar(query.limit(1)) is not None


def record_meeting_event(
    session: Session, request: Request, kind: EventKind, actor: Person, text: str, now: datetime
) -> bool:
    """A three-party meeting's decision on the request (``MEETING_DECIDED``), or its outcome (``MEETING_DONE``),
    on the request's timeline; False (and nothing written) for a request the resident withdrew."""
    if not allows(Transition.MEETING, request):
        return False
    _record(session, request, kind, actor, now, text)
    return True
