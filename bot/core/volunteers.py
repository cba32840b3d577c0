"""Party members and volunteers: check-in (报到), posts (岗位) and claims (认领), evaluation (评价).

A person checks in to a community with a name, a partner unit (or none) and whether they are a party member;
the community's staff approve or refuse. Community staff publish posts with time slots; approved volunteers of
that community claim a slot, first come, while places are left, and may cancel until ``CANCEL_BEFORE`` the
start. At the post they check in and out; after the slot the scheduler marks who never checked in as a
no-show, and the staff rate each volunteer who came, 1-5 with a comment. When the post says so (its
``residents_rate``), residents who were served rate each volunteer who came too, once: "served" means a
resident bound to a building of the post's community who opens the post's rating link, which the staff hand
out where the service happened (on a notice or a printed QR code at the place).

Every rule about who may do what is here: only the community's own staff approve, publish and rate; only an
approved volunteer of the post's community claims; only the community's residents rate as residents, and never
their own service. Refusals raise ``VolunteerRefused`` with an English
message id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot.i18n import N_
from storage.models import (
    Building,
    ClaimStatus,
    Community,
    Grid,
    PartnerUnit,
    Person,
    PostSlot,
    ResidentRating,
    Role,
    SlotClaim,
    StaffRole,
    Volunteer,
    VolunteerPost,
    VolunteerStatus,
)

# Volunteers may cancel a claim until this long before the slot starts.
CANCEL_BEFORE = timedelta(hours=2)
# Check-in at the post opens this long before the slot starts.
CHECK_IN_OPENS = timedelta(hours=1)
HOUR_REMINDER = timedelta(hours=1)
# The evening before: at this local time on the day before the slot.
EVENING_REMINDER = time(20, 0)
MAX_TITLE = 100
MAX_DESCRIPTION = 1000
MAX_PLACE = 200
MAX_NAME = 50
MAX_PLACES = 500
MAX_SLOTS = 10
MAX_COMMENT = 500
DEEP_LINK_PREFIX = "v_"
RATING_LINK_PREFIX = "vr_"


class VolunteerRefused(Exception):
    """A volunteer use case that may not happen; ``reason`` is an English message id, ``params`` fill it in."""

    def __init__(self, reason: str, **params: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.params = params


NOT_COMMUNITY_STAFF = N_("Only the staff of this community may do that.")
NOT_A_VOLUNTEER = N_("Only volunteers checked in to this community and approved may claim its posts.")
ALREADY_APPROVED = N_("You are already a volunteer of {community}.")
ALREADY_DECIDED = N_("This check-in was already answered.")
SLOT_FULL = N_("Sorry, this slot is full: all {places} places are taken.")
SLOT_STARTED = N_("This slot has already started; it can no longer be claimed.")
ALREADY_CLAIMED = N_("You have already claimed this slot.")
NOT_YOUR_CLAIM = N_("This is not your claim.")
TOO_LATE_TO_CANCEL = N_("It is too late to cancel: claims can be cancelled until {hours} hours before the start.")
CLAIM_NOT_ACTIVE = N_("This claim is no longer active.")
CHECK_IN_NOT_OPEN = N_("Check-in opens an hour before the start and closes at the end of the slot.")
ALREADY_CHECKED_IN = N_("You have already checked in.")
NOT_CHECKED_IN = N_("Check in first.")
ALREADY_CHECKED_OUT = N_("You have already checked out.")
SLOT_NOT_OVER = N_("A service can be rated once its slot is over.")
DID_NOT_SERVE = N_("This volunteer did not serve in this slot.")
BAD_STARS = N_("Give 1 to 5 stars.")
BAD_SLOT = N_("A slot must start in the future and end after it starts.")
BAD_PLACES = N_("The number of places must be between 1 and {limit}.")
NO_SUCH_THING = N_("This is no longer available.")
RESIDENTS_DO_NOT_RATE = N_("Residents do not rate this post's volunteers.")
NOT_A_RESIDENT = N_("Only residents of {community} who were served may rate its volunteers.")
OWN_SERVICE = N_("You cannot rate your own service.")
ALREADY_RATED = N_("You have already rated this service.")


# --- who is who -------------------------------------------------------------------------------------------


def staffed_communities(person: Person) -> list[int]:
    """The communities ``person`` is community staff of."""
    return [role.unit_id for role in person.roles if role.role is Role.COMMUNITY]


def is_community_staff(person: Person, community_id: int) -> bool:
    return community_id in staffed_communities(person)


def _require_staff(person: Person, community_id: int) -> None:
    if not is_community_staff(person, community_id):
        raise VolunteerRefused(NOT_COMMUNITY_STAFF)


def community_staff(session: Session, community_id: int) -> list[Person]:
    query = (
        select(Person).join(StaffRole, StaffRole.person_id == Person.id)
        .where(StaffRole.role == Role.COMMUNITY, StaffRole.unit_id == community_id).order_by(Person.id)
    )
    return list(session.scalars(query).unique())


def community_by_code(session: Session, code: str) -> Community | None:
    return session.scalars(select(Community).where(Community.code == code)).first()


def partner_units(session: Session) -> list[PartnerUnit]:
    return list(session.scalars(select(PartnerUnit).order_by(PartnerUnit.code)))


def volunteer_of(session: Session, person: Person, community_id: int) -> Volunteer | None:
    return session.scalars(
        select(Volunteer).where(Volunteer.person_id == person.id, Volunteer.community_id == community_id)
    ).first()


def volunteerships(session: Session, person: Person) -> list[Volunteer]:
    return list(session.scalars(select(Volunteer).where(Volunteer.person_id == person.id).order_by(Volunteer.id)))


def approved_volunteers(session: Session, community_id: int) -> list[Volunteer]:
    return list(session.scalars(
        select(Volunteer)
        .where(Volunteer.community_id == community_id, Volunteer.status == VolunteerStatus.APPROVED)
        .order_by(Volunteer.id)
    ))


def deep_link(bot_username: str, community: Community) -> str:
    return f"https://t.me/{bot_username}?start={DEEP_LINK_PREFIX}{community.code}"


# --- check-in -----------------------------------------------------------------------------------------------


def check_in(
    session: Session, person: Person, community_id: int, name: str, partner_unit_id: int | None,
    party_member: bool, now: datetime,
) -> Volunteer:
    """Check ``person`` in to a community, waiting for its staff; a refused person may check in again."""
    community = session.get(Community, community_id)
    if community is None:
        raise VolunteerRefused(NO_SUCH_THING)
    if partner_unit_id is not None and session.get(PartnerUnit, partner_unit_id) is None:
        partner_unit_id = None
    volunteer = volunteer_of(session, person, community_id)
    if volunteer is not None and volunteer.status is VolunteerStatus.APPROVED:
        raise VolunteerRefused(ALREADY_APPROVED, community=community.name)
    if volunteer is None:
        volunteer = Volunteer(person_id=person.id, community_id=community_id, created_at=now)
        session.add(volunteer)
    volunteer.name, volunteer.partner_unit_id, volunteer.party_member = name[:MAX_NAME], partner_unit_id, party_member
    volunteer.status, volunteer.decided_by_id, volunteer.decided_at = VolunteerStatus.PENDING, None, None
    session.flush()
    return volunteer


def decide(session: Session, staff: Person, volunteer_id: int, approve: bool, now: datetime) -> Volunteer:
    """Approve or refuse a pending check-in; only the community's own staff may."""
    volunteer = session.get(Volunteer, volunteer_id)
    if volunteer is None:
        raise VolunteerRefused(NO_SUCH_THING)
    _require_staff(staff, volunteer.community_id)
    if volunteer.status is not VolunteerStatus.PENDING:
        raise VolunteerRefused(ALREADY_DECIDED)
    volunteer.status = VolunteerStatus.APPROVED if approve else VolunteerStatus.REFUSED
    volunteer.decided_by_id, volunteer.decided_at = staff.id, now
    session.flush()
    return volunteer


# --- posts and slots ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlotTimes:
    starts_at: datetime
    ends_at: datetime


def evening_before(starts_at: datetime, timezone: str) -> datetime:
    zone = ZoneInfo(timezone)
    day_before = starts_at.astimezone(zone).date() - timedelta(days=1)
    return datetime.combine(day_before, EVENING_REMINDER, tzinfo=zone)


def publish_post(
    session: Session, staff: Person, community_id: int, title: str, description: str, place: str,
    slots: Sequence[SlotTimes], places: int, now: datetime, timezone: str, residents_rate: bool = False,
) -> VolunteerPost:
    """A new post of the community with its slots; reminders and the close of each slot are scheduled.
    ``residents_rate`` lets the residents served rate its volunteers."""
    _require_staff(staff, community_id)
    if not slots or len(slots) > MAX_SLOTS or any(s.starts_at <= now or s.ends_at <= s.starts_at for s in slots):
        raise VolunteerRefused(BAD_SLOT)
    if not 1 <= places <= MAX_PLACES:
        raise VolunteerRefused(BAD_PLACES, limit=MAX_PLACES)
    post = VolunteerPost(
        community_id=community_id, title=title[:MAX_TITLE], description=description[:MAX_DESCRIPTION],
        place=place[:MAX_PLACE], created_by_id=staff.id, created_at=now, residents_rate=residents_rate,
    )
    session.add(post)
    session.flush()
    for times in sorted(slots, key=lambda s: s.starts_at):
        evening = evening_before(times.starts_at, timezone)
        hour = times.starts_at - HOUR_REMINDER
        session.add(PostSlot(
            post_id=post.id, starts_at=times.starts_at, ends_at=times.ends_at, places=places,
            # A reminder whose time has passed when the post is published is not sent late.
            remind_evening_at=evening if evening > now and evening < hour else None,
            remind_hour_at=hour if hour > now else None, close_at=times.ends_at,
        ))
    session.flush()
    session.refresh(post)
    return post


def let_residents_rate(session: Session, staff: Person, post_id: int) -> VolunteerPost:
    """Mark a post as rated by the residents it serves too; the staff's choice right after publishing it."""
    post = session.get(VolunteerPost, post_id)
    if post is None:
        raise VolunteerRefused(NO_SUCH_THING)
    _require_staff(staff, post.community_id)
    post.residents_rate = True
    session.flush()
    return post


def rating_link(bot_username: str, post: VolunteerPost) -> str:
    return f"https://t.me/{bot_username}?start={RATING_LINK_PREFIX}{post.id}"


def get_slot(session: Session, slot_id: int) -> PostSlot:
    slot = session.get(PostSlot, slot_id)
    if slot is None:
        raise VolunteerRefused(NO_SUCH_THING)
    return slot


def active_claims(session: Session, slot_id: int) -> list[SlotClaim]:
    return list(session.scalars(
        select(SlotClaim).where(SlotClaim.slot_id == slot_id, SlotClaim.status == ClaimStatus.CLAIMED)
        .order_by(SlotClaim.claimed_at, SlotClaim.id)
    ))


def places_left(session: Session, slot: PostSlot) -> int:
    return max(slot.places - len(active_claims(session, slot.id)), 0)


# --- claims -------------------------------------------------------------------------------------------------


def claim_slot(session: Session, person: Person, slot_id: int, now: datetime) -> SlotClaim:
    """Claim a slot for ``person``, an approved volunteer of the post's community, while places are left."""
    # Locked, so two volunteers claiming the last place at once are served one after the other.
    locked = session.scalar(select(PostSlot.id).where(PostSlot.id == slot_id).with_for_update())
    slot = session.get(PostSlot, locked) if locked is not None else None
    if slot is None:
        raise VolunteerRefused(NO_SUCH_THING)
    volunteer = volunteer_of(session, person, slot.post.community_id)
    if volunteer is None or volunteer.status is not VolunteerStatus.APPROVED:
        raise VolunteerRefused(NOT_A_VOLUNTEER)
    if slot.starts_at <= now:
        raise VolunteerRefused(SLOT_STARTED)
    claim = session.scalars(
        select(SlotClaim).where(SlotClaim.slot_id == slot.id, SlotClaim.volunteer_id == volunteer.id)
    ).first()
    if claim is not None and claim.status is ClaimStatus.CLAIMED:
        raise VolunteerRefused(ALREADY_CLAIMED)
    if places_left(session, slot) <= 0:
        raise VolunteerRefused(SLOT_FULL, places=slot.places)
    if claim is None:
        claim = SlotClaim(slot_id=slot.id, volunteer_id=volunteer.id, claimed_at=now)
        session.add(claim)
    claim.status, claim.claimed_at, claim.cancelled_at = ClaimStatus.CLAIMED, now, None
    session.flush()
    return claim


def _own_claim(session: Session, person: Person, claim_id: int) -> SlotClaim:
    claim = session.get(SlotClaim, claim_id)
    if claim is None:
        raise VolunteerRefused(NO_SUCH_THING)
    if claim.volunteer.person_id != person.id:
        raise VolunteerRefused(NOT_YOUR_CLAIM)
    if claim.status is not ClaimStatus.CLAIMED:
        raise VolunteerRefused(CLAIM_NOT_ACTIVE)
    return claim


def cancel_claim(session: Session, person: Person, claim_id: int, now: datetime) -> SlotClaim:
    claim = _own_claim(session, person, claim_id)
    if now > claim.slot.starts_at - CANCEL_BEFORE:
        raise VolunteerRefused(TOO_LATE_TO_CANCEL, hours=int(CANCEL_BEFORE.total_seconds() // 3600))
    claim.status, claim.cancelled_at = ClaimStatus.CANCELLED, now
    session.flush()
    return claim


def check_in_at_post(
    session: Session, person: Person, claim_id: int, now: datetime, location: tuple[float, float] | None = None
) -> SlotClaim:
    claim = _own_claim(session, person, claim_id)
    if claim.checked_in_at is not None:
        raise VolunteerRefused(ALREADY_CHECKED_IN)
    if not claim.slot.starts_at - CHECK_IN_OPENS <= now <= claim.slot.ends_at:
        raise VolunteerRefused(CHECK_IN_NOT_OPEN)
    claim.checked_in_at = now
    if location is not None:
        claim.latitude, claim.longitude = location
    session.flush()
    return claim


def check_out(session: Session, person: Person, claim_id: int, now: datetime) -> SlotClaim:
    claim = _own_claim(session, person, claim_id)
    if claim.checked_in_at is None:
        raise VolunteerRefused(NOT_CHECKED_IN)
    if claim.checked_out_at is not None:
        raise VolunteerRefused(ALREADY_CHECKED_OUT)
    claim.checked_out_at = now
    session.flush()
    return claim


def record_location(session: Session, person: Person, claim_id: int, location: tuple[float, float]) -> SlotClaim:
    """The location a volunteer shared after checking in."""
    claim = _own_claim(session, person, claim_id)
    if claim.checked_in_at is None:
        raise VolunteerRefused(NOT_CHECKED_IN)
    claim.latitude, claim.longitude = location
    session.flush()
    return claim


def served_hours(claim: SlotClaim) -> float:
    """Hours served: from check-in (not before the start) to check-out, or to the end of the slot."""
    if claim.checked_in_at is None or claim.status is not ClaimStatus.CLAIMED:
        return 0.0
    start = max(claim.checked_in_at, claim.slot.starts_at)
    end = min(claim.checked_out_at or claim.slot.ends_at, claim.slot.ends_at)
    return max((end - start).total_seconds() / 3600, 0.0)


# --- after the slot -----------------------------------------------------------------------------------------


def mark_no_shows(session: Session, slot: PostSlot, now: datetime) -> list[SlotClaim]:
    """Claims of an ended slot that never checked in become no-shows; returns the claims that did serve."""
    served = []
    for claim in active_claims(session, slot.id):
        if claim.checked_in_at is None:
            claim.status = ClaimStatus.NO_SHOW
        else:
            served.append(claim)
    session.flush()
    return served


def rate_service(
    session: Session, staff: Person, claim_id: int, stars: int, comment: str | None, now: datetime
) -> SlotClaim:
    """The community's staff rate a volunteer's service in a slot that is over; rating again replaces it."""
    claim = session.get(SlotClaim, claim_id)
    if claim is None:
        raise VolunteerRefused(NO_SUCH_THING)
    _require_staff(staff, claim.slot.post.community_id)
    if claim.slot.ends_at > now:
        raise VolunteerRefused(SLOT_NOT_OVER)
    if claim.status is not ClaimStatus.CLAIMED or claim.checked_in_at is None:
        raise VolunteerRefused(DID_NOT_SERVE)
    if not 1 <= stars <= 5:
        raise VolunteerRefused(BAD_STARS)
    claim.stars, claim.rated_by_id, claim.rated_at = stars, staff.id, now
    if comment is not None:
        claim.comment = comment[:MAX_COMMENT]
    session.flush()
    return claim


def add_comment(session: Session, staff: Person, claim_id: int, comment: str, now: datetime) -> SlotClaim:
    claim = session.get(SlotClaim, claim_id)
    if claim is None or claim.stars is None:
        raise VolunteerRefused(NO_SUCH_THING)
    return rate_service(session, staff, claim_id, claim.stars, comment, now)


def _served(claim: SlotClaim, now: datetime) -> bool:
    return claim.slot.ends_at <= now and claim.status is ClaimStatus.CLAIMED and claim.checked_in_at is not None


def is_resident_of(session: Session, person: Person, community_id: int) -> bool:
    """Whether ``person`` is bound to a building of the community."""
    if person.building_id is None:
        return False
    query = (select(func.count()).select_from(Building).join(Grid, Grid.id == Building.grid_id)
             .where(Building.id == person.building_id, Grid.community_id == community_id))
    return bool(session.scalar(query))


def _require_resident_rater(session: Session, person: Person, post: VolunteerPost) -> None:
    if not post.residents_rate:
        raise VolunteerRefused(RESIDENTS_DO_NOT_RATE)
    if not is_resident_of(session, person, post.community_id):
        raise VolunteerRefused(NOT_A_RESIDENT, community=post.community.name)


def services_to_rate(session: Session, person: Person, post_id: int, now: datetime) -> list[SlotClaim]:
    """What a resident opening the post's rating link may rate: the services of its slots that are over, not
    their own and not rated by them yet."""
    post = session.get(VolunteerPost, post_id)
    if post is None:
        raise VolunteerRefused(NO_SUCH_THING)
    _require_resident_rater(session, person, post)
    return [
        claim for slot in post.slots for claim in active_claims(session, slot.id)
        if _served(claim, now) and claim.volunteer.person_id != person.id
        and all(rating.person_id != person.id for rating in claim.resident_ratings)
    ]


def resident_may_rate(session: Session, person: Person, claim_id: int, now: datetime) -> SlotClaim:
    """The service ``person`` may rate as a resident served, or the refusal."""
    claim = session.get(SlotClaim, claim_id)
    if claim is None:
        raise VolunteerRefused(NO_SUCH_THING)
    _require_resident_rater(session, person, claim.slot.post)
    if claim.volunteer.person_id == person.id:
        raise VolunteerRefused(OWN_SERVICE)
    if claim.slot.ends_at > now:
        raise VolunteerRefused(SLOT_NOT_OVER)
    if not _served(claim, now):
        raise VolunteerRefused(DID_NOT_SERVE)
    if resident_rating(session, person, claim_id) is not None:
        raise VolunteerRefused(ALREADY_RATED)
    return claim


def rate_as_resident(
    session: Session, person: Person, claim_id: int, stars: int, now: datetime
) -> ResidentRating:
    """A served resident rates a volunteer's service, once."""
    claim = resident_may_rate(session, person, claim_id, now)
    if not 1 <= stars <= 5:
        raise VolunteerRefused(BAD_STARS)
    rating = ResidentRating(claim_id=claim.id, person_id=person.id, stars=stars, created_at=now)
    session.add(rating)
    session.flush()
    session.refresh(claim)
    return rating


def resident_rating(session: Session, person: Person, claim_id: int) -> ResidentRating | None:
    return session.scalars(
        select(ResidentRating).where(ResidentRating.claim_id == claim_id, ResidentRating.person_id == person.id)
    ).first()


def comment_as_resident(session: Session, person: Person, claim_id: int, comment: str) -> ResidentRating:
    """The comment of a resident's rating, given once after the stars."""
    rating = resident_rating(session, person, claim_id)
    if rating is None:
        raise VolunteerRefused(NO_SUCH_THING)
    if rating.comment is not None:
        raise VolunteerRefused(ALREADY_RATED)
    rating.comment = comment[:MAX_COMMENT]
    session.flush()
    return rating


# --- summaries ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceTotals:
    """Hours, slots served, no-shows and ratings of one volunteer, partner unit or community."""

    name: str
    hours: float
    served: int
    no_shows: int
    ratings: int
    average: float | None
    # Ratings residents gave, beside the staff's.
    resident_ratings: int = 0
    resident_average: float | None = None


def _average(stars: Sequence[int]) -> float | None:
    return round(sum(stars) / len(stars), 2) if stars else None


def _totals(name: str, claims: Sequence[SlotClaim]) -> ServiceTotals:
    stars = [claim.stars for claim in claims if claim.stars is not None]
    residents = [rating.stars for claim in claims for rating in claim.resident_ratings]
    return ServiceTotals(
        name=name, hours=round(sum(served_hours(claim) for claim in claims), 2),
        served=sum(1 for claim in claims if claim.status is ClaimStatus.CLAIMED and claim.checked_in_at is not None),
        no_shows=sum(1 for claim in claims if claim.status is ClaimStatus.NO_SHOW),
        ratings=len(stars), average=_average(stars),
        resident_ratings=len(residents), resident_average=_average(residents),
    )


def claims_of(session: Session, person: Person) -> list[SlotClaim]:
    """Every claim of ``person``'s volunteerships, soonest slot last."""
    query = (
        select(SlotClaim).join(Volunteer, Volunteer.id == SlotClaim.volunteer_id)
        .join(PostSlot, PostSlot.id == SlotClaim.slot_id)
        .where(Volunteer.person_id == person.id).order_by(PostSlot.starts_at, SlotClaim.id)
    )
    return list(session.scalars(query))


def my_totals(session: Session, person: Person) -> ServiceTotals:
    return _totals(person.display_name, claims_of(session, person))


def community_claims(
    session: Session, community_id: int, since: datetime | None = None, until: datetime | None = None
) -> list[SlotClaim]:
    query = (
        select(SlotClaim).join(PostSlot, PostSlot.id == SlotClaim.slot_id)
        .join(VolunteerPost, VolunteerPost.id == PostSlot.post_id)
        .where(VolunteerPost.community_id == community_id, SlotClaim.status != ClaimStatus.CANCELLED)
        .order_by(PostSlot.starts_at, SlotClaim.id)
    )
    if since is not None:
        query = query.where(PostSlot.starts_at >= since)
    if until is not None:
        query = query.where(PostSlot.starts_at < until)
    return list(session.scalars(query))


def totals_by_volunteer(claims: Sequence[SlotClaim]) -> list[ServiceTotals]:
    groups: dict[int, list[SlotClaim]] = {}
    for claim in claims:
        groups.setdefault(claim.volunteer_id, []).append(claim)
    return [_totals(group[0].volunteer.name, group) for group in groups.values()]


def totals_by_partner_unit(claims: Sequence[SlotClaim], none_name: str) -> list[ServiceTotals]:
    groups: dict[int, list[SlotClaim]] = {}
    names: dict[int, str] = {}
    for claim in claims:
        unit = claim.volunteer.partner_unit
        key = unit.id if unit is not None else 0
        names[key] = unit.name if unit is not None else none_name
        groups.setdefault(key, []).append(claim)
    return [_totals(names[key], group) for key, group in groups.items()]


@dataclass(frozen=True)
class AreaService:
    """Volunteer service in an area over a period, by volunteer and by partner unit (named "" for none)."""

    by_volunteer: tuple[ServiceTotals, ...]
    by_partner_unit: tuple[ServiceTotals, ...]


def area_service(session: Session, communities: Any, since: datetime, until: datetime) -> AreaService:
    """The service in slots that started in ``[since, until)`` at posts of ``communities`` (a query of ids)."""
    query = (
        select(SlotClaim).join(PostSlot, PostSlot.id == SlotClaim.slot_id)
        .join(VolunteerPost, VolunteerPost.id == PostSlot.post_id)
        .where(VolunteerPost.community_id.in_(communities), SlotClaim.status != ClaimStatus.CANCELLED,
               PostSlot.starts_at >= since, PostSlot.starts_at < until)
        .order_by(SlotClaim.volunteer_id, SlotClaim.id)
    )
    claims = list(session.scalars(query))
    by_volunteer = sorted(totals_by_volunteer(claims), key=lambda totals: (-totals.hours, totals.name))
    by_unit = sorted(totals_by_partner_unit(claims, ""), key=lambda totals: (-totals.hours, totals.name))
    return AreaService(tuple(by_volunteer), tuple(by_unit))


def unrated_services(session: Session, community_id: int, now: datetime) -> list[SlotClaim]:
    """Services of the community over and not rated yet: what its staff are asked to rate."""
    return [
        claim for claim in community_claims(session, community_id)
        if claim.stars is None and claim.slot.ends_at <= now and claim.checked_in_at is not None
        and claim.status is ClaimStatus.CLAIMED
    ]


# --- the scheduler's claims on slots ------------------------------------------------------------------------


SLOT_TIMERS = ("remind_evening_at", "remind_hour_at", "close_at")


def due_slots(session: Session, column: str, now: datetime, limit: int = 200) -> list[int]:
    due = getattr(PostSlot, column)
    return list(session.scalars(
        select(PostSlot.id).where(due.is_not(None), due <= now).order_by(due, PostSlot.id).limit(limit)
    ))


def claim_slot_timer(session: Session, column: str, slot_id: int, now: datetime) -> PostSlot | None:
    """Clear a slot's due timer; the slot when this process won it, None when another one did."""
    due = getattr(PostSlot, column)
    done = session.execute(
        update(PostSlot).where(PostSlot.id == slot_id, due.is_not(None), due <= now).values({column: None})
        .execution_options(synchronize_session=False)
    )
    if getattr(done, "rowcount", 0) != 1:
        return None
    slot = session.get(PostSlot, slot_id)
    if slot is not None:
        session.refresh(slot)
    return slot
